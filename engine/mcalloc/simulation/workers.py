"""Worker processes never outlive the process that started them.

joblib's loky workers are reused between tasks and normally stopped when the
parent exits. A parent killed outright (SIGKILL, the machine's out-of-memory
killer) cannot stop them: they would be re-parented and live on, holding
memory and the parent's output pipe. Each worker therefore watches its
parent's process id and exits the moment it changes; and a parent stopping
early (Ctrl-C, SIGTERM) kills its workers rather than waiting for their tasks.

A terminal's Ctrl-C goes to every process in its foreground group, workers
included. Workers are started with SIGINT blocked (:func:`mcalloc.errors.signals_held`),
so that only the parent sees it; a worker still importing when the signal
came printed a KeyboardInterrupt traceback of its own.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

__all__ = ["kill_workers", "start_resource_trackers", "watch_parent", "watched_workers"]

_POLL_SECONDS = 0.25
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_watching = False


def watched_workers() -> dict[str, Any]:
    """Keyword arguments for joblib's loky backend that start every worker with :func:`watch_parent`."""
    return {"initializer": watch_parent, "initargs": (os.getpid(),)}


def start_resource_trackers() -> None:
    """Start the resource-tracker processes of the standard library and of loky now, unless running.

    loky starts both with its first workers. The standard library's unblocks
    SIGINT in the thread that starts it (``SIG_UNBLOCK``, not the mask it
    found): inside :func:`mcalloc.errors.signals_held` it would lift the hold before the
    workers start. Started beforehand, neither starts again there.
    """
    from multiprocessing import resource_tracker

    from joblib.externals.loky.backend import resource_tracker as loky_tracker

    resource_tracker.ensure_running()
    loky_tracker.ensure_running()


def watch_parent(parent: int) -> None:
    """In a worker process, make sure (once) that the process ends when its parent dies.

    ``parent`` is the parent's process id as the parent knows it: a worker
    still starting when its parent is killed must not take its new adoptive
    parent for it. Does nothing in the main process.
    """
    global _watching
    if _watching or multiprocessing.current_process().name == "MainProcess":
        return
    if os.getppid() != parent:
        os._exit(1)  # orphaned before it could be told
    if sys.platform.startswith("linux"):
        # the kernel's own guarantee: SIGKILL this process when the one that started it dies,
        # even while this process's threads wait (the watch below covers other systems)
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request took hold
            os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_POLL_SECONDS)
        os._exit(1)  # the parent is gone: nobody will read what this process computes

    threading.Thread(target=watch, name="mcalloc-parent-watch", daemon=True).start()
    _watching = True


def kill_workers() -> None:
    """Stop joblib's worker processes now, without waiting for the tasks they are running (if any were started)."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)  # loky's one reusable executor, or None
    if executor is not None:
        executor.shutdown(wait=False, kill_workers=True)
