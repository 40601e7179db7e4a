"""The results folder: written under a temporary name, renamed when complete.

While a run works, its files live in ``.<name>.partial`` beside the final
folder, with ``manifest.json`` saying ``status: running``. On success the
manifest says ``complete`` and the folder takes its final name; on failure
the manifest says ``failed`` (with the error) and the folder is renamed
``<name>.failed``. So a folder with the final name is always complete.

It also holds what a run and a backtest write into their folders alike: the
manifest's records of the data and of a model's own file, and the seconds
each stage took (:class:`StageClock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from mcalloc.data.files import file_sha256
from mcalloc.errors import ModelError, OutputError, Terminated, check_stop, stop_requested
from mcalloc.results.columns import TEXT_COLUMNS

if TYPE_CHECKING:
    from mcalloc.config.schema import Scenario
    from mcalloc.data.market import MarketData
    from mcalloc.models.joint import JointModel

__all__ = [
    "CLAIM",
    "SCHEMA_VERSION",
    "RunFolder",
    "StageClock",
    "check_final",
    "data_window",
    "is_mcalloc_folder",
    "mcalloc_folder_above",
    "model_files",
    "move_into_place",
    "package_versions",
    "place_problem",
    "provenance_records",
    "read_results_csv",
    "record_failure",
    "release_claim",
    "working_folder",
    "writer_record",
]

SCHEMA_VERSION = "1.17"
"""1.1 added fan.csv, drawdowns.csv, report.html and figures/; 1.2 the manifest's ``files`` digests; 1.3
return_correlation.csv; 1.4 corrected costs and taxes; 1.5 the initial purchase's costs; 1.6 frontier.csv's
uncompounded drawdown measures; 1.7 models.csv's likelihoods at the reset omega, prob_loss_se, cdar_95 at peaks,
the unpaired split; 1.8 the joint test's p-value, prob_depleted, relative bands; 1.9 the depot's horizon sale,
metrics.csv's column order and standard errors; 1.10 optimization.csv's month-end drawdowns on the new paths,
empty path measures of parametric scenarios and the uncompounded CVaR's objective_new_paths; 1.11 a taxed account's
year-end tax in the time-weighted columns as a share of the year's most units, and failed folders without report.html;
1.12 a depot's whole-purchase trading costs in the cost basis, and the compiled exp; 1.13 the unpaired interval's
halves each with their own m-out-of-n factor; 1.14 year-end values kept in float32; 1.15 the copulas' normals by
inversion, and the benchmarks' order in config_hash and sweeps; 1.16 money lost beyond -99.3% a year as an mwr of -1,
flows into an emptied account at a unit's value, flows' start months rounded a half up (docs/results.md)."""

_KEY_PACKAGES = (
    "mcalloc", "numpy", "scipy", "pandas", "arch", "cvxpy", "clarabel", "highspy", "numba", "llvmlite", "joblib",
    "pydantic",
)  # fmt: skip
"""The packages whose versions can change a number: the compiled kernels (numba, llvmlite) and the solvers too."""


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RunFolder:
    """A results folder being written; use :meth:`create`, then :meth:`complete` or :meth:`fail`."""

    final: Path
    working: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, final: Path, manifest: dict[str, Any]) -> RunFolder:
        """Start a run folder for ``final``.

        An existing ``final`` is replaced only if it is an earlier mcalloc
        result (it holds a ``manifest.json``), and only once the new run is
        complete.
        """
        working = working_folder(final, "manifest.json", "results folder", str(manifest.get("kind", "run")))
        folder = cls(final=final, working=working)
        folder.manifest = {
            "status": "running",
            "schema_version": SCHEMA_VERSION,
            **manifest,
            "started_at": _now(),
            "finished_at": None,
            "engine_version": package_versions()["mcalloc"],
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            # who writes the folder, so that `mcalloc runs` can tell a live run from one killed mid-way
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "packages": package_versions(),
        }
        folder.write_manifest()
        release_claim(working)
        return folder

    def write_manifest(self) -> None:
        self._write_text("manifest.json", json.dumps(self.manifest, indent=2, default=str) + "\n")

    def _write_text(self, name: str, text: str) -> None:
        data = text.encode("utf-8")
        temporary = self.working / f".{name}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, self.working / name)
        if name != "manifest.json":
            self._record_file(name, hashlib.sha256(data).hexdigest())

    def _record_file(self, name: str, digest: str) -> None:
        """Note a result file's sha256 in the manifest (written with its next update), so readers can check it."""
        self.manifest.setdefault("files", {})[name] = digest

    def write_parquet(self, name: str, frames: Iterable[pd.DataFrame]) -> None:
        """Tables with the same columns as one Parquet file (pyarrow), a row group each, moved into place."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        temporary = self.working / f".{name}.tmp"
        writer: pq.ParquetWriter | None = None
        try:
            for frame in frames:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(temporary, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        os.replace(temporary, self.working / name)
        self._record_file(name, file_sha256(self.working / name))

    def write_yaml(self, name: str, data: dict[str, Any]) -> None:
        self._write_text(name, yaml.safe_dump(data, sort_keys=False))

    def write_csv(self, name: str, frame: pd.DataFrame) -> None:
        """Write ``frame`` as ``name``, refusing non-finite numbers (see :func:`check_finite`)."""
        check_finite(name, frame)
        self._write_text(name, frame.to_csv(index=False, float_format="%.10g"))

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)
        self.write_manifest()

    def complete(self) -> Path:
        """Mark the run complete and move it to its final name; a SIGTERM that was swallowed stops it here."""
        check_stop()
        self.update(status="complete", finished_at=_now())
        move_into_place(self.working, self.final)
        stale = self.final.parent / f"{self.final.name}.failed"
        if stale.exists():
            shutil.rmtree(stale)
        return self.final

    def fail(self, error: BaseException) -> Path:
        """Mark the run failed with its error and move it aside as ``<name>.failed``.

        After a SIGTERM the error is the termination, whatever the stage raised on its way out.
        """
        if stop_requested() and not isinstance(error, Terminated):
            error = Terminated()
        kind = type(error).__name__
        message = str(error).splitlines()[0] if str(error) else INTERRUPTIONS.get(kind, "no message")
        self.update(status="failed", finished_at=_now(), error=f"{kind}: {message}")
        # a page drawn before the stop came would read as a finished run's: the results stay, the report goes
        # (`mcalloc report` refuses a failed run's folder, so no page is drawn for one)
        (self.working / "report.html").unlink(missing_ok=True)
        shutil.rmtree(self.working / "figures", ignore_errors=True)
        failed = self.final.parent / f"{self.final.name}.failed"
        if failed.exists():
            shutil.rmtree(failed)
        os.replace(self.working, failed)
        return failed


INTERRUPTIONS = {"KeyboardInterrupt": "interrupted (SIGINT, Ctrl-C)", "Terminated": "stopped (SIGTERM)"}
"""What a manifest's ``error`` (and a batch's index) says of the interruptions, which carry no message of their own."""

COMPLETE_NUMBERS = ("metrics.csv", "weights.csv", "fan.csv", "drawdowns.csv", "horizons.csv")
"""Results whose every number must be present: a NaN there means a computation broke, not "not applicable"."""

EMPTY_BY_DESIGN = {"horizons.csv": ("prob_below_reference",), "metrics.csv": ("sharpe", "sortino")}
"""Columns of :data:`COMPLETE_NUMBERS` that are empty when they do not apply: no benchmark to be below; a ratio
whose denominator is 0 (yearly returns that never differ, or never fall below the risk-free rate)."""


MODEL_DESCRIPTIONS = ("models.csv", "model_selection.csv", "dependence.csv")
"""Descriptions of the model, where ``inf`` is a true value (an EGARCH with t shocks: no finite long-run variance)."""


def check_finite(name: str, frame: pd.DataFrame) -> None:
    """Refuse infinite numbers in any result but the model's description, and missing ones in :data:`COMPLETE_NUMBERS`.

    Raises
    ------
    ModelError
        Naming the file, the column and the first row's label, so that no
        folder with such numbers is ever marked complete.
    """
    numeric = frame.select_dtypes(include="number")
    if numeric.empty or name in MODEL_DESCRIPTIONS:
        return
    values = numeric.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isinf(values) if name not in COMPLETE_NUMBERS else ~np.isfinite(values)
    empty_allowed = EMPTY_BY_DESIGN.get(name, ())
    for position, header in enumerate(numeric.columns):
        if header in empty_allowed:
            bad[:, position] = np.isinf(values[:, position])
    if not bad.any():
        return
    row, column = (int(i[0]) for i in np.nonzero(bad))
    label = str(frame.iloc[row, 0])
    raise ModelError(
        f"{name}: column {numeric.columns[column]} is {values[row, column]} for {label}: the simulation overflowed "
        "or broke down; check the model's parameters (mu, omega, nu) and the amounts of money in the scenario"
    )


def place_problem(path: Path) -> str | None:
    """Why ``path``, a file or folder still to be made, cannot be made where it is; None when nothing is seen.

    The nearest of its parents that exists must be a folder (a file there is
    what ``mkdir`` reports as "File exists") that can be written. Checked
    before any work, so that a run, a fit or a comparison is not done for
    nothing; a name too long or a full disk is still found by the write.
    """
    try:
        existing = next((parent for parent in path.parents if parent.exists()), None)
        if existing is None:
            return None
        if not existing.is_dir():
            return f"{existing} is a file, not a folder"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"the folder {existing} cannot be written (permission denied)"
    except OSError:
        return None
    return None


def check_final(final: Path, marker: str, what: str, kind: str = "run") -> None:
    """Refuse a ``final`` folder that :func:`working_folder` would refuse, without making anything.

    ``final`` may exist only as an empty folder or as an earlier folder of
    the same kind (one holding ``marker``; for a manifest, of the same
    ``kind``: a run does not replace a backtest), which is then replaced; its
    parents must be folders that can be written. A symbolic link is refused:
    the finished folder would replace the link, not the folder it points to.
    So are a name mcalloc gives its failed and hidden working folders, a place
    inside another mcalloc folder, and a folder to replace that holds one:
    replacing the outer folder would delete the inner one.
    """
    hidden = final.name.startswith(".") and final.name.endswith((".partial", ".replaced"))
    if hidden or final.name.endswith(".failed"):
        # a failed run of NAME would replace a complete NAME.failed; .NAME.partial is a working folder's name
        raise OutputError(
            f"{final}: a name mcalloc gives to failed (NAME.failed) and unfinished (.NAME.partial) folders, so a "
            "complete one there could be replaced by a failure; give it another name (another --out)"
        )
    holder = mcalloc_folder_above(final)
    if holder is not None:
        raise OutputError(
            f"{final}: inside the mcalloc folder {holder}, which a later run or backtest there would replace with "
            "all it holds; choose an --out (or output.dir) outside it"
        )
    try:
        link = os.readlink(final)
    except OSError:  # not a link, not there, or a name the system refuses (found below)
        link = None
    if link is not None:
        raise OutputError(
            f"{final}: is a symbolic link (to {link}); give the folder it points to, or a new path, as --out"
        )
    problem = place_problem(final)
    if problem is not None:
        raise OutputError(f"{final}: {problem}; choose another --out")
    try:
        is_same_kind = (final / marker).is_file()
        occupied = final.exists() and not is_same_kind and (not final.is_dir() or any(final.iterdir()))
    except OSError as exc:
        raise OutputError(f"{final}: cannot use this folder ({exc.strerror}); choose another --out") from None
    if occupied:
        raise OutputError(f"{final}: exists and is not an mcalloc {what}; choose another --out")
    if is_same_kind:
        _check_replaceable(final, marker, what, kind)


def _manifest_in(folder: Path) -> dict[str, Any]:
    """``folder``'s ``manifest.json`` as a mapping; empty where there is none, or it is not a JSON object."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def mcalloc_folder_above(path: Path) -> Path | None:
    """The nearest folder above ``path`` that is a run's or a backtest's, if any.

    The folders above as the system resolves them: ``../x`` is not inside
    the current folder.
    """
    return next((parent for parent in Path(os.path.abspath(path)).parents if is_mcalloc_folder(parent)), None)


def is_mcalloc_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an mcalloc manifest (not another tool's ``manifest.json``)."""
    manifest = _manifest_in(folder)
    return "schema_version" in manifest and "status" in manifest


def _check_replaceable(final: Path, marker: str, what: str, kind: str) -> None:
    """Refuse to replace ``final`` (an earlier folder holding ``marker``) if it is of another kind or holds another."""
    if marker == "manifest.json":
        existing = str(_manifest_in(final).get("kind", "run"))
        if existing != kind:
            raise OutputError(f"{final}: holds an mcalloc {existing}, not a {kind}; choose another --out")
    try:
        inner = next(
            (
                path.parent
                for path in final.glob("*/*")
                if (is_mcalloc_folder(path.parent) if path.name == "manifest.json" else path.name == marker)
            ),
            None,
        )
    except OSError:
        inner = None
    if inner is not None:
        raise OutputError(
            f"{final}: holds another mcalloc folder ({inner.name}), which replacing this {what} would delete; "
            "move it out first, or choose another --out"
        )


def working_folder(final: Path, marker: str, what: str, kind: str = "run") -> Path:
    """A fresh ``.<name>.partial`` beside ``final``, where a folder is built before :func:`move_into_place`.

    ``final`` may exist only as an empty folder or as an earlier folder of
    the same kind (one holding ``marker``), which is then replaced (see :func:`check_final`).
    """
    check_final(final, marker, what, kind)
    working = final.parent / f".{final.name}.partial"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        # mkdir is atomic: of two runs started into one folder, one gets it and the other finds it taken
        for _ in range(2):
            try:
                working.mkdir()
                _claim(working)
                return working
            except FileExistsError:
                writer = _current_writer(working)
                if writer is not None:
                    raise OutputError(
                        f"{final}: {writer} is writing this {what}; wait for it to finish or choose another --out"
                    ) from None
                # left by a run that is gone: moved aside under a name of our own first, so that of two runs
                # clearing it only one does, and neither deletes a folder the other has claimed since
                retired = working.with_name(f"{working.name}.gone-{os.getpid()}-{uuid.uuid4().hex[:8]}")
                try:
                    os.rename(working, retired)
                except FileNotFoundError:
                    continue
                if _current_writer(retired) is not None:
                    # another run cleared it first and has claimed a fresh one since we looked: give that back
                    with contextlib.suppress(OSError):
                        os.rename(retired, working)
                    raise OutputError(
                        f"{final}: another run has just started writing this {what}; wait for it to finish or "
                        "choose another --out"
                    ) from None
                shutil.rmtree(retired, ignore_errors=True)
    except OSError as exc:
        raise OutputError(
            f"{final}: cannot create the {what} in {final.parent} ({exc.strerror}); choose another --out"
        ) from None
    raise OutputError(f"{final}: another run keeps creating this {what}; choose another --out")


_STARTING_SECONDS = 60.0
"""How long a ``.partial`` folder without a manifest or a claim counts as a run starting (they follow at once)."""

CLAIM = ".writer.json"
"""Who claimed a ``.partial`` folder (pid, host, time), written as soon as it exists, until a manifest says it."""


def _claim(working: Path) -> None:
    """Record this process as the writer of the folder it has just created.

    The manifest says the same, but only once the run has gathered it
    (package versions take a moment): a run killed before that would
    otherwise leave a folder that looks like one still starting.
    """
    claim = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": _now()}
    temporary = working / f"{CLAIM}.tmp"
    temporary.write_text(json.dumps(claim), encoding="utf-8")
    os.replace(temporary, working / CLAIM)


def release_claim(working: Path) -> None:
    """Drop the claim once the folder's manifest names its writer, or before the folder is moved into place."""
    (working / CLAIM).unlink(missing_ok=True)


_ELSEWHERE_HOURS = 12.0
"""How long after its last change a folder written on another machine counts as still being written there."""


def _current_writer(working: Path) -> str | None:
    """Who is writing the unfinished folder ``working``, or ``None`` when it was left by a run that is gone.

    Its manifest names the writing process; a process alive on this machine
    is writing it, and so is one on another machine (which only that machine
    can judge) unless nothing in the folder changed for
    :data:`_ELSEWHERE_HOURS` (a container's host name changes with each
    run). A folder with no manifest yet is a run starting, unless it is older
    than :data:`_STARTING_SECONDS`.
    """
    from mcalloc.results.inventory import writer_alive

    try:
        manifest = writer_record(working)
    except FileNotFoundError:
        try:
            age = datetime.now().timestamp() - working.stat().st_mtime
        except FileNotFoundError:
            return None
        return "another mcalloc run, starting," if age < _STARTING_SECONDS else None
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("pid") == os.getpid():
        return None
    alive = writer_alive(manifest)
    if alive:
        return f"mcalloc process {manifest['pid']}"
    if alive is None and manifest.get("host") not in (None, socket.gethostname()):
        try:
            changed = max(path.stat().st_mtime for path in [working, *working.iterdir()])
        except OSError:
            return None
        if datetime.now().timestamp() - changed < _ELSEWHERE_HOURS * 3600.0:
            return f"mcalloc on {manifest['host']} (delete {working} if it no longer runs there)"
    return None


def writer_record(working: Path) -> Any:
    """The folder's manifest, or the claim its writer left before writing one (``FileNotFoundError``: neither)."""
    for name in ("manifest.json", CLAIM):
        try:
            return json.loads((working / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
    raise FileNotFoundError(working / "manifest.json")


def move_into_place(working: Path, final: Path) -> None:
    """Give ``working`` the name ``final``; an earlier ``final`` is moved aside first and deleted after.

    Not after a SIGTERM (:func:`mcalloc.errors.check_stop`): what was being built is not made final.
    """
    from mcalloc.results.inventory import replaced_by_mcalloc

    check_stop()
    if final.exists():
        retired = final.parent / f".{final.name}.replaced"
        if retired.exists() and (replaced_by_mcalloc(retired) or not any(retired.iterdir())):
            shutil.rmtree(retired)  # an earlier replacement's, left by a run killed in between
        number = 2
        while retired.exists():  # a folder of that name that is not mcalloc's: left alone
            retired, number = final.parent / f".{final.name}-{number}.replaced", number + 1
        os.replace(final, retired)
        os.replace(working, final)
        shutil.rmtree(retired)
    else:
        os.replace(working, final)


_MISSING = ["", "nan", "NaN", "NA", "<NA>", "null", "None", "N/A", "n/a", "-nan", "-NaN", "#N/A"]
"""What reads as a missing value in a number column (pandas' own list); a text column's only missing value is ""."""


def read_results_csv(path: Path, **options: Any) -> pd.DataFrame:
    """A table mcalloc wrote, its text columns (:data:`TEXT_COLUMNS`) read as the text they hold.

    pandas would read a label ``NA`` or ``None`` back as missing, ``007`` as
    7 and ``1e3`` as 1000 (free-text labels, batch run names). ``options``
    go to :func:`pandas.read_csv`.

    Raises
    ------
    ValueError
        pandas' own errors of an unreadable file (``ParserError`` is one).
    """
    header = [str(name) for name in pd.read_csv(path, nrows=0).columns]
    text = [name for name in header if name in TEXT_COLUMNS]
    missing = {name: [""] if name in text else _MISSING for name in header}
    dtype = {name: str for name in text} | dict(options.pop("dtype", {}))
    frame: pd.DataFrame = pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=missing, **options)
    return frame


def provenance_records(records: Any) -> list[dict[str, Any]]:
    """Provenance dataclasses as manifest-ready dictionaries."""
    return [asdict(record) for record in records]


class StageClock:
    """Seconds per stage; ``earlier`` holds time spent on a stage's work before it started (the data read before
    the folder is made), counted once the stage finishes."""

    def __init__(self, report: Callable[[str], None], earlier: dict[str, float] | None = None) -> None:
        self.timings: dict[str, float] = {}
        self.report = report
        self.earlier = dict(earlier or {})

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self.report(f"{name} ...")
        yield
        spent = time.perf_counter() - start + self.earlier.pop(name, 0.0)
        self.timings[name] = round(self.timings.get(name, 0.0) + spent, 3)


def model_files(scenario: Scenario, model: JointModel) -> list[dict[str, object]]:
    """The manifest's record of a calibrated model's own file: the residuals an ``fhs`` model resamples."""
    from mcalloc.models.bootstrap import ResidualBootstrap

    residuals = scenario.model.dependence.residuals
    if (
        scenario.model.source != "calibrated"
        or residuals is None
        or not isinstance(model.dependence, ResidualBootstrap)
    ):
        return []
    rows = model.dependence.residuals.shape[0]
    record = {"source": "model.dependence.residuals", "path": str(Path(residuals).resolve())}
    return [{**record, "sha256": file_sha256(Path(residuals)), "first_date": None, "last_date": None, "rows": rows}]


def data_window(data: MarketData | None) -> dict[str, object] | None:
    """The part of the data the model was fitted to, for the manifest."""
    if data is None:
        return None
    return {
        "frequency": data.frequency,
        "first_return": str(data.returns.index[0].date()),
        "last_return": str(data.returns.index[-1].date()),
        "n_returns": int(data.returns.shape[0]),
        "series": list(data.returns.columns),
        "dropped_dates": data.dropped_dates,
        "filled_values": data.filled_dates,
    }


def record_failure(folder: RunFolder, clock: StageClock, error: BaseException) -> None:
    """Keep the stage timings and move the unfinished folder aside as failed, naming ``error``."""
    folder.update(timings_s=clock.timings)
    folder.fail(error)
