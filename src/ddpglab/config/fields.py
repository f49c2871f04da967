"""Which keys a config section holds: the introspection that dotted keys and error
messages walk (``agent.hidden``, ``replay.prioritized.alpha``)."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ddpglab.config.sections import ReplayConfig, strategy_sections


def section_fields(section: type[BaseModel]) -> dict[str, FieldInfo]:
    """The keys a config section holds, by name: its fields, and for ``replay`` one section
    per strategy with parameters (``replay.<kind>``), which the registry supplies."""
    fields = dict(section.model_fields)
    if issubclass(section, ReplayConfig):
        fields.update(
            (kind, FieldInfo.from_annotation(params))
            for kind, params in strategy_sections().items()
        )
    return fields


def section_type(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The config section a field holds, if any, and whether it may be None (off)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = get_args(annotation)
    sections = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(sections) == 1 and type(None) in args:
        return sections[0], True
    return None, False
