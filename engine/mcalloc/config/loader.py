"""Read scenario YAML files into a validated :class:`Scenario`.

A scenario may ``extends:`` another file (resolved relative to itself);
mappings merge key by key, anything else is replaced. Command-line overrides
``section.key=value`` apply last. Every error names the key path and, where
the key came from a file, the file and line.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mcalloc.config.overrides import (
    GridOrigin,
    apply_override,
    keyed_by_names,
    nothing_to_drop,
    override_key,
    override_label,
    override_text,
    parse_key,
)
from mcalloc.config.schema import Scenario
from mcalloc.config.sections import CURRENCY_PATTERN
from mcalloc.config.yaml_source import (
    MAX_FILE_BYTES,
    MAX_NODES,
    KeyPath,
    Locations,
    TooManyValuesError,
    parse_yaml,
    read_yaml_file,
    read_yaml_mapping,
)
from mcalloc.errors import ConfigError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "WHERE_IT_RUNS",
    "GridOrigin",
    "TooManyValuesError",
    "apply_override",
    "config_hash",
    "keep_chosen_nulls",
    "load_raw",
    "load_scenario",
    "locate_override",
    "override_key",
    "override_label",
    "override_text",
    "parse_yaml",
    "read_yaml_file",
    "resolve_paths",
    "resolve_setting",
    "scenario_to_dict",
    "started_sections",
    "validate",
]


_MAX_EXTENDS_DEPTH = 10


def _merge(base: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Child over parent: mappings merge key by key; anything else, ``null`` included, replaces.

    Validation then reads a ``null`` as in a file that extends none: a key
    that cannot be null takes its default, one that can is null (no
    ``variance_ceiling``), and an unknown, misspelt key is refused.
    """
    merged = dict(base)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_paths(data: dict[str, Any], directory: Path) -> None:
    """Make file paths relative to the scenario file that names them."""

    def resolve(value: object) -> object:
        if isinstance(value, str) and value.startswith("~"):  # the home folder, as a shell and pandas read it
            value = str(Path(value).expanduser())
        if not isinstance(value, str) or value.startswith("builtin:") or Path(value).is_absolute():
            return value
        # a Windows path (C:\\data\\x.csv, \\\\server\\share) is left as written: it is absolute where it is meant
        if re.match(r"^(?:[A-Za-z]:[\\/]|\\\\)", value):
            return value
        return str((directory / value).resolve())

    section = data.get("data")
    if isinstance(section, dict):
        if isinstance(section.get("paths"), dict):
            section["paths"] = {asset: resolve(value) for asset, value in section["paths"].items()}
        if "file" in section:
            section["file"] = resolve(section["file"])
    model = data.get("model")
    dependence = model.get("dependence") if isinstance(model, dict) else None
    if isinstance(dependence, dict) and "residuals" in dependence:
        dependence["residuals"] = resolve(dependence["residuals"])
    currency = data.get("currency")
    if isinstance(currency, dict) and isinstance(currency.get("fx"), dict):
        currency["fx"] = {code: resolve(value) for code, value in currency["fx"].items()}


def resolve_setting(key: str, value: object, directory: Path) -> object:
    """``value`` of the dotted ``key`` with the file paths it holds made absolute from ``directory``.

    A relative path in a setting given outside a scenario file is relative
    to where it was given: the current folder for ``--set``, the sweep file's
    folder for a sweep's settings. The files' own are made absolute as they
    are read (:func:`load_raw`), so the saved ``config.yaml`` runs anywhere.
    """
    parts = key.split(".")
    nested: object = copy.deepcopy(value)  # dates stay dates; only path strings change
    for part in reversed(parts):
        nested = {part: nested}
    assert isinstance(nested, dict)
    resolve_paths(nested, directory)
    for part in parts:
        nested = nested[part]  # type: ignore[index]
    return nested


def _under(key: KeyPath, section: KeyPath) -> bool:
    """Whether ``key`` lies inside ``section`` (not the section itself)."""
    return len(key) > len(section) and key[: len(section)] == section


def load_raw(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Locations]:
    """Read ``path`` and everything it extends into one merged mapping (``_chain``: the files that led here).

    Relative paths in a file (its data, ``extends:``) are relative to where
    the file really is: a symbolic link to it reads them as the file does
    (they were read beside the link when the link was given, beside the file
    when a file it extends was).
    """
    data, locations = read_yaml_mapping(path)
    here = Path(os.path.realpath(path)).parent if path.is_symlink() else path.parent
    resolve_paths(data, here)
    parent_name = data.pop("extends", None)
    if parent_name is None:
        return data, locations
    if not isinstance(parent_name, str):
        raise ConfigError(f"{locations.get(('extends',), path)}: extends: expected a file name")
    if len(_chain) >= _MAX_EXTENDS_DEPTH:
        top = _chain[0] if _chain else path
        raise ConfigError(
            f"{top}: extends: the chain of files it extends is longer than {_MAX_EXTENDS_DEPTH} "
            f"({path.name} is the {len(_chain) + 1}th); write some of their settings into one file"
        )
    parent_path = (here / parent_name).resolve()
    chain = (*_chain, path.resolve())
    if parent_path in chain:
        names = " -> ".join(str(item) for item in (*chain, parent_path))
        raise ConfigError(f"{locations.get(('extends',), path)}: extends: the files extend each other ({names})")
    if parent_path.is_dir():
        raise ConfigError(f"{locations.get(('extends',), path)}: extends: {parent_path} is a folder, not a scenario")
    if not parent_path.is_file():
        raise ConfigError(
            f"{locations.get(('extends',), path)}: extends: {parent_path} not found; give a path relative to this file"
        )
    parent, parent_locations = load_raw(parent_path, chain)
    if "base" in parent and "base" not in data:
        raise ConfigError(
            f"{locations.get(('extends',), path)}: extends: {parent_path} is a sweep file (it has base:), not a "
            "scenario; extend its base scenario, or run the sweep with mcalloc batch"
        )
    replaced, dropped = _overlaid(parent, data)
    for key in dropped:
        dotted = ".".join(str(part) for part in key)
        raise ConfigError(f"{locations.get(key, path)}: {dotted}: {nothing_to_drop(key, parent)}")
    kept = {key: where for key, where in parent_locations.items() if not any(_under(key, r) for r in replaced)}
    return _merge(parent, data), {**kept, **locations}


def _overlaid(
    base: Mapping[str, Any], child: Mapping[str, Any], at: KeyPath = ()
) -> tuple[list[KeyPath], list[KeyPath]]:
    """What :func:`_merge` does with ``child`` over ``base``: the key paths whose parent value it replaces
    rather than merges into, and the names it sets to null, to drop them, in a mapping of names where ``base``
    has no such name (a misspelling)."""
    replaced: list[KeyPath] = []
    dropped: list[KeyPath] = []
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            inner = _overlaid(base[key], value, (*at, key))
            replaced += inner[0]
            dropped += inner[1]
        elif key in base:
            replaced.append((*at, key))
        elif value is None and keyed_by_names(at):
            dropped.append((*at, key))
    return replaced, dropped


_KEY_PREFIX = re.compile(
    r"^([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_]+)*(?:\|[a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_]+)*)*): (.*)$", re.DOTALL
)
"""A validator's message may start with the key it is about, or with two or more of a pair: keys of one
section (``start|end:``) or whole paths from the validator's level (``portfolio.benchmarks|optimize.objectives:``)."""


def _blamed(keys: list[KeyPath], locations: Locations, source: Path, overridden: Sequence[KeyPath]) -> KeyPath:
    """Which of ``keys`` a check of a pair blames: the one changed last, as the user sees it.

    The last ``--set`` among them, else one the scenario file itself gives
    (over a parent's), else the first.
    """
    changed = [key for key in overridden if key in keys]
    if changed:
        return changed[-1]
    own = [key for key in keys if locations.get(key, "").startswith(f"{source}:")]
    return own[0] if own else keys[0]


def _format_validation_error(
    exc: ValidationError, locations: Locations, source: Path, overridden: Sequence[KeyPath] = ()
) -> str:
    errors = exc.errors()
    # a misspelt key is both unknown and a required key missing: the unknown one says what to fix
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    raw_loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    n_errors = exc.error_count()
    if error["type"] == "literal_error" and raw_loc and str(raw_loc[-1]).startswith("literal["):
        # a key whose values are a union of literals (a kind or "auto"): pydantic tells each member's apart
        members = [e for e in errors if e["type"] == "literal_error" and tuple(e["loc"][:-1]) == raw_loc[:-1]]
        allowed = [v for e in members for v in re.findall(r"'[^']*'", str((e.get("ctx") or {}).get("expected")))]
        message = f"Input should be {', '.join(allowed[:-1])} or {allowed[-1]}" if len(allowed) > 1 else message
        raw_loc, n_errors = raw_loc[:-1], n_errors - len(members) + 1
    # validators that check several keys start their message with the key path
    # (relative to where they sit) so that the error can point at it
    prefixed = _KEY_PREFIX.match(message)
    # pydantic puts a tagged union's tag into the path (objectives.0.min_cvar.alpha, scenarios.paths.n) right
    # after the union's own key; a key of that name elsewhere is a real key (data.paths.sp500, simulation.paths).
    # The tag ends the path of a check made by the tagged section's own validator, which names its key itself
    last = len(raw_loc) if error["type"] == "value_error" and prefixed else len(raw_loc) - 1
    loc: KeyPath = tuple(
        p
        for index, p in enumerate(raw_loc)
        if not (
            isinstance(p, str)
            and p in _UNION_TAGS
            and 0 < index < last
            and (isinstance(raw_loc[index - 1], int) or raw_loc[index - 1] in _UNIONS)
        )
    )
    if error["type"] == "value_error" and prefixed:
        head, *others = prefixed.group(1).split("|")
        if any("." in other for other in others):  # whole paths
            options = [head, *others]
        else:  # keys of one section: start|end
            *path, first = head.split(".")
            options = [".".join([*path, name]) for name in (first, *others)]
        keys = [loc + tuple(parse_key(part) for part in option.split(".")) for option in options]
        loc = _blamed(keys, locations, source, overridden) if others else keys[0]
        message = prefixed.group(2)
    key = ".".join(str(p) for p in loc) or "(top level)"
    where = None
    end = len(loc)
    while end > 0:
        where = locations.get(loc[:end])
        if where is not None:
            break
        end -= 1
    where = where or str(source)
    inside = [key for key in overridden if loc and len(key) > len(loc) and key[: len(loc)] == loc]
    if error["type"] == "union_tag_not_found" and not (error.get("ctx") or {}).get("tag"):
        # an item without its kind: blamed on an override only if the override made the item
        inside = [key for key in inside if locations.get(loc) == locations.get(key)]
    if end == len(loc) - 1 and loc:
        # a key the files do not give, which the section's kind asks for: the override that chose the kind
        # (simulation.start.kind=vol, which needs vol_ann) is what the user just did
        inside += [key for key in overridden if key == (*loc[:-1], "kind")]
        if error["type"] == "missing":  # a section an override began with one of its keys lacks the others
            # (only one that made the section: its location is the override's, not a file's line)
            inside += [
                key
                for key in overridden
                if len(key) == len(loc) and key[:-1] == loc[:-1] and locations.get(key) == where
            ]
    if inside:  # a check of the whole section, failed by the override that changed one of its keys
        where = locations.get(inside[-1], where)
    if error["type"] == "extra_forbidden" and loc and ":" in str(loc[-1]):
        # {kind:gjr_garch}: without a space after its colon, YAML reads a key and its value as one key
        name, _, value = str(loc[-1]).partition(":")
        message = f"unknown key; YAML reads a key and its value with a space after the colon: '{name}: {value.strip()}'"
    elif error["type"] == "extra_forbidden":
        message = "unknown key; check the spelling against docs/config.md"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] in ("union_tag_not_found", "union_tag_invalid"):
        context = error.get("ctx") or {}
        tag = context.get("discriminator", "kind").strip("'")
        found = f"{tag} {context['tag']!r} is unknown" if "tag" in context else f"required key '{tag}' is missing"
        expected = str(context.get("expected_tags") or _tags_text(loc))
        message = f"{found}; give one of {expected}" if expected else found
    elif (
        loc
        and loc[-1] == "[key]"
        and isinstance(error.get("input"), int | float)
        and not isinstance(error.get("input"), bool)
    ):
        loc = loc[:-1]
        message = f"this name is read as the number {error['input']}; give a name that starts with a letter"
        key = ".".join(str(p) for p in loc)
        number = error["input"]  # pydantic writes a float key as text in the path; the locations hold the number
        where = locations.get((*loc[:-1], number), locations.get(loc, where))
    elif error["type"] == "invalid_key" and isinstance(error.get("input"), int | float) and loc:
        # a number or a boolean where a section of fixed keys takes a name (3: 1 or on: 1 under output:); no
        # key of such a section is named on, off, yes or no, so quoting one would only make it unknown
        number, loc = error["input"], loc[:-1]
        read = f"boolean {str(number).lower()}" if isinstance(number, bool) else f"number {number}"
        key = ".".join(str(p) for p in loc) or "(top level)"
        where = locations.get((*loc, number), where)
        check = "the spelling" if where.startswith("--set") else "the indentation and the spelling"  # no lines
        message = f"a key YAML reads as the {read}; the keys here are names: check {check} against docs/config.md"
    elif loc and loc[-1] == "[key]" and isinstance(error.get("input"), bool):
        loc = loc[:-1]
        if loc and isinstance(loc[-1], int):  # pydantic gives the boolean key as its number, 0 or 1
            loc = loc[:-1]
        message = (
            f"a name YAML reads as the boolean {str(error['input']).lower()} (a bare off, on, no, yes, false or "
            'true); quote it, e.g. "off"'
        )
        key = ".".join(str(p) for p in loc)
    elif error["type"] == "string_pattern_mismatch" and (error.get("ctx") or {}).get("pattern") == CURRENCY_PATTERN:
        if loc and loc[-1] == "[key]":  # a currency.fx key: pydantic marks the key, not its value
            loc = loc[:-1]
            key = ".".join(str(p) for p in loc)
        code = str(error.get("input"))
        example = f"{code.upper()}" if code.isalpha() and len(code) == 3 else "USD or SEK"
        message = f"{code!r} is not a currency code; give its three capital letters, such as {example}"
    elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        # a section given as one value: pydantic's message names its class (SimulationConfig)
        message = (
            f"a section of keys is expected here (got {_shown(error.get('input'))}); set the keys inside it "
            "(docs/config.md)"
        )
    elif "input" in error and error["type"] not in ("value_error", "assertion_error"):
        message = f"{message} (got {_shown(error['input'])})"
    if loc and loc[-1] == "[key]":  # pydantic's marker for a mapping's key: the message is about the name
        loc = loc[:-1]
        key = ".".join(str(p) for p in loc)
        message = f"this name: {message}"
    extra = f" (+{n_errors - 1} more)" if n_errors > 1 else ""
    # the override's label names the key already (or a key inside it: --set data.columns.gold for data.columns)
    if where == f"--set {key}" or where.startswith(f"--set {key}.") or where.endswith(f": {key}"):
        return f"{where}: {message}{extra}"
    return f"{where}: {key}: {message}{extra}"


def _shown(value: Any) -> str:
    """A value as a message shows it: a date as YAML writes it, anything else as Python's repr, cut at 60."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    return repr(value)[:60]


_OBJECTIVE_KINDS = (
    "min_variance",
    "mean_variance",
    "max_sharpe",
    "risk_parity",
    "min_cvar",
    "min_cdar",
    "min_cvar_maxdd",
    "max_growth",
)
_SCENARIO_KINDS = ("paths", "parametric")
_UNION_TAGS = {*_OBJECTIVE_KINDS, *_SCENARIO_KINDS}
"""Tags pydantic puts into an error's location for a union member (objective and scenario kinds): not keys."""


def _tags_text(loc: KeyPath) -> str:
    """The kinds a tagged union at ``loc`` takes, for a message."""
    return ", ".join(_SCENARIO_KINDS if "scenarios" in loc else _OBJECTIVE_KINDS)


_UNIONS = {"scenarios"}
"""Keys whose value is a tagged union (besides the items of ``objectives``, found by their index)."""


def load_scenario(
    path: Path | str,
    overrides: Iterable[str] = (),
    origins: Sequence[str | None] = (),
) -> Scenario:
    """Load, merge, override and validate a scenario file.

    ``origins`` says, override by override, where one that is not a
    ``--set`` was given (see :func:`override_label`); the rest are ``--set``.

    Raises
    ------
    ConfigError
        With a one-line message naming the file, line and key path.
    """
    path = Path(path)
    data, locations = load_raw(path)
    overridden: list[KeyPath] = []
    for position, override in enumerate(overrides):
        origin = origins[position] if position < len(origins) else None
        key = override_key(override)
        started = started_sections(data, key)
        data = apply_override(data, override, origin)
        # errors in an overridden value point at where it was given, not at the file
        for known in [k for k in locations if k[: len(key)] == key]:
            del locations[known]
        locate_override(locations, key, override_label(override, origin), started)
        overridden.append(key)
    # paths the files gave are absolute by now; those the overrides gave are relative to the current folder
    resolve_paths(data, Path.cwd())
    return validate(data, locations, path, overridden)


def locate_override(locations: Locations, key: KeyPath, label: str, started: set[KeyPath]) -> None:
    """Record where the override of ``key`` was given, as ``label``, with the sections it ``started``.

    A section the scenario did not have, or had as null, came from the
    override too (a misspelt one: ``simulaton.n_paths``;
    ``mean_uncertainty.series=...`` under ``mean_uncertainty: null``): its
    errors point at the override. Other sections keep where they were.
    """
    locations[key] = label
    for end in range(1, len(key)):
        if key[:end] in started:
            locations[key[:end]] = label
        else:
            locations.setdefault(key[:end], label)


def started_sections(data: Mapping[str, Any], key: KeyPath) -> set[KeyPath]:
    """The sections on ``key``'s path that ``data`` lacks or holds as null: an override of ``key`` starts them."""
    started: set[KeyPath] = set()
    value: Any = data
    for end in range(1, len(key)):
        part = key[end - 1]
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            value = None
        if value is None:
            started.add(key[:end])
    return started


def validate(data: dict[str, Any], locations: Locations, source: Path, overridden: Sequence[KeyPath] = ()) -> Scenario:
    """The scenario ``data`` validated; errors point into the files (``locations``) or at ``source``.

    An error about a section that an override (``overridden``, in the order
    given) changed a key of points at the last such override, not at the
    file: the override is what the user just changed.

    Raises
    ------
    ConfigError
        With a one-line message naming the file, line and key path.
    """
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, locations, source, overridden)) from None


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as plain YAML-ready data.

    Unset optional keys are left out, except where ``null`` is a choice of
    its own: a key whose default is not null (``variance_ceiling: null``, no
    ceiling, against the default 4) keeps its ``null``, or the saved
    scenario would run with the default and hash as it does.
    """
    result: dict[str, Any] = scenario.model_dump(mode="json", exclude_none=True)
    keep_chosen_nulls(scenario, result)
    # the account settings its kind does not use change nothing: left out, so that a later mcalloc whose
    # defaults differ (the ISK's rates change every year) reads the file as it was run
    tax = result.get("tax", {})
    for unused in {"isk", "depot"} - {tax.get("kind")}:
        tax.pop(unused, None)
    return result


def keep_chosen_nulls(model: BaseModel, data: dict[str, Any]) -> None:
    """Put back into ``data`` (``model`` dumped without nulls) each null whose field's default is not null."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.serialization_alias or name
        if value is None:
            if field.default is not None:  # a default other than null, a factory's, or none at all
                data[key] = None
        elif isinstance(value, BaseModel) and isinstance(data.get(key), dict):
            keep_chosen_nulls(value, data[key])
        elif isinstance(value, list) and isinstance(data.get(key), list):
            for item, dumped in zip(value, data[key], strict=False):
                if isinstance(item, BaseModel) and isinstance(dumped, dict):
                    keep_chosen_nulls(item, dumped)
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            for item_key, item in value.items():
                if isinstance(item, BaseModel) and isinstance(data[key].get(item_key), dict):
                    keep_chosen_nulls(item, data[key][item_key])


WHERE_IT_RUNS = ("n_jobs", "backend", "scheduler")
"""``simulation`` keys that say where and on how many workers a run goes: they change no number."""


def config_hash(scenario: Scenario) -> str:
    """A stable sha256 of what determines a scenario's numbers, for manifests and run ids.

    Where and on how many workers it runs (``simulation.n_jobs``,
    ``backend``, ``scheduler``) and what is written where (``output``)
    change no number, so they are left out; ``output.calibration``, which
    sets the simulated windows behind ``calibration.csv``, is kept. The
    order of ``portfolio.benchmarks`` counts (since results schema 1.15): the
    first is the reference of ``diversification.csv``.
    """
    return settings_hash(scenario_to_dict(scenario))


def settings_hash(data: dict[str, Any]) -> str:
    """:func:`config_hash` of a resolved scenario's dict (``scenario_to_dict``), which it may change."""
    output = data.pop("output", None) or {}
    if "calibration" in output:
        data["output"] = {"calibration": output["calibration"]}
    for key in WHERE_IT_RUNS:
        data.get("simulation", {}).pop(key, None)
    portfolio = data.get("portfolio")
    if isinstance(portfolio, dict) and isinstance(portfolio.get("benchmarks"), dict):
        # the keys are sorted below, and the first benchmark is the reference the others are compared with
        portfolio["benchmark_order"] = list(portfolio["benchmarks"])
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
