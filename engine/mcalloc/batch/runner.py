"""Running a batch: resumable, failure-isolated, indexed.

Layout of ``<out>/<batch>/``::

    runs/<run name>/      each run's results folder (atomic, as for mcalloc run)
    index.csv, index.parquet
                          one row per run: status, swept parameters, key metrics

Each run is keyed by a sha256 of its resolved scenario (seed included,
worker count and output settings left out) and of its data files' bytes. A
run whose folder is complete with the same key is skipped, so a batch that
was interrupted (Ctrl-C, SIGTERM, SIGKILL, a crash) picks up where it
stopped; a failed run is retried. A run that fails is recorded with its
one-line message and the others go on. Runs go one after another, each
using the workers for its paths: no pool inside a pool.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from mcalloc.batch.sweep import Batch, BatchRun
from mcalloc.config.loader import load_scenario, scenario_to_dict, settings_hash
from mcalloc.config.schema import Scenario
from mcalloc.errors import ConfigError, McallocError, OutputError, check_stop, stop_requested
from mcalloc.results.writer import (
    INTERRUPTIONS,
    SCHEMA_VERSION,
    package_versions,
    place_problem,
    read_results_csv,
)
from mcalloc.simulation.resources import check_memory, estimate

__all__ = [
    "INDEX_METRICS",
    "BatchOutcome",
    "RunRecord",
    "batch_in_use",
    "check_batch_folder",
    "estimate",
    "in_use",
    "index_table",
    "is_complete",
    "key_numbers",
    "run_batch",
    "run_key",
]

INDEX_METRICS = (
    "cagr_median",
    "cagr_p05",
    "vol_ann",
    "maxdd_p95",
    "cvar_95_annual",
    "prob_loss",
    "terminal_wealth_p50",
)
"""Metrics of each portfolio in the index, as ``<metric>:<portfolio>`` columns."""

BENEFITS = ("cagr_median", "maxdd_p95")
"""Diversification differences (portfolio minus reference) in the index, as ``benefit_<statistic>:<portfolio>``."""


FILE_SETTINGS = (
    ("data", "paths", "*"),
    ("data", "file"),
    ("model", "dependence", "residuals"),
    ("currency", "fx", "*"),
)
"""Where a resolved scenario names files (``*``: every value of a mapping); any other string is a setting's value."""


def _named_files(settings: dict[str, Any]) -> list[str]:
    """Every string at :data:`FILE_SETTINGS` in ``settings``: a file, a ``builtin:`` name or a missing path."""
    named: list[str] = []
    for keys in FILE_SETTINGS:
        values: list[Any] = [settings]
        for key in keys:
            if key == "*":
                values = [value for mapping in values if isinstance(mapping, dict) for value in mapping.values()]
            else:
                values = [mapping.get(key) for mapping in values if isinstance(mapping, dict)]
        named += [value for value in values if isinstance(value, str)]
    return named


def _file_digests(settings: dict[str, Any]) -> dict[str, str]:
    """sha256 of every file the resolved scenario names (data, residuals, exchange rates).

    Only the settings that name files count: a value such as ``never`` or
    ``monthly`` is not hashed because a file of that name lies in the working folder.
    """
    found: dict[str, str] = {}
    for name in _named_files(settings):
        if name in found or len(name) >= 4096:
            continue
        # a relative path (set in a sweep or with --set) is read from the working folder, as the run reads it
        path = Path(name)
        try:
            is_file = path.is_file()
        except OSError:  # a string no file system takes for a name
            is_file = False
        if is_file:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _by_content(data: object, digests: dict[str, str]) -> object:
    """``data`` with every string that names a file replaced by that file's sha256."""
    if isinstance(data, dict):
        return {key: _by_content(value, digests) for key, value in data.items()}
    if isinstance(data, list):
        return [_by_content(value, digests) for value in data]
    if isinstance(data, str) and data in digests:
        return f"sha256:{digests[data]}"
    return data


def run_key(scenario: Scenario) -> str:
    """What decides a run's files: the resolved scenario (seed included), its files' bytes, the outputs asked for,
    the mcalloc version and the results schema's (which changes when numbers do, within one package version
    during development). Files count by their bytes, not where they lie: a batch copied or checked out
    elsewhere (another machine of a cluster) resumes rather than running everything again."""
    settings = scenario_to_dict(scenario)
    output = {key: value for key, value in settings.get("output", {}).items() if key != "dir"}
    digests = _file_digests(settings)
    located = _by_content(settings, digests)
    assert isinstance(located, dict)
    text = json.dumps(
        {
            "config": settings_hash(located),
            "output": output,
            "mcalloc": package_versions()["mcalloc"],
            "schema": SCHEMA_VERSION,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RunRecord:
    """How one run of a batch ended: ``complete``, ``skipped`` (already complete) or ``failed``."""

    run: BatchRun
    status: str
    key: str = ""
    folder: Path | None = None
    error: str = ""
    seconds: float = 0.0
    numbers: dict[str, float] = field(default_factory=dict)
    """The run's key metrics for the index (:func:`key_numbers`), read once when the run is done."""


@dataclass(frozen=True)
class BatchOutcome:
    """Every run's record and the index written."""

    folder: Path
    records: tuple[RunRecord, ...]
    index: pd.DataFrame

    @property
    def failed(self) -> list[RunRecord]:
        return [record for record in self.records if record.status == "failed"]


def index_table(batch: Batch, records: list[RunRecord], out: Path) -> pd.DataFrame:
    """One row per run: name, status, key, error, swept parameters, key metrics and diversification benefit.

    ``folder`` is relative to the batch folder ``out`` (``runs/<name>``), so the batch may move;
    :func:`mcalloc.load_batch` gives it back whole.
    """
    rows = []
    for record in records:
        row: dict[str, Any] = {
            "run": record.run.name,
            "status": record.status,
            "key": record.key[:16],
            "error": record.error,
            "folder": os.path.relpath(record.folder, out) if record.folder is not None else "",
        }
        resolved: dict[str, Any] | None = None
        for parameter in batch.parameters:
            if parameter in record.run.swept or parameter == "entry":
                value = record.run.swept.get(parameter)
            else:
                # a key some runs: entries set and this one does not: the value the run had all the same
                resolved = _resolved_config(record.folder) if resolved is None else resolved
                value = _dotted(resolved, parameter)
                if isinstance(value, dict | list):
                    value = None  # as for an entry's own mapping: the entry's name describes it
            row[parameter] = value if isinstance(value, str | int | float | bool) or value is None else str(value)
        row.update(record.numbers)
        rows.append(row)
    return pd.DataFrame(rows)


def _resolved_config(folder: Path | None) -> dict[str, Any]:
    """The resolved scenario a run wrote (``config.yaml``), or nothing for a run that never wrote one."""
    import yaml

    path = None if folder is None else folder / "config.yaml"
    if path is None or not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def _dotted(config: Any, key: str) -> Any:
    """``config``'s value at a dotted key (``portfolio.rebalance``, ``assets.0.ter``), or None."""
    for part in key.split("."):
        if isinstance(config, dict) and part in config:
            config = config[part]
        elif isinstance(config, list) and part.isascii() and part.isdigit() and int(part) < len(config):
            config = config[int(part)]
        else:
            return None
    return config


def key_numbers(folder: Path) -> dict[str, float]:
    """A finished run's index columns: key metrics per portfolio and the diversification benefit."""
    numbers: dict[str, float] = {}
    metrics = read_results_csv(folder / "metrics.csv")
    if "currency" in metrics:
        metrics = metrics[metrics["currency"] == metrics["currency"].iloc[0]]
    from mcalloc.report.compare import MONEY_METRICS, has_money

    # the investor's money too where the run saves, withdraws or is taxed (an account sweep's question)
    shown = [*INDEX_METRICS, *(MONEY_METRICS if has_money(_resolved_config(folder)) else [])]
    for _, row in metrics.iterrows():
        for metric in shown:
            if metric in row:
                numbers[f"{metric}:{row['portfolio']}"] = float(row[metric])
    diversification_file = folder / "diversification.csv"
    if diversification_file.is_file() and diversification_file.read_text(encoding="utf-8").strip():
        table = read_results_csv(diversification_file)
        if not table.empty:
            table = table[table["currency"] == table["currency"].iloc[0]]
            for _, row in table[table["statistic"].isin(BENEFITS)].iterrows():
                numbers[f"benefit_{row['statistic']}:{row['portfolio']}"] = float(row["difference"])
    return numbers


def _write_index(folder: Path, table: pd.DataFrame) -> None:
    """``index.csv`` and ``index.parquet``, each written aside and moved into place.

    A parameter column whose values are of several types (a number in one
    run, text in another) is written as text: Parquet columns have one type.
    """
    table = table.copy()
    for column in table.columns:
        kinds = {
            "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
            for value in table[column]
            if value is not None and value == value
        }
        if len(kinds) > 1:
            table[column] = table[column].map(lambda value: value if value is None else str(value))
        elif kinds == {"number"} and ":" not in str(column) and _whole(table[column]):
            # a swept whole number (a seed) stays one where a run without it made the column floats
            table[column] = table[column].astype("Int64")
    # the metrics as every results table has them; a swept number as the run used it (0.3 and
    # 0.30000000000000004 are two runs, and were one value at 10 digits)
    written = table.copy()
    for column in written.columns:
        if ":" not in str(column) and pd.api.types.is_float_dtype(written[column]):
            written[column] = written[column].map(lambda value: repr(float(value)) if value == value else "")
    csv, parquet = folder / ".index.csv.tmp", folder / ".index.parquet.tmp"
    try:
        written.to_csv(csv, index=False, float_format="%.10g")
        table.to_parquet(parquet, index=False)
        os.replace(csv, folder / "index.csv")
        os.replace(parquet, folder / "index.parquet")
    except OSError as error:
        for temporary in (csv, parquet):
            temporary.unlink(missing_ok=True)
        raise OutputError(
            f"{folder}: the batch index cannot be written ({error.strerror or type(error).__name__}); "
            "give another --out"
        ) from None


def _whole(values: pd.Series) -> bool:
    """Whether every number among ``values`` (missing ones aside) is a whole number within int64's range."""
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return bool(numbers.size) and bool(((numbers % 1 == 0) & (numbers.abs() < 2**53)).all())


def _failed(folder: Path, started: bool) -> Path | None:
    """Where a failed run's folder went (``<name>.failed``), if it started at all."""
    failed = folder.parent / f"{folder.name}.failed"
    return failed if started and failed.is_dir() else None


def is_complete(folder: Path, key: str) -> bool:
    """Whether ``folder`` holds a complete, undamaged run with batch key ``key`` (else it is run again)."""
    from mcalloc.api import RunFolderError, check_files, read_manifest

    try:
        manifest = read_manifest(folder)
        if manifest.get("status") != "complete" or manifest.get("batch_key") != key:
            return False
        check_files(folder, manifest)
    except RunFolderError:
        return False
    return True


def _unmade(out: Path, reason: str) -> OutputError:
    return OutputError(f"{out}: the batch folder cannot be made ({reason}); give another --out")


_BATCH_FILES = frozenset({"index.csv", "index.parquet", "batch.html"})
"""The files a batch folder holds beside its folders (``runs/``, ``figures/``)."""


def check_batch_folder(out: Path) -> None:
    """Refuse, before any run (and in a dry run), a batch folder that cannot be made or is something else.

    An existing folder is taken if it holds folders and a batch's own files
    only: an earlier batch (resumed), an empty folder, or the folder of a
    scenario's runs (``results/<name>/``, the default for a batch named
    after the scenario). A run's folder or any other file is refused: a later
    ``mcalloc run --out`` there would replace the batch with it.
    """
    if out.is_dir():
        try:
            files = sorted(entry.name for entry in out.iterdir() if not entry.is_dir())
        except OSError as error:
            raise OutputError(
                f"{out}: the batch folder cannot be read ({error.strerror}); give another --out"
            ) from None
        if "manifest.json" in files:
            raise OutputError(
                f"{out}: exists and is not a batch folder (an mcalloc results folder); give another --out"
            )
        if not os.access(out, os.W_OK | os.X_OK):  # a dry run says so too, not only the first run's failure
            raise OutputError(f"{out}: the batch folder cannot be written (permission denied); give another --out")
        if {"index.csv", "index.parquet"} & set(files):
            return  # an earlier batch, resumed whatever else was put beside it
        # hidden files too (a desktop's own), and logs (--log-file may name one in the folder)
        foreign = [name for name in files if name not in _BATCH_FILES and not name.startswith(".")]
        foreign = [name for name in foreign if not name.endswith(".log")]
        if foreign:
            raise OutputError(f"{out}: exists and is not a batch folder (holds {foreign[0]}); give another --out")
        return
    problem = "a file is in the way" if out.exists() else place_problem(out)
    if problem is not None:
        raise _unmade(out, problem)


LOCK = ".batch.lock"
"""A batch folder's lock file: held (``flock``) by the batch running in it, and released when it ends or dies."""


def _lock_batch(out: Path, report: Callable[[str], None]) -> TextIO | None:
    """Hold ``out``'s lock for this process, or refuse: two batches in one folder would each call the other's
    runs failed, and the index left would contradict the folders.

    Where locks are not to be had (no ``fcntl``: Windows; a file system
    without them, such as NFS without its lock daemon) the batch runs
    unlocked, and says so.
    """
    try:
        import fcntl
    except ImportError:
        report(f"{out}: this system has no file locks: running unlocked, so a second batch in it would not be refused")
        return None
    try:
        handle = (out / LOCK).open("a+", encoding="utf-8")
    except OSError as error:
        raise OutputError(
            f"{out}: the batch folder cannot be written ({error.strerror or type(error).__name__}); give another --out"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise in_use(out, holder) from None
    except OSError as error:
        handle.close()
        report(
            f"{out}: the folder's file system cannot lock it ({error.strerror or type(error).__name__}): running "
            "unlocked, so a second batch started in it would not be refused"
        )
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    return handle


def in_use(out: Path, holder: str) -> OutputError:
    """The refusal of a folder another batch (``holder``) is running in."""
    return OutputError(
        f"{out}: another mcalloc batch ({holder}) is running in this folder; wait for it to finish or give "
        "another --out"
    )


def batch_in_use(out: Path) -> str | None:
    """Who holds ``out``'s lock (a running batch), or ``None``: what a dry run refuses as the batch would."""
    try:
        import fcntl

        handle = (out / LOCK).open(encoding="utf-8")
    except (ImportError, OSError):  # no locks here, or no lock file: no batch has held the folder
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _earlier(batch: Batch, out: Path, overrides: list[str]) -> dict[str, RunRecord]:
    """The runs whose folders hold the same run complete already (an earlier invocation's), by name.

    What the index says of a run an interrupted batch did not reach: ``skipped``,
    with its numbers, when its folder's manifest is complete under the key the
    run has now (its files are checked when the batch reaches it).
    """
    from mcalloc.api import RunFolderError, read_manifest

    found = {}
    for run in batch.runs:
        folder = out / "runs" / run.name
        try:
            manifest = read_manifest(folder)
        except RunFolderError:
            continue
        if manifest.get("status") != "complete":
            continue
        try:
            key = run_key(load_scenario(run.config, [*run.overrides, *overrides], run.origins))
            if manifest.get("batch_key") != key:
                continue
            numbers = key_numbers(folder)
        except Exception:  # noqa: BLE001 - a bad run or a damaged folder is the main loop's to report or rerun
            continue
        found[run.name] = RunRecord(run, "skipped", key, folder, numbers=numbers)
    return found


def check_distinct_runs(batch: Batch, overrides: list[str], options: Sequence[str] = ()) -> None:
    """Refuse two runs of ``batch`` with one key: the same scenario and seed, which give the same results.

    Two entries with the same settings, or one scenario under two paths,
    ran twice under two names without a word (a file given twice is refused
    as the sweep is read). A run that cannot be loaded is left to fail alone,
    unless its error names one of ``options`` (``--n-jobs``, ``--set KEY``:
    the command line's, which would fail every run alike): that is raised.
    """
    seen: dict[str, str] = {}
    for run in batch.runs:
        try:
            key = run_key(load_scenario(run.config, [*run.overrides, *overrides], run.origins))
        except McallocError as error:
            if any(str(error).startswith(f"{option}:") for option in options):
                raise
            continue
        if key in seen:
            raise ConfigError(
                f"runs {seen[key]} and {run.name} are one run (the same scenario and seed, key {key}), which would "
                "give the same results twice; drop one, or set them apart"
            )
        seen[key] = run.name


def run_batch(
    batch: Batch,
    out: Path,
    overrides: list[str] | None = None,
    report: Callable[[str], None] = lambda message: None,
    options: Sequence[str] = (),
    force: bool = False,
) -> BatchOutcome:
    """Run every run of ``batch`` not already complete, into ``out/runs/<name>``; write the index after each.

    ``overrides`` (``--set`` strings) apply to every run, after its own;
    ``options`` name the command line's settings the runs hold; ``force``
    runs a run whose estimated memory exceeds what the machine has free (it
    fails that run otherwise).

    Raises
    ------
    ConfigError
        Before any run: two runs that are one, or a run refusing one of
        ``options`` (:func:`check_distinct_runs`).
    """
    check_batch_folder(out)
    check_distinct_runs(batch, overrides or [], options)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unmade(out, error.strerror or type(error).__name__) from None
    lock = _lock_batch(out, report)
    try:
        return _run_locked(batch, out, overrides or [], report, force)
    finally:
        if lock is not None:
            lock.close()


def _run_locked(
    batch: Batch, out: Path, overrides: list[str], report: Callable[[str], None], force: bool
) -> BatchOutcome:
    """:func:`run_batch` in its folder, locked."""
    from mcalloc.pipeline import run_scenario

    earlier = _earlier(batch, out, overrides)
    records: list[RunRecord] = []
    unreachable: dict[str, str] = {}  # a scheduler that did not answer one run is not waited for again
    for position, run in enumerate(batch.runs, start=1):
        check_stop()  # a SIGTERM whose exception a run swallowed: no further run starts
        scheduler: str | None = None
        folder = out / "runs" / run.name
        label = f"[{position}/{len(batch.runs)}] {run.name}"
        start = time.perf_counter()
        started = False
        key = ""  # known once the run's settings are: a failed run's row gives it too
        try:
            known = earlier.get(run.name)  # its scenario already loaded and keyed at the start
            if known is not None and is_complete(folder, known.key):
                records.append(known)
                report(f"{label}: already complete, skipped")
                continue
            scenario = load_scenario(run.config, [*run.overrides, *overrides], run.origins)
            key = run_key(scenario)
            if is_complete(folder, key):
                records.append(RunRecord(run, "skipped", key, folder, numbers=key_numbers(folder)))
                report(f"{label}: already complete, skipped")
                continue
            if not force:
                check_memory(scenario, force="pass --force to mcalloc batch")
            if scenario.simulation.backend == "dask":
                scheduler = scenario.simulation.scheduler
            if scheduler in unreachable:
                raise ConfigError(f"{unreachable[scheduler]} (as for an earlier run of this batch)")
            report(f"{label}: running")
            started = True
            done = run_scenario(scenario, out=folder, extra_manifest={"batch_key": key}).folder
            seconds = time.perf_counter() - start
            records.append(RunRecord(run, "complete", key, done, seconds=seconds, numbers=key_numbers(done)))
            report(f"{label}: complete in {seconds:.1f} s")
        except McallocError as error:
            check_stop()  # an error on the way out of a SIGTERM is the interruption (the index says so)
            message = str(error).splitlines()[0]
            # a scheduler that could not be reached (a ConfigError), not a cluster that failed during a run (a
            # ClusterError: a lost worker, workers still queued), which the next run may find well again
            if scheduler is not None and isinstance(error, ConfigError) and message.startswith("simulation.scheduler:"):
                unreachable.setdefault(scheduler, message)
            records.append(
                RunRecord(run, "failed", key, _failed(folder, started), message, time.perf_counter() - start)
            )
            report(f"{label}: failed: {message}")
        except Exception as error:  # noqa: BLE001 - one broken run must not stop the batch
            check_stop()
            message = f"unexpected error: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            records.append(
                RunRecord(run, "failed", key, _failed(folder, started), message, time.perf_counter() - start)
            )
            report(f"{label}: failed: {message}")
        finally:
            stopped = []
            if len(records) < position:  # interrupted (SIGTERM, Ctrl-C) mid-run: the index says so, as the manifest
                failed = _failed(folder, started)
                how = "Terminated" if stop_requested() else type(sys.exc_info()[1]).__name__
                said = INTERRUPTIONS.get(how, "interrupted")
                stopped = [RunRecord(run, "failed", key, failed, said, time.perf_counter() - start)]
            # a run not reached is pending, unless an earlier invocation completed it as it is now
            later = batch.runs[len(records) + len(stopped) :]
            pending = [earlier.get(r.name, RunRecord(r, "pending")) for r in later]
            _write_index(out, index_table(batch, [*records, *stopped, *pending], out))
    index = index_table(batch, records, out)
    _write_index(out, index)
    return BatchOutcome(out, tuple(records), index)
