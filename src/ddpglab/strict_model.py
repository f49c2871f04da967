"""The base of every section a user writes: config sections, replay strategy parameters and
study specs.

Unknown keys, NaN and infinities are refused, and so is a yes/no where a number is
expected: YAML reads ``yes``, ``true``, ``on`` (and their opposites) as booleans, which
pydantic would otherwise take as 1 and 0, so ``tau: yes`` would train with tau = 1.
"""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

#: The refusal of a yes/no where a number is expected.
YES_OR_NO = PydanticCustomError("yes_or_no", "expected a number, not true or false")


def admits(annotation: Any, kind: type) -> bool:
    """Whether a field of this type may hold a ``kind`` (anywhere in a union, a list's items
    or a JSON value); a nested model answers for its own fields, so it admits anything."""
    if annotation is kind or annotation is Any:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    if hasattr(annotation, "__value__"):  # a type alias such as pydantic's JsonValue
        return admits(annotation.__value__, kind)
    if get_origin(annotation) is Literal:
        return any(type(value) is kind for value in get_args(annotation))
    return any(admits(arg, kind) for arg in get_args(annotation))


def wants_a_number_not_a_bool(annotation: Any) -> bool:
    """Whether a field of this type takes numbers and no booleans: where a yes/no is a slip."""
    takes_numbers = admits(annotation, int) or admits(annotation, float)
    return takes_numbers and not admits(annotation, bool)


def holds_bool(value: Any) -> bool:
    """Whether ``value`` is a boolean, or a list, tuple or mapping with one among its items
    (a mapping's values; its keys are names)."""
    if isinstance(value, bool):
        return True
    if isinstance(value, dict):
        value = list(value.values())
    return isinstance(value, list | tuple) and any(holds_bool(item) for item in value)


class StrictModel(BaseModel):
    """A section: unknown keys, non-finite numbers and yes/no for numbers refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_yes_or_no_for_a_number(cls, data: Any) -> Any:
        # A model validator, not a field validator on "*": pydantic allows none of those on
        # the field that discriminates a union (a search prior's `prior`).
        if not isinstance(data, dict):
            return data
        wrong = [
            InitErrorDetails(type=YES_OR_NO, loc=(name,), input=data[name])
            for name, field in cls.model_fields.items()
            if name in data
            and holds_bool(data[name])
            and wants_a_number_not_a_bool(field.annotation)
        ]
        if wrong:
            raise ValidationError.from_exception_data(cls.__name__, wrong)
        return data
