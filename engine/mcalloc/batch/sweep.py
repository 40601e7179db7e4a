"""What a batch runs: a sweep file expanded into named runs, or scenario files as they are.

A sweep file (a YAML file with a ``base:`` key) names a base scenario and
the settings to vary::

    name: horizon_x_rebalance
    base: ../default.yaml            # relative to this file
    set: {simulation.n_paths: 5000}  # applied to every run (optional)
    grid:                            # every combination, in this order
      simulation.horizon_years: [5, 10]
      portfolio.rebalance: [monthly, annual]
    runs:                            # and/or an explicit list (crossed with the grid)
      - {name: index_fund_fees, set: {assets.0.ter: 0.0003}}

Keys are the dotted paths of ``--set``; values are YAML. Each run is the
base with ``set``, the run's grid values and its list entry applied, in
that order, and is named after what was swept (``horizon_years=5-rebalance=monthly``),
after the list entry's name when it has one. The batch index has a column
per grid key, an ``entry`` column with the entries' names, and a column per
entry key with plain (not mapping or list) values.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mcalloc.config.loader import GridOrigin, override_text, read_yaml_file, resolve_setting
from mcalloc.errors import ConfigError

__all__ = ["Batch", "BatchRun", "batch_from_inputs", "check_not_a_sweep_without_base", "read_sweep"]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$"

_READ_AS_MISSING = frozenset({"NA", "NULL", "NaN", "None", "nan", "null"})
"""Run names the pattern allows that pandas reads back from ``index.csv`` as a missing value."""


def _check_run_name(name: str, where: str, remedy: str) -> None:
    """Refuse a run name the index would read back as missing, or that names a failed run's folder."""
    if name in _READ_AS_MISSING:
        raise ConfigError(f"{where}: a run named '{name}' is read back from index.csv as a missing value; {remedy}")
    if name.endswith(".failed"):
        raise ConfigError(
            f"{where}: a run named '{name}' would share its folder's name with a failed run's "
            f"({name.removesuffix('.failed')}.failed); {remedy}"
        )


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=_NAME, max_length=100)] | None = None
    set: dict[str, Any] = {}


class _SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=_NAME, max_length=100)]
    description: str = ""
    base: str
    set: dict[str, Any] = {}
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    runs: list[_Entry] = []


@dataclass(frozen=True)
class BatchRun:
    """One run of a batch: its name, scenario file, ``--set`` overrides and the values it sweeps.

    ``origins`` says where in the sweep file each override was given
    (``file:line``), for error messages.
    """

    name: str
    config: Path
    overrides: tuple[str, ...] = ()
    swept: dict[str, Any] = field(default_factory=dict)
    origins: tuple[str | None, ...] = ()

    def with_settings(self, overrides: list[str], origins: list[str | None]) -> BatchRun:
        """The run with more settings applied after its own (the command line's), each with where it was given."""
        own = [*self.origins, *([None] * (len(self.overrides) - len(self.origins)))]
        return replace(self, overrides=(*self.overrides, *overrides), origins=(*own, *origins))


@dataclass(frozen=True)
class Batch:
    """A named list of runs, the swept keys (the index's parameter columns), and every key the runs set apart.

    ``varied`` holds the grid's keys and every key a ``runs:`` entry sets
    (a mapping's too, which has no column): a setting for every run on one of
    them would make the runs alike.
    """

    name: str
    runs: tuple[BatchRun, ...]
    parameters: tuple[str, ...] = ()
    varied: tuple[str, ...] = ()


_LABEL_LENGTH = 60
"""Longest part of a run's name; a longer one keeps its start and a digest of the whole."""


_NAME_LENGTH = 200
"""Longest run name: a folder's name may have 255 bytes, and a run's working folder adds ``.`` and ``.partial``."""


def _capped(name: str) -> str:
    """``name``, or if longer than :data:`_NAME_LENGTH` bytes its start and a digest of the whole."""
    if len(name.encode()) <= _NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    start = name.encode()[: _NAME_LENGTH - 9].decode(errors="ignore")
    return f"{start}-{digest}"


def _label(key: str, value: Any) -> str:
    short = key.rsplit(".", 1)[-1]
    if isinstance(value, str):
        text = value
    else:
        # in the order given: the first of portfolio.benchmarks is the reference
        text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip().removesuffix("...").strip()
    label = re.sub(r"[^A-Za-z0-9_.=+-]", "", f"{short}={text}".replace(" ", ""))
    if len(label) <= _LABEL_LENGTH:
        return label
    # values that differ only late in a long text still name their runs apart
    digest = hashlib.sha256(f"{short}={text}".encode()).hexdigest()[:8]
    return f"{label[: _LABEL_LENGTH - 9]}-{digest}"


def read_sweep(path: Path) -> Batch:
    """Expand a sweep file into its runs.

    Raises
    ------
    ConfigError
        The file is unreadable, a key is unknown or misspelt, the base file is
        missing, or two runs get the same name.
    """
    data, locations = read_yaml_file(path)
    try:
        sweep = _SweepFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        where = ".".join(str(part) for part in loc) or "(top level)"
        line = next((locations[loc[:end]] for end in range(len(loc), 0, -1) if loc[:end] in locations), str(path))
        message = (
            "unknown key; check the spelling against docs/batch.md"
            if error["type"] == "extra_forbidden"
            else error["msg"]
        )
        raise ConfigError(f"{line}: {where}: {message}") from None
    base = (path.parent / sweep.base).resolve()
    where = locations.get(("base",), str(path))
    if base.is_dir():
        raise ConfigError(f"{where}: base: {sweep.base} is a folder; give the scenario file the runs start from")
    if not base.is_file():
        raise ConfigError(f"{where}: base: {sweep.base} does not exist (it is relative to the sweep file)")
    if _is_sweep(base):
        raise ConfigError(f"{where}: base: {sweep.base} is a sweep file itself; give the scenario file it sweeps")
    folder = path.parent

    def setting(key: str, value: object) -> str:
        # a relative file path in a sweep is relative to the sweep file, as the base is
        return override_text(key, resolve_setting(key, value, folder))

    common = [setting(key, value) for key, value in sweep.set.items()]

    def origin(*key: str | int) -> str:
        return locations.get(key, str(path))

    keys = list(sweep.grid)
    entries = sweep.runs or [_Entry()]
    _check_distinct_settings(path, sweep.grid, entries, list(sweep.set))
    runs = []
    for choice in itertools.product(*(range(len(sweep.grid[key])) for key in keys)):
        swept = {key: sweep.grid[key][index] for key, index in zip(keys, choice, strict=True)}
        for position, entry in enumerate(entries):
            name = entry.name or "-".join(_label(key, value) for key, value in swept.items()) or "run"
            if entry.name and swept:
                name = "-".join([entry.name, *(_label(key, value) for key, value in swept.items())])
            name = _capped(name)
            overrides = [
                *common,
                *(setting(key, value) for key, value in swept.items()),
                *(setting(key, value) for key, value in entry.set.items()),
            ]
            origins = [
                *(origin("set", key) for key in sweep.set),
                *(
                    GridOrigin(origin("grid", key, index))
                    if sweep.grid[key][index] is None
                    else origin("grid", key, index)
                    for key, index in zip(keys, choice, strict=True)
                ),
                *(origin("runs", position, "set", key) for key in entry.set),
            ]
            # the index shows an entry by its name, and its settings that are plain values
            described = {"entry": entry.name} if entry.name else {}
            plain = {key: value for key, value in entry.set.items() if not isinstance(value, dict | list)}
            runs.append(BatchRun(name, base, tuple(overrides), {**swept, **described, **plain}, tuple(origins)))
    names = [run.name for run in runs]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        hint = (
            "give the runs: entries distinct names"
            if sweep.runs
            else "make the grid's values differ in letters and digits"
        )
        raise ConfigError(f"{path}: two runs are both named '{duplicate}'; {hint}")
    for name in names:
        _check_run_name(name, str(path), "rename the runs: entry")
    named = ["entry"] if any(entry.name for entry in sweep.runs) else []
    plain_keys = [key for run in runs for key in run.swept if key not in keys and key != "entry"]
    parameters = tuple(dict.fromkeys([*keys, *named, *plain_keys]))
    varied = tuple(dict.fromkeys([*keys, *(key for entry in sweep.runs for key in entry.set)]))
    return Batch(sweep.name, tuple(runs), parameters, varied)


def _in_order(value: Any) -> Any:
    """``value`` with every mapping as its items in order, so that equality sees the order of their keys."""
    if isinstance(value, dict):
        return tuple((key, _in_order(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_in_order(item) for item in value]
    return value


def _check_distinct_settings(
    path: Path, grid: dict[str, list[Any]], entries: list[_Entry], common: Sequence[str] = ()
) -> None:
    """Refuse a sweep that would run one setting under two names: a value listed twice, a grid key inside another
    swept section, a key of ``set:`` (``common``) inside a section the grid sweeps, or a grid key an entry sets."""
    for key, values in grid.items():
        seen: list[Any] = []
        for value in values:
            # YAML's true is not the number 1: equal only when both or neither are booleans; mappings are
            # equal only in the same order (the first of portfolio.benchmarks is the reference)
            if any(
                _in_order(value) == _in_order(earlier) and isinstance(value, bool) == isinstance(earlier, bool)
                for earlier in seen
            ):
                raise ConfigError(f"{path}: grid: {key} lists the same value twice ({value!r}); list each once")
            seen.append(value)
    # a section replaces what an earlier key set inside it: the index would name values no run used
    keys = list(grid)
    for index, key in enumerate(keys):
        inside = next((other for other in keys[index + 1 :] if sets_within(other, key)), None)
        if inside is not None:
            section, part = (key, inside) if inside.startswith(key + ".") else (inside, key)
            raise ConfigError(
                f"{path}: grid: {section} (a whole section) and {part}, inside it, are both swept; a section "
                "replaces the keys set inside it, so the index would name values no run used; sweep the "
                "section's keys one by one"
            )
    # (a set: key the grid sweeps itself is overridden in the open: the index names the value each run used)
    for key in common:
        swept = next((grid_key for grid_key in grid if key.startswith(grid_key + ".")), None)
        if swept is not None:
            raise ConfigError(
                f"{path}: set: {key} is inside {swept}, a section the grid sweeps, so every run would replace it "
                "with the section's default; drop it from set:, or sweep the section's keys one by one"
            )
    for position, entry in enumerate(entries):
        for key in entry.set:
            swept = next((grid_key for grid_key in grid if sets_within(key, grid_key)), None)
            if swept is not None:
                which = f"entry '{entry.name}'" if entry.name else f"runs.{position}"
                what = (
                    key
                    if key == swept
                    else f"{key} (a whole section, {swept} included)"
                    if swept.startswith(key + ".")
                    else f"{key} (part of {swept})"
                )
                raise ConfigError(
                    f"{path}: runs: {which} sets {what}, which the grid sweeps; its runs would all be "
                    "the same; drop it from the entry or from the grid, or set the section's keys one by one"
                )


def sets_within(key: str, swept: str) -> bool:
    """Whether setting ``key`` sets ``swept`` or part of it: the key itself, a key inside it, or a section
    holding it. A section is replaced whole (``portfolio: {benchmarks: ...}`` drops a swept
    ``portfolio.rebalance`` back to its default as surely as ``portfolio: {rebalance: never}`` sets it)."""
    return key == swept or key.startswith(swept + ".") or swept.startswith(key + ".")


def _is_sweep(path: Path) -> bool:
    """Whether ``path`` is a sweep file (it has ``base``).

    Raises
    ------
    ConfigError
        If the file cannot be read as YAML: given alone, it is neither a
        sweep nor a scenario that could run.
    """
    data, _ = read_yaml_file(path)
    return isinstance(data, dict) and "base" in data


def check_not_a_sweep_without_base(path: Path) -> None:
    """Refuse a file with a sweep's ``grid:`` or ``runs:`` but no ``base:``: read as a scenario, it failed on
    ``grid: unknown key``, which did not say what was missing.

    Raises
    ------
    ConfigError
        Naming the file and what to add.
    """
    try:
        data, _ = read_yaml_file(path)
    except ConfigError:
        return  # the scenario's own reading names what is wrong
    if isinstance(data, dict) and "base" not in data and ("grid" in data or "runs" in data):
        given = "grid:" if "grid" in data else "runs:"
        raise ConfigError(
            f"{path}: has {given} but no base:, so it is not read as a sweep file; add base: (the scenario file "
            "the runs start from, relative to this file) to run it with mcalloc batch"
        )


def _is_sweep_quietly(path: Path) -> bool:
    """:func:`_is_sweep`, with an unreadable file taken as a scenario: its own run then fails, alone."""
    try:
        return _is_sweep(path)
    except ConfigError:
        return False


def batch_from_inputs(inputs: list[Path], name: str | None = None) -> Batch:
    """A batch from the command line: one sweep file, scenario files, or a folder of scenario files."""
    if len(inputs) == 1 and inputs[0].is_file() and _is_sweep(inputs[0]):
        batch = read_sweep(inputs[0])
        return Batch(name or batch.name, batch.runs, batch.parameters, batch.varied)
    if len(inputs) == 1 and inputs[0].is_file():
        check_not_a_sweep_without_base(inputs[0])
    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files.extend(sorted([*item.glob("*.yaml"), *item.glob("*.yml")]))
        elif item.is_file():
            files.append(item)
        else:
            raise ConfigError(f"{item}: no such file or folder; give a sweep file, scenario files or a folder of them")
    if not files:
        raise ConfigError(f"{inputs[0]}: no .yaml scenario files found")
    sweeps = [file for file in files if _is_sweep_quietly(file)]
    if sweeps:
        raise ConfigError(
            f"{sweeps[0]}: a sweep file (it has base:) runs alone; give it as the only input, "
            "or leave it out of the scenario files and folders"
        )
    resolved = [file.resolve() for file in files]
    twice = next((file for file, path in zip(files, resolved, strict=True) if resolved.count(path) > 1), None)
    if twice is not None:
        raise ConfigError(
            f"{twice}: given twice (the same scenario and seed give the same results); give each scenario once"
        )
    stems = [file.stem for file in files]
    runs = tuple(
        BatchRun(stem if stems.count(stem) == 1 else f"{stem}-{index}", file.resolve())
        for index, (stem, file) in enumerate(zip(stems, files, strict=True))
    )
    names = [run.name for run in runs]
    clash = next((name for name in names if names.count(name) > 1), None)
    if clash is not None:
        raise ConfigError(f"two scenario files would both run as '{clash}'; rename one of them")
    for run, file in zip(runs, files, strict=True):
        _check_run_name(run.name, str(file), "rename the file")
    return Batch(name or (inputs[0].stem if len(inputs) == 1 else "batch"), runs, ())
