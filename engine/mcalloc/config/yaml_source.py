"""YAML files read safely, with the file and line of every key: what lets each error point at its line.

Duplicate keys are refused (YAML would keep the last silently), as are
files and documents past a size that no scenario needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mcalloc.errors import ConfigError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "KeyPath",
    "Locations",
    "TooManyValuesError",
    "parse_yaml",
    "read_yaml_file",
    "read_yaml_mapping",
]

KeyPath = tuple[str | int, ...]


Locations = dict[KeyPath, str]


MAX_FILE_BYTES = 1_000_000
"""A scenario file larger than this is refused (the shipped ones are under 10 kB)."""


MAX_NODES = 20_000
"""Values a scenario may hold, aliases counted each time they are used (shipped scenarios: a few hundred)."""


class TooManyValuesError(ConfigError):
    """A YAML document whose aliases expand to more than ``MAX_NODES`` values."""


def _node_locations(node: yaml.Node, source: str) -> Locations:
    """Where each key path starts, ``file:line``; an alias is not followed (its anchor has the locations).

    Raises
    ------
    ConfigError
        If the document holds more than ``MAX_NODES`` values with every
        alias expanded: nested aliases can make a few hundred bytes expand
        into billions of values (a "billion laughs" file).
    """
    out: Locations = {}
    visited: set[int] = set()
    expanded: dict[int, int] = {}

    def size(item: yaml.Node) -> int:
        """Values under ``item`` with aliases expanded, counted once per node and capped."""
        key = id(item)
        if key in expanded:
            return expanded[key]
        expanded[key] = 1  # a cycle counts once
        total = 1
        if isinstance(item, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in item.value)
        elif isinstance(item, yaml.SequenceNode):
            total += sum(size(v) for v in item.value)
        expanded[key] = min(total, MAX_NODES + 1)
        return expanded[key]

    def walk(item: yaml.Node, path: KeyPath) -> None:
        out[path] = f"{source}:{item.start_mark.line + 1}"
        if id(item) in visited:
            return
        visited.add(id(item))
        if isinstance(item, yaml.MappingNode):
            for key_node, value_node in item.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                    raise ConfigError(
                        f"{source}:{key_node.start_mark.line + 1}: a key is a {kind}; keys are plain names, "
                        "write it as one"
                    )
                if key_node.tag.endswith(":null"):  # null:, ~: or a bare "? ": pydantic's words name no line
                    shown = f"'{key_node.value}'" if key_node.value else "an empty key"
                    raise ConfigError(
                        f"{source}:{key_node.start_mark.line + 1}: {shown} is read by YAML as no name (null); "
                        "give the key its name"
                    )
                if key_node.tag == _MERGE_TAG:  # <<: the merged keys sit at this mapping's own path
                    for merged in value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]:
                        walk(merged, path)
                    continue
                key = key_node.value
                walk(value_node, (*path, key))
                out[(*path, key)] = f"{source}:{key_node.start_mark.line + 1}"
                if key_node.tag.endswith((":int", ":float", ":bool")):  # also under the value YAML reads (1_000: 1000)
                    number = yaml.safe_load(key_node.value)
                    out.setdefault((*path, number), out[(*path, key)])
        elif isinstance(item, yaml.SequenceNode):
            for index, value_node in enumerate(item.value):
                walk(value_node, (*path, index))

    if size(node) > MAX_NODES:
        raise TooManyValuesError(
            f"{source}: holds more than {MAX_NODES:,} values once its aliases (*name) are expanded; "
            "write the values out or use fewer nested aliases"
        )
    walk(node, ())
    return out


_MERGE_TAG = "tag:yaml.org,2002:merge"
"""The tag of YAML's merge key, ``<<: *defaults``."""


_WRITE_IT_PLAIN = "write it without leading zeros or colons, or quote it if it is text"
"""The end of the refusal of a surprising number: the whole advice (not a syntax error's)."""


def _refuse_surprising_number(node: yaml.ScalarNode, what: str) -> None:
    """Refuse a number YAML 1.1 reads otherwise than it looks: a leading zero (octal) or colons (base 60)."""
    text = node.value.replace("_", "").lstrip("+-")
    if ":" in text:
        read = "base 60 (1:30 is 90)"
    elif len(text) > 1 and text.startswith("0") and text.isdigit():
        read = f"an octal number ({int(text, 8)})"
    else:
        return
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"{node.value!r} is read by YAML as {read}, not the {what} it looks like; {_WRITE_IT_PLAIN}",
        node.start_mark,
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping.

    Merge keys (``<<: *defaults``) work as in YAML: the mapping's own keys
    override the merged ones, and only its own keys must be unique.
    """

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """An integer, but not YAML 1.1's octal (``0100000`` is 32768) or base 60 (``1:30`` is 90)."""
        _refuse_surprising_number(node, "whole number")
        value: int = super().construct_yaml_int(node)
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        """A float, but not YAML 1.1's base 60 (``1:30.5`` is 90.5)."""
        _refuse_surprising_number(node, "number")
        value: float = super().construct_yaml_float(node)
        return value

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in this mapping; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:float", _UniqueKeyLoader.construct_yaml_float)


def _read_text(path: Path) -> str:
    """The file's text, checked to be UTF-8 and of a sensible size."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = "check the path"
        if not path.is_absolute() and path.parts[:1] == ("configs",) and not Path("configs").is_dir():
            # an installed package has none of the repository's scenarios: the user is not in a clone
            hint += " (the scenarios in configs/ come with mcalloc's repository, not with an installed package: "
            hint += "run from a clone of it, or write your own scenario, docs/config.md)"
        raise ConfigError(f"{path}: scenario file not found; {hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a scenario file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read scenario file ({exc.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: {len(raw):,} bytes; a scenario file may hold at most {MAX_FILE_BYTES:,}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: byte 0x{raw[exc.start]:02x} is not UTF-8; save the file as UTF-8") from None


def parse_yaml(text: str, source: str) -> tuple[Any, Locations]:
    """Safely read YAML text: no tags run, duplicate keys and alias bombs refused; the data and its locations.

    Raises
    ------
    ConfigError
        Naming ``source`` (and the line, for syntax errors).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        locations: Locations = _node_locations(node, source) if node is not None else {}
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or "invalid YAML"
        advice = "" if problem.endswith(_WRITE_IT_PLAIN) else "; fix the YAML syntax"
        if "'\\t'" in problem:  # PyYAML's own words for a tab it met where indentation goes
            problem, advice = "a tab, which YAML does not allow here", "; indent and separate with spaces instead"
        raise ConfigError(f"{where}: {problem}{advice}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read; flatten the YAML") from None
    return data, locations


def read_yaml_file(path: Path) -> tuple[Any, Locations]:
    """A YAML file read by :func:`parse_yaml`, checked to be UTF-8 and at most ``MAX_FILE_BYTES``."""
    return parse_yaml(_read_text(path), str(path))


def read_yaml_mapping(path: Path) -> tuple[dict[str, Any], Locations]:
    data, locations = read_yaml_file(path)
    if data is None:
        raise ConfigError(
            f"{path}: the file is empty; a scenario needs at least name, seed and assets "
            "(start from configs/default.yaml, or write extends: and what differs)"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario must be a YAML mapping of sections, not {type(data).__name__}")
    return data, locations
