"""Helpers for work in parallel: threads in this process, joblib's worker processes, and memory given back.

:mod:`mcalloc.simulation.paths` runs the chunks on worker processes; these
serve it and the stages that use threads of their own (the bootstrap tables,
the optimiser's grid).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from joblib import effective_n_jobs

__all__ = ["local_threads", "release_workers", "return_free_heap", "thread_map"]


def return_free_heap() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    What earlier stages freed (the optimiser's problems, a previous pass's
    copies) stays in this process's resident memory otherwise, under the
    pass's results and its workers: about 80 MB on the default scenario.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    trim(0)


Item = TypeVar("Item")


Result = TypeVar("Result")


def local_threads(n_jobs: int) -> int:
    """Threads for work in this process (the bootstrap tables, the optimiser's grid): ``n_jobs`` as joblib
    reads it, at most this machine's cores."""
    return max(1, min(int(effective_n_jobs(n_jobs)), os.cpu_count() or 1))


def thread_map(function: Callable[[Item], Result], items: Sequence[Item], threads: int, name: str) -> list[Result]:
    """``[function(item) for item in items]``, in order, on up to ``threads`` threads of this process.

    For numpy work that releases the GIL; the threads are named ``name``.
    """
    if threads <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(threads, thread_name_prefix=name) as pool:
        return list(pool.map(function, items))


def release_workers() -> None:
    """Stop joblib's idle worker processes now rather than after their idle timeout (they restart on demand)."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
