"""Domain errors: problems a user can cause and fix.

Every error a user can trigger through a config, a data file or an
infeasible request is raised as a subclass of :class:`McallocError`. The CLI
prints its message on one line and exits with code 2; anything else is a bug
and exits with code 1.
"""

from __future__ import annotations

import signal
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "ClusterError",
    "ConfigError",
    "DataError",
    "InfeasibleError",
    "McallocError",
    "ModelError",
    "OutputError",
    "Terminated",
    "check_stop",
    "request_stop",
    "signals_held",
    "stop_requested",
]


class Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread so that every stage unwinds as for Ctrl-C."""


_STOP = threading.Event()
"""Set by the SIGTERM handler. The exception it raises can be lost (in a weakref callback, or inside a
library that catches it) or leave a library's state broken, so the flag is what the last steps check."""


@contextmanager
def signals_held(*signals: signal.Signals) -> Iterator[None]:
    """``signals`` blocked in this thread for the block and delivered as it ends; nothing off POSIX.

    Processes started inside inherit the block for good (it survives exec):
    a worker started with SIGINT held never sees a terminal's Ctrl-C. In a
    thread other than the main one, which Python delivers signals to, the
    block changes nothing for this process.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(signals))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def request_stop(requested: bool = True) -> None:
    """Record that the process was asked to stop (``False``: clear it, as a new command starts)."""
    if requested:
        _STOP.set()
    else:
        _STOP.clear()


def stop_requested() -> bool:
    """Whether the process was asked to stop since the command started."""
    return _STOP.is_set()


def check_stop() -> None:
    """Raise :class:`Terminated` when the process was asked to stop: called before a result is made final."""
    if _STOP.is_set():
        raise Terminated


class McallocError(Exception):
    """Base class for errors caused by the user's input, reported in one line.

    A message that quotes what the user wrote (a key, a file name, a cell)
    may carry line breaks or other control characters; they are kept as
    escapes (``\\r``, ``\\n``), so the message stays one line.
    """

    exit_code = 2

    def __init__(self, *args: object) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (_one_line(args[0]),)
        super().__init__(*args)


def _one_line(message: str) -> str:
    """``message`` with line breaks and control characters escaped; other characters (a no-break space) kept."""
    if message.isprintable():
        return message
    return "".join(c.encode("unicode_escape").decode("ascii") if _breaks_a_line(c) else c for c in message)


def _breaks_a_line(character: str) -> bool:
    """Control and format characters, and line or paragraph separators: what can break or hide in one line."""
    return unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


class ClusterError(McallocError):
    """The dask cluster a run used failed under it (a lost scheduler, no workers, a worker killed repeatedly)."""

    exit_code = 1


class ConfigError(McallocError):
    """A scenario file, an override or a combination of settings is invalid."""


class DataError(McallocError):
    """A data file is missing, unreadable or fails validation."""


class ModelError(McallocError):
    """A model could not be fitted or its parameters are unusable."""


class InfeasibleError(McallocError):
    """An optimisation problem has no solution under the given constraints."""


class OutputError(McallocError):
    """The results folder cannot be written where the user asked."""
