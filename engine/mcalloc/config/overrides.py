"""Command-line overrides, ``section.key=value``: parsed, labelled and applied to a scenario's settings.

The value is read as YAML (text YAML cannot read is kept as written, for
validation to judge), list items are addressed by index, and a null drops a
name from a section keyed by the user's own names (benchmarks, params); a
null for a name the section lacks is refused as a misspelling.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import yaml

from mcalloc.config.schema import Scenario
from mcalloc.config.yaml_source import KeyPath, TooManyValuesError, parse_yaml
from mcalloc.errors import ConfigError

__all__ = [
    "GridOrigin",
    "apply_override",
    "keyed_by_names",
    "nothing_to_drop",
    "override_key",
    "override_label",
    "override_text",
    "parse_key",
]


@cache
def _user_keyed() -> list[KeyPath]:
    from mcalloc.config.base import user_keyed_sections

    return [tuple(section) for section in user_keyed_sections(Scenario)]


def keyed_by_names(section: KeyPath) -> bool:
    """Whether ``section`` is a mapping keyed by the user's own names (benchmarks, params), not by settings."""
    return any(
        len(pattern) == len(section) and all(p in ("*", s) for p, s in zip(pattern, section, strict=True))
        for pattern in _user_keyed()
    )


def nothing_to_drop(key: KeyPath, data: Mapping[str, Any]) -> str:
    """The message for a null that drops a name the section lacks: a misspelling, most likely."""
    section: Any = data
    for part in key[:-1]:
        section = section[part]
    names = ", ".join(str(name) for name, value in section.items() if value is not None) or "none"
    where = ".".join(str(part) for part in key[:-1])
    return f"null drops an inherited name, but {where} has no '{key[-1]}' (it has {names}); check the spelling"


def _copied(value: Any) -> Any:
    """A deep copy of YAML data in which every key keeps its type.

    (A round trip through JSON, which this replaced, turned a name YAML had
    read as a boolean, ``no:``, into the text ``"false"``, which validation
    then took for a name: one ``--set`` silenced the refusal of ``no``.)
    """
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_copied(item) for item in value]
    return value


def parse_key(part: str) -> str | int:
    # ASCII digits only: str.isdigit() is also true for '²', which int() refuses
    return int(part) if part.isascii() and part.isdigit() else part


def override_text(key: str, value: object) -> str:
    """The ``--set`` string that gives ``key`` (dotted) the value ``value`` (written as one line of YAML).

    Mappings keep their order (the first benchmark is the reference). numpy
    numbers and arrays and paths are written as the plain values they hold.

    Raises
    ------
    ValueError
        If ``value`` holds something YAML cannot write (an object of another kind).
    """
    try:
        text = yaml.safe_dump(_plain(value), default_flow_style=True, width=10_000, sort_keys=False).strip()
    except yaml.YAMLError as error:  # a subclass of a plain type, say, that YAML will not write
        raise ValueError(f"cannot write {value!r} as a setting ({type(error).__name__})") from None
    return f"{key}={text.removesuffix('...').strip()}"


def _plain(value: object) -> object:
    """``value`` with numpy numbers, arrays, paths and decimals as the Python numbers, lists and text they hold."""
    import numpy as np

    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, np.datetime64):  # as a date (its .item() is an integer of nanoseconds for some units)
        return str(np.datetime_as_string(value, unit="D"))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime.date):  # a pandas Timestamp too, with its time (the schema judges a time of day)
        return value.isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ValueError(
        f"cannot write a value of type {type(value).__name__} as a setting; give a number, text, true or false, "
        "a list or a mapping"
    )


def override_key(override: str) -> KeyPath:
    """The key path an override sets: ``assets.0.ter=0.001`` sets ``("assets", 0, "ter")``."""
    return tuple(parse_key(part) for part in override.partition("=")[0].strip().split("."))


class GridOrigin(str):
    """The origin of a sweep grid's ``null``: a name offered with and without it, which may name nothing to drop."""

    __slots__ = ()


def override_label(override: str, origin: str | None = None) -> str:
    """What an error in ``override`` points at: ``--set KEY``, or ``ORIGIN: KEY`` for one given elsewhere.

    ``origin`` says where a setting that is not a ``--set`` came from: a
    sweep file's line, or a keyword of :func:`mcalloc.run`.
    """
    key = override.partition("=")[0].strip()
    return f"--set {key}" if origin is None else f"{origin}: {key}"


def apply_override(data: dict[str, Any], override: str, origin: str | None = None) -> dict[str, Any]:
    """Return ``data`` with one ``dotted.key=value`` override applied.

    The value is read as YAML, so ``--set simulation.n_paths=2000`` gives an
    integer and ``--set 'portfolio.benchmarks.x={sp500: 1.0}'`` a mapping.
    List items are addressed by index: ``assets.0.ter=0.001``. Errors name
    the ``--set``, or ``origin`` when the setting was given elsewhere.
    """
    key, sep, raw_value = override.partition("=")
    if not sep or not key.strip():
        where = "--set" if origin is None else f"{origin}:"
        raise ConfigError(f"{where} {override!r}: expected section.key=value")
    if not key.isprintable():
        where = "--set" if origin is None else f"{origin}:"
        raise ConfigError(f"{where} {key!r}: the key holds a control character (a newline?); give section.key=value")
    label = override_label(override, origin)
    if key.strip() == "extends":  # read with the files, before any setting: a --set comes too late for it
        raise ConfigError(f"{label}: extends is read from the scenario file only; write it there")
    try:
        value = parse_yaml(raw_value, label)[0] if raw_value.strip() else None
    except TooManyValuesError:
        raise
    except ConfigError:
        if raw_value.strip().startswith(("{", "[")):
            raise ConfigError(f"{label}: cannot read value {raw_value!r} as YAML") from None
        if raw_value.strip().startswith("!"):  # a tag, refused in a file too: not text to keep as written
            raise ConfigError(
                f"{label}: {raw_value.strip()!r} starts with a YAML tag, which mcalloc does not read; "
                "quote the value ('\"!...\"') if it is text"
            ) from None
        # text YAML will not read bare (%d/%m/%Y, @home): taken as written; validation judges it
        value = raw_value.strip()
    except ValueError:
        # looks like a date but is not one (2019-13-45): let validation say so
        value = raw_value.strip()
    parts = [parse_key(p) for p in key.strip().split(".")]
    result: dict[str, Any] = _copied(data)
    target: Any = result
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(str(p) for p in parts[: depth + 1])
        if isinstance(target, list) and isinstance(part, int):
            if part >= len(target):
                raise ConfigError(f"{label}: {where} is past the end of the list ({len(target)} items)")
            target = target[part]
        elif isinstance(target, dict):
            if target.get(part) is None:  # absent, or null (params: null): the key starts the section
                target[part] = {}
            target = target[part]
        elif isinstance(target, list):  # assets.sp500.ter, assets.-1.ter: a --set gives an item's position
            listed = ".".join(str(p) for p in parts[:depth])
            named = [i for i, item in enumerate(target) if isinstance(item, dict) and item.get("name") == part]
            instead = ".".join(map(str, [*parts[:depth], *named[:1], *parts[depth + 1 :]]))
            hint = (
                f"{part} is item {named[0]}, so set {instead}"
                if named
                else f"give {listed}.0 to {listed}.{len(target) - 1}"
            )
            raise ConfigError(f"{label}: {listed} is a list of {len(target)}, addressed by position: {hint}")
        else:
            raise ConfigError(f"{label}: {where} is not a section that holds keys")
    last = parts[-1]
    container: dict[Any, Any] | list[Any] = target
    if isinstance(container, list) and not (isinstance(last, int) and last < len(container)):
        raise ConfigError(f"{label}: no item {last} in a list of {len(container)}")
    if not isinstance(container, dict | list):
        parent = ".".join(str(p) for p in parts[:-1])
        raise ConfigError(
            f"{label}: {parent} is a single value ({container!r}), not a section that holds keys; set {parent}=VALUE"
        )
    # a misspelling, unless a sweep's grid offers the name with and without it (null)
    dropped = value is None and isinstance(container, dict) and last not in container
    if dropped and not isinstance(origin, GridOrigin) and keyed_by_names(tuple(parts[:-1])):
        raise ConfigError(f"{label}: {nothing_to_drop(tuple(parts), result)}")
    container[last] = value  # type: ignore[index]
    return result
