"""The command line turns numpy's huge-page advice off where the kernel would stall on it, and only there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcalloc.hugepages import DEFRAG, advice_stalls, advise_numpy

from .conftest import ROOT

# the kernel's file lists every mode and brackets the one in force
# (Documentation/admin-guide/mm/transhuge.rst: always, defer and madvise-only compaction)
MODES = {
    "[always] defer defer+madvise madvise never": True,
    "always defer [defer+madvise] madvise never": True,
    "always defer defer+madvise [madvise] never": True,
    "always [defer] defer+madvise madvise never": False,
    "always defer defer+madvise madvise [never]": False,
}


@pytest.mark.parametrize(("text", "stalls"), MODES.items())
def test_advice_stalls_where_the_kernel_compacts_on_an_advised_fault(tmp_path: Path, text: str, stalls: bool) -> None:
    defrag = tmp_path / "defrag"
    defrag.write_text(text + "\n")
    assert advice_stalls(defrag) is stalls
    environ: dict[str, str] = {}
    advise_numpy(environ, defrag)
    assert environ == ({"NUMPY_MADVISE_HUGEPAGE": "0"} if stalls else {})


def test_a_setting_already_made_or_no_kernel_file_leaves_numpy_as_it_is(tmp_path: Path) -> None:
    defrag = tmp_path / "defrag"
    defrag.write_text("always defer defer+madvise [madvise] never\n")
    for chosen in ("1", "0"):
        environ = {"NUMPY_MADVISE_HUGEPAGE": chosen}
        advise_numpy(environ, defrag)
        assert environ == {"NUMPY_MADVISE_HUGEPAGE": chosen}
    assert advice_stalls(tmp_path / "missing") is False


@pytest.mark.skipif(sys.platform != "linux", reason="numpy advises huge pages on Linux only")
def test_the_command_line_decides_before_numpy_reads_the_choice() -> None:
    # a fresh interpreter, as `mcalloc` starts: numpy, imported after the command-line package,
    # advises huge pages exactly when this machine's kernel would not stall on the advice
    environment = {name: value for name, value in os.environ.items() if name != "NUMPY_MADVISE_HUGEPAGE"}
    program = "import mcalloc.cli, numpy; print(numpy._core.multiarray._get_madvise_hugepage())"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT, env=environment
    )
    assert done.stdout.strip() == str(not advice_stalls(DEFRAG))
