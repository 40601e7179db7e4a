"""What a run tells the person or the log file watching it: stages, progress of the paths, warnings, timings.

On a terminal a live bar per simulation pass (tqdm) shows paths done, the
rate and the time left; anywhere else (a batch job's log) the same figures
are written as a log line every ``interval`` seconds and when a pass ends.
Progress is real: it advances as chunks of paths come back from the workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterable
from io import TextIOWrapper
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from mcalloc.errors import ConfigError

__all__ = ["LOGGER", "Mode", "ProgressReporter", "configure_logging"]

LOGGER = logging.getLogger("mcalloc")

Mode = Literal["bar", "log", "off"]


def configure_logging(
    level: str, log_file: Path | None, terminal: bool, reads: Iterable[Path] = (), out: Path | None = None
) -> None:
    """Stage lines and warnings to stderr (plain on a terminal, timestamped otherwise) and, if asked, to a file.

    The log file is refused (before anything is written to it) where lines
    appended would damage something: one of the files the command ``reads``
    (its scenario, its data), a file inside a run's or a backtest's folder,
    or a place at or inside ``out``, the folder the command is to make.
    """
    LOGGER.handlers.clear()
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False
    stream = logging.StreamHandler(sys.stderr)
    stream.setLevel(level.upper())
    pattern = "  %(message)s" if terminal else "%(asctime)s %(levelname)s %(message)s"
    stream.setFormatter(logging.Formatter(pattern, datefmt="%Y-%m-%d %H:%M:%S"))
    LOGGER.addHandler(stream)
    if log_file is not None:
        from mcalloc.results.writer import place_problem

        # a log file that exists is appended to (/dev/stderr, a prepared /var/log file): its folder need not be writable
        problem = (
            "a folder, not a file" if log_file.is_dir() else None if log_file.exists() else place_problem(log_file)
        )
        if problem is not None:
            raise ConfigError(f"--log-file {log_file}: {problem}; give a writable path")
        _check_log_place(log_file, reads, out)
        try:
            _probe_log_file(log_file)
        except OSError as error:
            raise ConfigError(
                f"--log-file {log_file}: cannot write it ({error.strerror}); give a writable path"
            ) from None
        handler = _LogFile(log_file, encoding="utf-8", delay=True)
        handler.setLevel(min(logging.INFO, logging.getLevelName(level.upper())))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S"))
        LOGGER.addHandler(handler)


class _LogFile(logging.FileHandler):
    """A log file made, with its folder, when its first line is written: a command refused before leaves none."""

    def _open(self) -> TextIOWrapper:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def _probe_log_file(log_file: Path) -> None:
    """Open ``log_file`` for appending as the log will, and take back the file and folders that made.

    Raises OSError where it cannot be written, before the command starts.
    """
    # only what the probe itself makes is taken back: a link stays (a dangling one too), the file it makes does not
    made = [parent for parent in (log_file, *log_file.parents) if not os.path.lexists(parent)]
    if log_file.is_symlink() and not log_file.exists():
        made.insert(0, log_file.resolve())
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "a", encoding="utf-8"):
            pass
    finally:
        for path in made:  # the file first, then its folders from the innermost out
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()


def _check_log_place(log_file: Path, reads: Iterable[Path], out: Path | None) -> None:
    from mcalloc.cli.common import check_not_read, check_outside_results

    check_not_read("--log-file", log_file, reads, ConfigError)
    check_outside_results("--log-file", log_file, ConfigError)
    target = log_file.resolve()
    if out is not None and (target == out.resolve() or target.is_relative_to(out.resolve())):
        raise ConfigError(
            f"--log-file {log_file}: at or inside --out {out}, the folder this command makes (and replaces); "
            "give a log file outside it"
        )


class ProgressReporter:
    """Called as ``reporter(stage, paths_done, paths_total)`` by the pipeline."""

    def __init__(self, mode: Mode, interval: float = 10.0) -> None:
        self.mode, self.interval = mode, interval
        self._stage = ""
        self._bar: tqdm | None = None
        self._start = 0.0
        self._last_log = 0.0
        self._done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.mode == "off":
            return
        now = time.monotonic()
        if stage != self._stage:
            self._close()
            self._stage, self._start, self._last_log, self._done = stage, now, now, 0
            if self.mode == "bar":
                self._bar = tqdm(total=total, desc=f"  {stage}", unit="paths", unit_scale=True, leave=False)
        if self._bar is not None:
            self._bar.update(done - self._done)
        elif done > 0 and (now - self._last_log >= self.interval or done >= total):
            elapsed = max(now - self._start, 1e-9)
            rate = done / elapsed
            left = (total - done) / rate if rate > 0 else float("inf")
            LOGGER.info(
                f"{stage}: {done:,}/{total:,} paths ({done / total:.0%}), {rate:,.0f} paths/s, {left:,.0f} s left"
            )
            self._last_log = now
        self._done = done
        if done >= total:
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._stage = ""
