"""The base of every config section: frozen, no unknown keys, no inf or nan, and no yes/no for a number."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mcalloc.results.columns import TEXT_COLUMNS

__all__ = ["AssetName", "Frozen", "Identifier"]

_READ_AS_OTHER = {
    "nan": "a missing value",
    "null": "a missing value",
    "inf": "a number (infinity)",
    "infinity": "a number (infinity)",
    "true": "a boolean",
    "false": "a boolean",
}
"""Names the pattern below allows that pandas reads back from a CSV file as something other than text."""


def _refused(name: str, reason: str | None) -> str:
    """``name``, unless there is a ``reason`` it cannot be one."""
    if reason is not None:
        raise ValueError(f"'{name}' {reason}; choose another name")
    return name


def _not_read_as_other(name: str) -> str:
    other = _READ_AS_OTHER.get(name)
    return _refused(
        name,
        None
        if other is None
        else f"is read back from the results' CSV files as {other}, so the tables could not name it",
    )


def _asset_name(name: str) -> str:
    if name in TEXT_COLUMNS:
        # correlation.csv's column of this asset would be read back as text, and return_correlation.csv and the
        # report's weights hold an asset, currency or portfolio column beside the assets'
        return _refused(
            name,
            "is a column of mcalloc's results tables that is read back as text, where a column per asset is "
            "read as numbers",
        )
    if name.startswith("fx_"):
        return _refused(
            name, "starts with fx_, the exchange rates' prefix (fx_usd is USD's), which a model fits beside the assets"
        )
    return name


Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40), AfterValidator(_not_read_as_other)]
"""A name the user gives (a scenario, asset, portfolio, group): lower-case letters, digits and _, as results name it."""

AssetName = Annotated[Identifier, AfterValidator(_asset_name)]
"""An asset's :data:`Identifier`, which results tables also use as a column name beside their own."""


def _numbers_only(annotation: object) -> bool:
    """Whether a field's type holds an int or a float but no bool (pydantic would read YAML's true as 1)."""
    seen: set[object] = set()

    def kinds(item: object) -> set[object]:
        if id(item) in seen:
            return set()
        seen.add(id(item))
        found: set[object] = {item} if item in (bool, int, float, Any) else set()
        for argument in typing.get_args(item):
            found |= kinds(argument)
        return found

    found = kinds(annotation)
    return bool(found & {int, float}) and not found & {bool, Any}


def _flag_only(annotation: object) -> bool:
    """Whether a field's type is a bool (or a bool or None): pydantic would read the numbers 0 and 1 as one."""
    if annotation is bool:
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        return _flag_only(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return {a for a in typing.get_args(annotation) if a is not type(None)} == {bool}
    return False


def _takes_null(annotation: object) -> bool:
    """Whether a field's type holds ``None`` (``X | None``, ``Any``): there ``null`` is a value, not "unset"."""
    if annotation is Any or annotation is type(None):
        return True
    if typing.get_origin(annotation) is typing.Annotated:
        return _takes_null(typing.get_args(annotation)[0])
    return any(argument is type(None) for argument in typing.get_args(annotation)) and typing.get_origin(
        annotation
    ) in (typing.Union, types.UnionType)


def _mapping_values(annotation: object) -> object | None:
    """The value type of a ``dict[K, V]`` field (also ``dict[K, V] | None``), or ``None`` for any other field."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _mapping_values(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is dict:
        value: object = typing.get_args(annotation)[1]
        return value
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [_mapping_values(argument) for argument in typing.get_args(annotation)]
        return next((item for item in found if item is not None), None)
    return None


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models a field's annotation holds (inside ``Annotated``, unions, lists and tuples)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple):
        return [model for argument in typing.get_args(annotation) for model in _models_in(argument)]
    return []


def user_keyed_sections(model: type[BaseModel], at: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The key paths of mappings keyed by the user's own names, where a name set to null is left out
    (``portfolio.benchmarks``, ``model.marginals.params``); ``*`` stands for a list index."""
    found: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        if _mapping_values(field.annotation) is not None:
            found.append((*at, name))
        listed = typing.get_origin(field.annotation) is list
        for inner in _models_in(field.annotation):
            found += user_keyed_sections(inner, (*at, name, "*") if listed else (*at, name))
    return found


def _boolean_for_a_number(value: object, annotation: object) -> str | None:
    """Where in ``value`` a boolean stands for a number of ``annotation``: ``""`` at the top, ``".x.0"`` inside.

    Mappings and lists of numbers (benchmark weights, bounds, loadings, a
    covariance matrix) are searched by their item types; sections of their
    own check themselves.
    """
    if isinstance(value, bool):
        return "" if _numbers_only(annotation) else None
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _boolean_for_a_number(value, arguments[0])
    if origin in (typing.Union, types.UnionType):
        found = (_boolean_for_a_number(value, argument) for argument in arguments)
        return next((where for where in found if where is not None), None)
    items: list[tuple[object, object, object]] = []
    if isinstance(value, dict) and origin is dict:
        items = [(key, item, arguments[1]) for key, item in value.items()]
    elif isinstance(value, list | tuple) and origin in (list, tuple) and arguments:
        fixed = origin is tuple and arguments[-1] is not Ellipsis
        items = [
            (index, item, arguments[index] if fixed and index < len(arguments) else arguments[0])
            for index, item in enumerate(value)
        ]
    for key, item, item_type in items:
        where = _boolean_for_a_number(item, item_type)
        if where is not None:
            return f".{key}{where}"
    return None


class Frozen(BaseModel):
    """A config section: immutable, and refusing unknown keys, infinite or missing numbers, and booleans
    where a number belongs (``horizon_years: yes`` would otherwise run one year)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                field = cls.model_fields.get(key) if isinstance(key, str) else None
                where = _boolean_for_a_number(value, field.annotation) if field is not None else None
                if where is not None:
                    # "key: message": the loader points the error at the key's line
                    raise ValueError(f"{key}{where}: expected a number, not true or false (YAML reads yes/no so too)")
                if (
                    isinstance(value, int | float)
                    and not isinstance(value, bool)
                    and field
                    and _flag_only(field.annotation)
                ):
                    # the other way round, as strictly: report: 1 read as true, paths: 0 as false
                    raise ValueError(f"{key}: expected true or false, not the number {value}")
        return data

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset_where_not_a_value(cls, data: Any) -> Any:
        """``key: null`` for a key that cannot be null takes the key's default, in any file and in ``--set``.

        Where ``null`` is a value of its own (``variance_ceiling: null``, no
        ceiling) it stays that value, also in a file that extends another.
        A required key stays null, and is refused as such. In a mapping keyed
        by the user's own names (``benchmarks``, ``params``), a name set to
        ``null`` is left out: a child file drops a benchmark it inherits so.
        """
        if not isinstance(data, dict):
            return data
        kept = dict(data)
        for key, value in data.items():
            field = cls.model_fields.get(key) if isinstance(key, str) else None
            if field is None:
                continue
            if value is None and not field.is_required() and not _takes_null(field.annotation):
                del kept[key]
            elif isinstance(value, dict) and any(entry is None for entry in value.values()):
                entries = _mapping_values(field.annotation)
                if entries is not None and not _takes_null(entries):
                    kept[key] = {name: entry for name, entry in value.items() if entry is not None}
        return kept
