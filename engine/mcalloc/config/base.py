"""The base of every config section: frozen, no unknown keys, no inf or nan, and no yes/no for a number."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["Frozen"]


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
                if isinstance(value, bool) and field is not None and _numbers_only(field.annotation):
                    # "key: message": the loader points the error at the key's line
                    raise ValueError(f"{key}: expected a number, not {str(value).lower()}")
        return data
