"""Read scenario YAML files into a validated :class:`Scenario`.

A scenario may ``extends:`` another file (resolved relative to itself);
mappings merge key by key, anything else is replaced. Command-line overrides
``section.key=value`` apply last. Every error names the key path and, where
the key came from a file, the file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mcalloc.config.schema import Scenario
from mcalloc.errors import ConfigError

__all__ = ["apply_override", "config_hash", "load_raw", "load_scenario", "override_text", "scenario_to_dict"]

KeyPath = tuple[str | int, ...]
Locations = dict[KeyPath, str]

_MAX_EXTENDS_DEPTH = 10


def _node_locations(node: yaml.Node, source: str, path: KeyPath, out: Locations) -> None:
    out[path] = f"{source}:{node.start_mark.line + 1}"
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = f"{source}:{key_node.start_mark.line + 1}"
            _node_locations(value_node, source, (*path, key), out)
            out[(*path, key)] = f"{source}:{key_node.start_mark.line + 1}"
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _node_locations(item, source, (*path, index), out)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in this mapping; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> tuple[dict[str, Any], Locations]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: scenario file not found; check the path") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read scenario file ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}; fix the YAML syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario must be a YAML mapping of sections, not {type(data).__name__}")
    locations: Locations = {}
    if node is not None:
        _node_locations(node, str(path), (), locations)
    return data, locations


def _merge(base: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Child over parent: mappings merge key by key; ``null`` in a child drops
    the inherited value (so the key takes its default); anything else replaces."""
    merged = dict(base)
    for key, value in child.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve_paths(data: dict[str, Any], directory: Path) -> None:
    """Make file paths relative to the scenario file that names them."""

    def resolve(value: object) -> object:
        if isinstance(value, str) and not value.startswith("builtin:") and not Path(value).is_absolute():
            return str((directory / value).resolve())
        return value

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


def load_raw(path: Path, _depth: int = 0) -> tuple[dict[str, Any], Locations]:
    """Read ``path`` and everything it extends into one merged mapping."""
    data, locations = _read_yaml(path)
    _resolve_paths(data, path.parent)
    parent_name = data.pop("extends", None)
    if parent_name is None:
        return data, locations
    if not isinstance(parent_name, str):
        raise ConfigError(f"{locations.get(('extends',), path)}: extends: expected a file name")
    if _depth >= _MAX_EXTENDS_DEPTH:
        raise ConfigError(f"{path}: extends: chain is deeper than {_MAX_EXTENDS_DEPTH} files (a cycle?)")
    parent_path = (path.parent / parent_name).resolve()
    if not parent_path.is_file():
        raise ConfigError(
            f"{locations.get(('extends',), path)}: extends: {parent_path} not found; give a path relative to this file"
        )
    parent, parent_locations = load_raw(parent_path, _depth + 1)
    return _merge(parent, data), {**parent_locations, **locations}


def _parse_key(part: str) -> str | int:
    # ASCII digits only: str.isdigit() is also true for '²', which int() refuses
    return int(part) if part.isascii() and part.isdigit() else part


def override_text(key: str, value: object) -> str:
    """The ``--set`` string that gives ``key`` (dotted) the value ``value`` (written as one line of YAML)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return f"{key}={text.removesuffix('...').strip()}"


def apply_override(data: dict[str, Any], override: str) -> dict[str, Any]:
    """Return ``data`` with one ``dotted.key=value`` override applied.

    The value is read as YAML, so ``--set simulation.n_paths=2000`` gives an
    integer and ``--set 'portfolio.benchmarks.x={sp500: 1.0}'`` a mapping.
    List items are addressed by index: ``assets.0.ter=0.001``.
    """
    key, sep, raw_value = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {override!r}: expected section.key=value")
    if not key.isprintable():
        raise ConfigError(f"--set {key!r}: the key holds a control character (a newline?); give section.key=value")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: cannot read value {raw_value!r} as YAML") from None
    except ValueError:
        # looks like a date but is not one (2019-13-45): let validation say so
        value = raw_value.strip()
    parts = [_parse_key(p) for p in key.strip().split(".")]
    result: dict[str, Any] = json.loads(json.dumps(data, default=str))
    target: Any = result
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(str(p) for p in parts[: depth + 1])
        if isinstance(target, list) and isinstance(part, int):
            if part >= len(target):
                raise ConfigError(f"--set {key}: {where} is past the end of the list ({len(target)} items)")
            target = target[part]
        elif isinstance(target, dict):
            target = target.setdefault(part, {})
        else:
            raise ConfigError(f"--set {key}: {where} is not a section that holds keys")
    last = parts[-1]
    container: dict[Any, Any] | list[Any] = target
    if isinstance(container, list) and not (isinstance(last, int) and last < len(container)):
        raise ConfigError(f"--set {key}: no item {last} in a list of {len(container)}")
    if not isinstance(container, dict | list):
        raise ConfigError(f"--set {key}: cannot set this key")
    container[last] = value  # type: ignore[index]
    return result


_KEY_PREFIX = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*): (.*)$", re.DOTALL)


def _format_validation_error(exc: ValidationError, locations: Locations, source: Path) -> str:
    error = exc.errors()[0]
    loc: KeyPath = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
    message = error["msg"].removeprefix("Value error, ")
    # validators that check several keys start their message with the key path
    # (relative to where they sit) so that the error can point at it
    prefixed = _KEY_PREFIX.match(message)
    if error["type"] == "value_error" and prefixed:
        loc = loc + tuple(_parse_key(part) for part in prefixed.group(1).split("."))
        message = prefixed.group(2)
    key = ".".join(str(p) for p in loc) or "(top level)"
    where = None
    for end in range(len(loc), 0, -1):
        where = locations.get(loc[:end])
        if where is not None:
            break
    where = where or str(source)
    if error["type"] == "extra_forbidden":
        message = "unknown key; check the spelling against docs/config.md"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif "input" in error and error["type"] not in ("value_error", "assertion_error"):
        shown = repr(error["input"])
        message = f"{message} (got {shown[:60]})"
    extra = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {key}: {message}{extra}"


_UNION_TAGS = {
    "min_variance",
    "mean_variance",
    "max_sharpe",
    "risk_parity",
    "min_cvar",
    "min_cdar",
    "min_cvar_maxdd",
    "max_growth",
    "paths",
    "parametric",
}
"""Tags pydantic puts into an error's location for a union member (objective and scenario kinds): not keys."""


def load_scenario(
    path: Path | str,
    overrides: Iterable[str] = (),
) -> Scenario:
    """Load, merge, override and validate a scenario file.

    Raises
    ------
    ConfigError
        With a one-line message naming the file, line and key path.
    """
    path = Path(path)
    data, locations = load_raw(path)
    for override in overrides:
        data = apply_override(data, override)
        # errors in an overridden value point at the --set, not at the file
        key = tuple(_parse_key(p) for p in override.partition("=")[0].strip().split("."))
        for known in [k for k in locations if k[: len(key)] == key]:
            del locations[known]
        locations[key] = f"--set {override.partition('=')[0].strip()}"
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, locations, path)) from None


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The resolved scenario as plain YAML-ready data."""
    result: dict[str, Any] = scenario.model_dump(mode="json", exclude_none=True)
    return result


def config_hash(scenario: Scenario) -> str:
    """A stable sha256 of what determines a scenario's numbers, for manifests and run ids.

    Where and on how many workers it runs and the output folder change no
    number, so they are left out.
    """
    data = scenario_to_dict(scenario)
    data.pop("output", None)
    for key in ("n_jobs", "backend", "scheduler"):
        data.get("simulation", {}).pop(key, None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
