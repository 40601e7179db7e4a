"""The Python API for notebooks and report pipelines: run a scenario, or load a finished run.

    import mcalloc

    run = mcalloc.run("configs/default.yaml", simulation__n_paths=2000)
    again = mcalloc.load(run.folder)
    again.metrics.set_index("portfolio")["cagr_median"]

Every results file of the folder is a DataFrame attribute (``None`` when the
run did not write it); ``manifest`` and ``config`` are plain dictionaries.
A folder from an incompatible results schema, an unfinished or a failed run
is refused with a one-line :class:`RunFolderError`.
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mcalloc.config import load_scenario
from mcalloc.config.loader import override_text
from mcalloc.config.schema import Scenario
from mcalloc.errors import ConfigError, McallocError, OutputError
from mcalloc.results.writer import SCHEMA_VERSION, read_results_csv

__all__ = [
    "Run",
    "RunFolderError",
    "check_files",
    "check_manifest_fields",
    "index_lacks",
    "load",
    "load_batch",
    "read_manifest",
    "run",
    "unfinished",
    "weight_ranges",
]


class RunFolderError(McallocError):
    """A folder that is not a complete mcalloc run this version can read."""


_TABLES = {
    "metrics": "metrics.csv",
    "weights": "weights.csv",
    "models": "models.csv",
    "correlation": "correlation.csv",
    "return_correlation": "return_correlation.csv",
    "dependence": "dependence.csv",
    "calibration": "calibration.csv",
    "model_selection": "model_selection.csv",
    "optimization": "optimization.csv",
    "diversification": "diversification.csv",
    "horizons": "horizons.csv",
    "frontier": "frontier.csv",
    "stability": "stability.csv",
    "fan": "fan.csv",
    "drawdowns": "drawdowns.csv",
}
_REQUIRED = {"metrics": ("portfolio",), "weights": ("portfolio", "asset", "weight"), "models": (), "correlation": ()}
"""The tables every run has, with the columns the readers index by."""


@dataclass(frozen=True, eq=False)
class Run:
    """One complete run: its folder, manifest, resolved config and every results table.

    Tables keep the files' columns and row order (see docs/results.md);
    ``paths`` is the per-path table of ``paths.parquet`` when the run wrote it.
    Two runs are equal only if they are one object: compare their tables to
    compare their results.
    """

    folder: Path
    manifest: dict[str, Any]
    config: dict[str, Any]
    metrics: pd.DataFrame
    weights: pd.DataFrame
    models: pd.DataFrame
    correlation: pd.DataFrame
    return_correlation: pd.DataFrame | None = None
    dependence: pd.DataFrame | None = None
    calibration: pd.DataFrame | None = None
    model_selection: pd.DataFrame | None = None
    optimization: pd.DataFrame | None = None
    diversification: pd.DataFrame | None = None
    horizons: pd.DataFrame | None = None
    frontier: pd.DataFrame | None = None
    stability: pd.DataFrame | None = None
    fan: pd.DataFrame | None = None
    drawdowns: pd.DataFrame | None = None
    paths: pd.DataFrame | None = None

    @property
    def portfolios(self) -> list[str]:
        """Portfolio names in the run's order (benchmarks, then optimised)."""
        return list(dict.fromkeys(self.weights["portfolio"]))

    @property
    def assets(self) -> list[str]:
        """Asset names in the run's order."""
        return list(dict.fromkeys(self.weights["asset"]))

    @classmethod
    def from_folder(cls, folder: Path, manifest: dict[str, Any], with_paths: bool = True) -> Run:
        """The tables of ``folder`` with ``manifest``, whatever its status (:func:`load` checks it first).

        ``with_paths=False`` leaves the per-path table (possibly large) unread.
        """
        config_file = folder / "config.yaml"
        if not config_file.is_file():
            raise RunFolderError(f"{config_file}: missing; the folder is damaged: run its scenario again")
        try:
            config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as error:  # a folder of schema 1.1, whose files have no checksums
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise RunFolderError(f"{config_file}: unreadable ({reason}); the folder is damaged") from None
        if not isinstance(config, dict):
            raise RunFolderError(f"{config_file}: not a scenario (a mapping); the folder is damaged")
        listed = manifest.get("files")
        if isinstance(listed, dict):
            # a table the run did not write (one copied in from another run) would be read and drawn as its own
            stray = next((file for file in _TABLES.values() if file not in listed and (folder / file).is_file()), None)
            if stray is not None:
                raise RunFolderError(
                    f"{folder / stray}: not among the files the run wrote (manifest.json lists none of that name); "
                    "remove it, or run its scenario again"
                )
        tables = {name: _read_table(folder / file) for name, file in _TABLES.items()}
        for required, columns in _REQUIRED.items():
            table = tables[required]
            path = folder / _TABLES[required]
            if table is None:
                raise RunFolderError(f"{folder}: {_TABLES[required]} is missing; the folder is damaged")
            if table.empty:
                raise RunFolderError(f"{path}: no rows; the folder is damaged: run its scenario again")
            for column in columns:
                if column not in table.columns:
                    raise RunFolderError(f"{path}: no column {column}; the folder is damaged: run its scenario again")
        paths_file = folder / "paths.parquet"
        paths = pd.read_parquet(paths_file) if with_paths and paths_file.is_file() else None
        if with_paths and paths is None and isinstance(listed, dict) and paths_file.name in listed:
            # the one file a folder may lose (it is the largest): said, so that it is not taken for output.paths: false
            warnings.warn(
                f"{paths_file}: deleted since the run wrote it, so paths is None; run the scenario again "
                "(config.yaml) for the per-path table",
                stacklevel=4,
            )
        return cls(folder=folder, manifest=manifest, config=config, paths=paths, **tables)  # type: ignore[arg-type]

    def weights_table(self) -> pd.DataFrame:
        """Weights as portfolio rows and asset columns, in the run's order."""
        wide = self.weights.pivot(index="portfolio", columns="asset", values="weight")
        return wide.loc[self.portfolios, self.assets]


def _check_intact(run: Run) -> None:
    """Refuse tables that lost rows or values, which a folder without checksums (schema 1.1 and earlier) can hide.

    Every portfolio of ``weights.csv`` has its rows in ``metrics.csv``; the
    weights are numbers; the last line of ``metrics.csv`` has as many fields
    as its header (a cell may be empty, a line cut short has fewer).
    """
    damaged = "the folder is damaged: run its scenario again"
    metrics, weights = run.metrics, run.weights
    if not pd.api.types.is_numeric_dtype(weights["weight"]):
        raise RunFolderError(f"{run.folder / 'weights.csv'}: a weight that is not a number; {damaged}")
    missing = [p for p in dict.fromkeys(weights["portfolio"]) if p not in set(metrics["portfolio"])]
    if missing:
        raise RunFolderError(f"{run.folder / 'metrics.csv'}: no rows for {', '.join(map(str, missing))}; {damaged}")
    with (run.folder / "metrics.csv").open(encoding="utf-8", newline="") as handle:
        lines = [row for row in csv.reader(handle) if row]
    if len(lines[-1]) != len(lines[0]):
        raise RunFolderError(f"{run.folder / 'metrics.csv'}: its last line is cut short; {damaged}")


def weight_ranges(stability: pd.DataFrame | None, text: pd.DataFrame) -> pd.DataFrame | None:
    """``text`` (weights as text, portfolio rows, asset columns) with each optimised weight's range, or ``None``.

    The range is the lowest..highest percent over independent batches of the
    optimiser's paths (a run's ``stability.csv``), e.g. ``87.3% (82..100)``;
    ``None`` for a run without the batches (no objectives, or too few paths).
    """
    if stability is None or stability.empty or not stability["batch_min"].notna().any():
        return None
    low = stability.pivot(index="portfolio", columns="asset", values="batch_min").reindex_like(text)
    high = stability.pivot(index="portfolio", columns="asset", values="batch_max").reindex_like(text)

    def percent(frame: pd.DataFrame) -> pd.DataFrame:
        return (100 * frame).round().astype("Int64").astype(str)

    return text.where(low.isna(), text + " (" + percent(low) + ".." + percent(high) + ")")


def _read_table(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        if not path.read_text(encoding="utf-8").strip():
            return pd.DataFrame()  # an optional table with no rows (e.g. no objectives)
        return read_results_csv(path)
    except (UnicodeDecodeError, ValueError) as error:  # pandas' ParserError is a ValueError
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunFolderError(f"{path}: unreadable ({reason}); the folder is damaged: run its scenario again") from None


def _text_or_path(value: object, what: str, give: str, error: type[McallocError] = ConfigError) -> Path:
    """``value`` as a Path, ``~`` expanded as pandas expands it; anything but text or a path (None, bytes, a
    number) refused in one line naming ``what``."""
    if isinstance(value, str | os.PathLike) and not isinstance(os.fspath(value), bytes):
        return Path(value).expanduser()
    raise error(f"{what} is not a path (it is of type {type(value).__name__}); give {give}")


def _flag(value: object, what: str) -> bool:
    """``value`` if it is True or False: any other (``"no"``, 0) would be read as one without a word."""
    if not isinstance(value, bool):
        raise ConfigError(f"{what} is {value!r} ({type(value).__name__}); give True or False")
    return value


def load(folder: str | Path, with_paths: bool = True) -> Run:
    """Read a finished run's folder (``with_paths=False``: without the per-path table, the largest).

    Raises
    ------
    RunFolderError
        The folder has no manifest, the run did not complete, or its results
        schema has another major version than this mcalloc writes.
    """
    if isinstance(folder, str) and not folder.strip():  # Path("") would be the current folder
        raise RunFolderError(
            "an empty path names no run folder (a batch's run that failed before it started has none); "
            "give a run's folder"
        )
    folder = _text_or_path(folder, "mcalloc.load: folder", "the run's folder as text or a Path", RunFolderError)
    try:
        return _load(folder, _flag(with_paths, "mcalloc.load: with_paths"))
    except PermissionError as error:  # a folder on a shared drive, say: what cannot be read, in one line
        where = error.filename or folder
        raise RunFolderError(f"{where}: cannot be read ({error.strerror}); give your user read access to it") from None


def _load(folder: Path, with_paths: bool) -> Run:
    manifest = read_manifest(folder)
    if manifest.get("kind") == "backtest":
        raise RunFolderError(
            f"{folder}: a backtest folder, not a run; read its validation.csv, verdicts.csv and pits.csv, "
            "or draw its page with mcalloc report"
        )
    status = manifest.get("status")
    if status == "running":
        raise RunFolderError(f"{folder}: {unfinished(manifest)}")
    if status is None:  # a manifest edited or written by another tool: nothing says the run finished
        raise RunFolderError(
            f"{folder}: manifest.json records no status, so nothing says the run finished; run it again"
        )
    if status != "complete":
        error = manifest.get("error", "no error recorded")
        raise RunFolderError(f"{folder}: the run is {status}, not complete: {error}")
    version = str(manifest.get("schema_version", ""))
    if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise RunFolderError(
            f"{folder}: results schema {version or 'unknown'} cannot be read by this mcalloc (schema "
            f"{SCHEMA_VERSION}); load it with the mcalloc version in its manifest ({manifest.get('engine_version')})"
        )
    check_files(folder, manifest, skip=() if with_paths else OPTIONAL_FILES)
    run = Run.from_folder(folder, manifest, with_paths=with_paths)
    if not manifest.get("files"):  # no checksums to tell a damaged table (schema 1.1 and earlier)
        _check_intact(run)
    return run


def unfinished(manifest: dict[str, Any]) -> str:
    """What a manifest still marked running means: a run going on, or one stopped before it finished."""
    from mcalloc.results.inventory import writer_alive

    alive = writer_alive(manifest)
    if alive:
        return f"the run is still going (process {manifest.get('pid')}); wait for it to finish"
    if alive is False:
        return (
            "the run stopped before it finished (its process is gone); run its scenario again "
            "(mcalloc clean removes this folder)"
        )
    host = manifest.get("host")
    if host:
        return f"the run has not finished, and only {host}, where it ran, knows if it still runs; wait, or run it again"
    return "the run has not finished, and its manifest names no process to ask; if nothing writes it, run it again"


def read_manifest(folder: Path) -> dict[str, Any]:
    """``folder``'s manifest, refused in one line when it is missing or unreadable.

    Raises
    ------
    RunFolderError
        No ``manifest.json``, or one that is not a JSON object.
    """
    manifest_file = folder / "manifest.json"
    if not folder.exists():
        left = (f"{folder.name}.failed", f".{folder.name}.partial") if folder.name else ()
        beside = next((name for name in left if (folder.parent / name).is_dir()), None)
        if beside is not None:  # the run of that name failed or has not finished
            what = (
                "failed: its manifest says why"
                if beside.endswith(".failed")
                else "runs or was stopped: mcalloc runs tells"
            )
            raise RunFolderError(f"{folder}: no such folder, but {beside} is beside it (the run {what})")
        raise RunFolderError(f"{folder}: no such folder; give the folder of an mcalloc run")
    if not folder.is_dir():
        run = f" ({folder.parent})" if (folder.parent / "manifest.json").is_file() else ""
        raise RunFolderError(f"{folder}: a file, not a folder; give the folder of an mcalloc run{run}")
    if not manifest_file.is_file():
        # the folders mcalloc writes that are not runs, named for what they are
        if (folder / "index.csv").is_file():
            raise RunFolderError(
                f"{folder}: a batch folder, not a run; give one of its runs (runs/<name>) or use mcalloc.load_batch"
            )
        if (folder / "comparison.csv").is_file():
            raise RunFolderError(f"{folder}: a comparison of runs, not a run; give the run folders it compared")
        raise RunFolderError(f"{folder}: no manifest.json; give the folder of an mcalloc run")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise RunFolderError(f"{manifest_file}: not a readable manifest ({error}); the folder is damaged") from None
    if not isinstance(manifest, dict):
        raise RunFolderError(f"{manifest_file}: not a manifest (a JSON object); the folder is damaged")
    if "schema_version" not in manifest and "status" not in manifest:
        raise RunFolderError(
            f"{manifest_file}: not an mcalloc manifest (it has no schema_version or status); give the folder of an "
            "mcalloc run"
        )
    check_manifest_fields(manifest_file, manifest)
    return manifest


def check_manifest_fields(manifest_file: Path, manifest: dict[str, Any]) -> None:
    """The manifest's values that are read or formatted, each of its kind where given (:data:`_MANIFEST_FIELDS`).

    The manifest is the one file its checksums do not cover: a hand-edited
    value of the wrong kind failed later, as an unexpected error in a
    report's template.

    Raises
    ------
    RunFolderError
        Naming the first value of the wrong kind.
    """

    def refuse(key: str, value: object, what: str) -> RunFolderError:
        return RunFolderError(
            f"{manifest_file}: {key} is {json.dumps(value)[:40]}, not {what}; the folder is damaged: "
            "run its scenario again"
        )

    for key, kinds, what in _MANIFEST_FIELDS:
        value = manifest.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise refuse(key, value, what)
    window = manifest.get("data_window") or {}
    for key, kinds, what in _WINDOW_FIELDS if window else ():
        value = window.get(key)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise refuse(f"data_window.{key}", value, what)
    for number, record in enumerate(manifest.get("data") or []):
        if not isinstance(record, dict):
            raise refuse(f"data[{number}]", record, "a mapping (a data file's provenance)")


_MANIFEST_FIELDS: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("status", str, "text"),
    ("schema_version", str, "text"),
    ("scenario", str, "text"),
    ("seed", int, "a whole number"),
    ("n_paths", int, "a whole number"),
    ("horizon_years", (int, float), "a number"),
    ("steps_per_year", int, "a whole number"),
    ("files", dict, "a mapping of file names to checksums"),
    ("warnings", list, "a list"),
    ("kind", str, "text"),
    ("config_sha256", str, "text"),
    ("started_at", str, "text"),
    ("finished_at", str, "text"),
    ("engine_version", str, "text"),
    ("python", str, "text"),
    ("dependence", dict, "a mapping"),
    ("packages", dict, "a mapping of packages to versions"),
    ("data_window", dict, "a mapping"),
    ("data", list, "a list"),
)
"""Manifest values the readers format or compute with, each with the JSON kind it must have when present."""

_WINDOW_FIELDS: tuple[tuple[str, type | tuple[type, ...], str], ...] = (
    ("first_return", str, "a date"),
    ("last_return", str, "a date"),
    ("n_returns", int, "a whole number"),
)
"""What ``data_window`` holds, each of its kind (all three where there is a window)."""


OPTIONAL_FILES = ("paths.parquet",)
"""Result files a folder may lose without harm (the per-path table, the largest): the rest is read without it."""


def check_files(folder: Path, manifest: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Every result file the manifest lists is there (but :data:`OPTIONAL_FILES`), with the sha256 it was written with.

    Folders of schema 1.1 and earlier list no files; they are read as they are.
    Files in ``skip`` (ones the caller will not read) are not checked.

    Raises
    ------
    RunFolderError
        A file missing, or changed since the run wrote it.
    """
    from mcalloc.data.files import file_sha256

    files = manifest.get("files")
    version = tuple(int(part) for part in re.findall(r"\d+", str(manifest.get("schema_version", "")))[:2])
    if version >= (1, 2) and not (isinstance(files, dict) and files):
        # schema 1.2 on lists every file with its checksum: without the list nothing could be checked
        raise RunFolderError(
            f"{folder / 'manifest.json'}: lists no result files with their checksums, which schema "
            f"{manifest.get('schema_version')} manifests do; the folder is damaged: run its scenario again"
        )
    for name, digest in files.items() if isinstance(files, dict) else ():
        if name in skip:
            continue
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise RunFolderError(
                f"{folder / 'manifest.json'}: lists {name!r} among the result files, a place outside the folder; "
                "the folder is damaged: run its scenario again"
            )
        path = folder / name
        again = "run its scenario again" + ("" if name == "config.yaml" else " (config.yaml)")
        if not path.is_file() and name in OPTIONAL_FILES:
            continue
        if not path.is_file():
            raise RunFolderError(f"{path}: missing; the folder is damaged: {again}")
        if file_sha256(path) != digest:
            raise RunFolderError(
                f"{path}: changed since the run wrote it (sha256 differs from the manifest's); "
                f"the folder is damaged: {again}"
            )


def index_lacks(index: Path, column: str) -> RunFolderError:
    """The error of a batch index without ``column``, which every index mcalloc writes has."""
    return RunFolderError(
        f"{index}: has no {column} column, which every batch index has; run the batch again to write its index anew "
        "(its complete runs are skipped)"
    )


def load_batch(folder: str | Path) -> pd.DataFrame:
    """A batch's index (``mcalloc batch``): one row per run with its status, swept parameters and key metrics.

    Each complete run's own results load with :func:`load` on its ``folder``
    column, which names the run's folder inside this one, from wherever the
    batch ran or has moved to.

    Raises
    ------
    RunFolderError
        The folder holds no batch index.
    """
    if isinstance(folder, str) and not folder.strip():  # Path("") would be the current folder
        raise RunFolderError("an empty path names no batch folder; give the folder of an mcalloc batch")
    folder = _text_or_path(folder, "mcalloc.load_batch: folder", "the batch's folder as text or a Path", RunFolderError)
    index = folder / "index.parquet"
    if not index.is_file():
        if not folder.is_dir():
            raise RunFolderError(f"{folder}: no such folder; give the folder of an mcalloc batch")
        if (folder / "manifest.json").is_file():
            raise RunFolderError(f"{folder}: a run's folder, not a batch; load it with mcalloc.load")
        if (folder / "index.csv").is_file():
            raise RunFolderError(
                f"{index}: missing beside index.csv; run the batch again to write its index anew (its complete "
                "runs are skipped)"
            )
        raise RunFolderError(f"{folder}: no index.parquet; give the folder of an mcalloc batch")
    try:
        table = pd.read_parquet(index)
    except (OSError, ValueError) as error:  # pyarrow's errors of a damaged file are both kinds
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RunFolderError(
            f"{index}: unreadable ({reason}); run the batch again to write its index anew (its complete runs "
            "are skipped)"
        ) from None
    if "folder" not in table.columns:
        raise index_lacks(index, "folder")
    table["folder"] = pd.Series([_batch_run_folder(folder, value) for value in table["folder"]], index=table.index)
    return table


def _batch_run_folder(batch: Path, value: object) -> object:
    """A batch index's ``folder`` value as a path to load.

    Written relative to the batch folder (``runs/<name>``), wherever that is
    now: joined to it even where the run's folder is gone, so that loading
    it names where it should be, never a same-named folder under the current
    one. An index written before schema 1.2 holds the folder as the batch
    named it (``results/<batch>/runs/<name>``, relative to where it ran):
    that is joined only where the joined folder exists.
    """
    if not isinstance(value, str) or not value:
        return value
    joined = batch / value
    if Path(value).parts[:1] == ("runs",) or joined.exists() or not Path(value).exists():
        return str(joined)
    return value


def run(
    config: str | Path | Scenario,
    out: str | Path | None = None,
    overrides: str | list[str] | tuple[str, ...] = (),
    force: bool = False,
    **settings: object,
) -> Run:
    """Run a scenario (a YAML path, or a validated :class:`Scenario`) and load its results.

    ``overrides`` are ``--set`` strings (``"simulation.n_paths=2000"``);
    keyword ``settings`` do the same with ``__`` for the dots
    (``simulation__n_paths=2000``). Progress goes nowhere; warnings are in
    ``Run.manifest["warnings"]``. A run that would need more memory than
    the machine has free is refused (``ConfigError``), as ``mcalloc run``
    refuses it, unless ``force``.
    """
    from mcalloc.pipeline import run_scenario
    from mcalloc.simulation.resources import check_memory

    force = _flag(force, "mcalloc.run: force")
    if not isinstance(config, Scenario):
        config = _text_or_path(config, "mcalloc.run: config", "a YAML file's path (text or a Path) or a Scenario")
    if out is not None:
        out = _text_or_path(out, "mcalloc.run: out", "the results folder as text or a Path, or leave it out")
    if isinstance(overrides, str):  # one setting given alone, not split into characters
        overrides = [overrides]
    if isinstance(overrides, bytes | Mapping) or not isinstance(overrides, Iterable):
        raise ConfigError(
            f"mcalloc.run: overrides is of type {type(overrides).__name__}; give a list of --set strings such as "
            "'simulation.n_paths=2000', or keyword settings (simulation__n_paths=2000)"
        )
    overrides = list(overrides)
    odd = next((item for item in overrides if not isinstance(item, str)), None)
    if odd is not None:
        raise ConfigError(
            f"mcalloc.run: overrides holds a value of type {type(odd).__name__}, not text; give --set strings such as "
            "'simulation.n_paths=2000', or keyword settings (simulation__n_paths=2000)"
        )
    extra = list(overrides)
    for key, value in settings.items():
        try:
            extra.append(override_text(key.replace("__", "."), value))
        except ValueError as error:
            raise ConfigError(f"mcalloc.run({key}=...): {error}") from None
    # an error in a keyword setting names the keyword, not a --set
    origins = [*(None for _ in overrides), *(f"mcalloc.run({key}=...)" for key in settings)]
    if isinstance(config, Scenario):
        scenario = _apply(json.loads(config.model_dump_json()), extra, origins) if extra else config
    else:
        scenario = load_scenario(Path(config), extra, origins)
    if not force:
        check_memory(scenario, "pass force=True")
    try:
        outcome = run_scenario(scenario, out=Path(out) if out is not None else None)
    except OutputError as error:  # the folder's checks speak to the command line; here the argument is out=
        raise OutputError(re.sub(r"--out\b", "out=", str(error))) from None
    return load(outcome.folder)


def _apply(data: dict[str, Any], extra: list[str], origins: list[str | None]) -> Scenario:
    """A validated scenario's ``data`` with settings applied, validated again; errors name the settings."""
    from mcalloc.config.loader import (
        apply_override,
        locate_override,
        override_key,
        override_label,
        resolve_paths,
        started_sections,
        validate,
    )

    locations: dict[tuple[str | int, ...], str] = {}
    overridden = []
    for override, origin in zip(extra, origins, strict=True):
        key = override_key(override)
        started = started_sections(data, key)
        data = apply_override(data, override, origin)
        overridden.append(key)
        locate_override(locations, key, override_label(override, origin), started)
    resolve_paths(data, Path.cwd())  # a relative file path given here is relative to the current folder
    return validate(data, locations, Path("the scenario given to mcalloc.run"), overridden)
