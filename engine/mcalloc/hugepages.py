"""Whether numpy should advise Linux to back large arrays with huge pages: not where the advice stalls.

numpy advises the kernel (``madvise(MADV_HUGEPAGE)``) to back every array
of 4 MB or more with 2 MB transparent huge pages. Where the kernel's
``/sys/kernel/mm/transparent_hugepage/defrag`` is ``always``, ``madvise`` or
``defer+madvise``, the first touch of an advised page with no free huge page
compacts memory there and then, and the program waits (numpy issue 31590).
On a machine whose memory has been in use for hours that is most first
touches: measured on two cores, touching a fresh gigabyte took 10 s advised
and 0.5 s not, and a million-path run of the default scenario 139 and 147 s
advised against 131 and 134 s not (its simulation 66-69 s against 58 s).
Under ``defer`` or ``never`` the advice costs nothing and stays.

This module must not import numpy: the choice is read when numpy is
imported, so the command line (and ``scripts/bench_simulation.py``) makes
it first. Worker processes inherit it through the environment. A
``NUMPY_MADVISE_HUGEPAGE`` already set is left as it is; a program
importing mcalloc as a library keeps its own setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path

__all__ = ["DEFRAG", "STALLING_MODES", "advice_stalls", "advise_numpy"]

DEFRAG = Path("/sys/kernel/mm/transparent_hugepage/defrag")
"""The kernel's setting: every mode listed, the one in force in brackets."""

STALLING_MODES = frozenset({"always", "madvise", "defer+madvise"})
"""Modes in which a fault in an advised region compacts memory synchronously (the kernel's transhuge docs)."""


def advice_stalls(defrag: Path = DEFRAG) -> bool:
    """Whether the kernel compacts memory on a fault in a region advised to use huge pages (False if unknown)."""
    try:
        text = defrag.read_text(encoding="ascii", errors="replace")
    except OSError:  # not Linux, or no transparent huge pages
        return False
    selected = re.search(r"\[([^\]]+)\]", text)
    return selected is not None and selected.group(1) in STALLING_MODES


def advise_numpy(environ: MutableMapping[str, str] = os.environ, defrag: Path = DEFRAG) -> None:
    """Turn numpy's huge-page advice off in ``environ`` where it stalls, unless ``NUMPY_MADVISE_HUGEPAGE`` is set."""
    if "NUMPY_MADVISE_HUGEPAGE" not in environ and advice_stalls(defrag):
        environ["NUMPY_MADVISE_HUGEPAGE"] = "0"
