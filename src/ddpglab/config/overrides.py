"""Config layers as ``dotted.key=value`` overrides: parsing, applying, flattening, and the
rule that a layer setting one budget (episodes or steps) clears the other.

Every layer on top of a preset (a config file, a study's ``set``, ``--set`` on the command
line) ends up here, so a key is checked against the config sections in one place.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, get_origin

import yaml
from pydantic import BaseModel

from ddpglab.config.errors import ConfigError
from ddpglab.config.fields import section_fields, section_type
from ddpglab.config.sections import Config

#: The alternative training budgets, each the other's (in ``train``).
BUDGETS = (("steps", "episodes"), ("episodes", "steps"))


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``dotted.key=value``; the value is read as YAML (``1e-3``, ``[64, 64]``, ``null``)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects dotted.key=value, got '{item}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else raw
    except (yaml.YAMLError, RecursionError):  # not YAML: the text itself is the value
        value = raw
    return key.strip(), value


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``section.key`` set; unknown keys are refused."""
    out = copy.deepcopy(data)
    one_budget_wins(out, {k.removeprefix("train."): v for k, v in overrides.items()})
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        model: type[BaseModel] = Config
        node = out
        for depth, part in enumerate(parts):
            fields = section_fields(model)
            field = fields.get(part)
            if field is None:
                raise ConfigError(unknown_key_message(dotted, depth))
            last = depth == len(parts) - 1
            section, optional = section_type(field.annotation)
            if last:
                if section is not None and not (optional and value is None):
                    raise ConfigError(f"'{dotted}' is a section; set one of its keys")
                node[part] = value
            else:
                if section is None and is_mapping(field.annotation):
                    # a mapping of the user's own names (env.kwargs): the rest is its key
                    set_entry(node, part, parts[depth + 1 :], value, dotted)
                    break
                if section is None:
                    raise ConfigError(f"unknown config key '{dotted}' ('{part}' has no sub-keys)")
                if node.get(part) is None:  # an optional section switched on by a key
                    node[part] = {}
                node = node[part]
                if not isinstance(node, dict):
                    raise ConfigError(f"config section '{part}' must be a mapping of keys")
                model = section
    return out


def is_mapping(annotation: Any) -> bool:
    """Whether a field holds a mapping of free names (``env.kwargs``), not a section."""
    return get_origin(annotation) is dict


def set_entry(node: dict[str, Any], field: str, names: list[str], value: Any, dotted: str) -> None:
    """Set ``node[field][names[0]]...[names[-1]] = value`` in a mapping-valued field, so that
    ``env.kwargs.g=9.81`` sets one entry and keeps the others."""
    if node.get(field) is None:
        node[field] = {}
    target = node[field]
    for name in names[:-1]:
        if not isinstance(target, dict):
            break
        target = target.setdefault(name, {})
    if not isinstance(target, dict):
        raise ConfigError(f"cannot set '{dotted}': '{field}' there is not a mapping")
    target[names[-1]] = value


def unknown_key_message(dotted: str, depth: int | None = None) -> str:
    """ "unknown config key 'agent.taux' (agent has: hidden, ...)": what a mistyped key is
    refused with, wherever it was written (``--set``, a config file, a spec's ``set``).
    ``depth`` is the index of the unknown part (default: the last)."""
    parts = dotted.split(".")
    depth = len(parts) - 1 if depth is None else depth
    model: type[BaseModel] = Config
    for part in parts[:depth]:
        field = section_fields(model).get(part)
        section = None if field is None else section_type(field.annotation)[0]
        if section is None:
            return f"unknown config key '{dotted}'"
        model = section
    where = ".".join(parts[:depth]) or "the config"
    return f"unknown config key '{dotted}' ({where} has: {', '.join(section_fields(model))})"


def cleared_budgets(train_layer: Mapping[str, Any]) -> dict[str, None]:
    """Episodes and steps are alternative budgets: a layer that sets one clears the other.

    The budget keys a ``train`` layer clears, as ``{key: None}``: the other one, when the
    layer sets one budget and does not mention the other.
    """
    return {
        other: None
        for chosen, other in BUDGETS
        if train_layer.get(chosen) is not None and other not in train_layer
    }


def one_budget_wins(data: dict[str, Any], train_layer: Mapping[str, Any]) -> None:
    """Clear in ``data`` (nested sections) the budget that ``train_layer`` replaces."""
    if data.get("train") is None:  # no preset below: the default budget must yield too
        data["train"] = {}
    train = data["train"]
    if not isinstance(train, dict):
        return
    train.update(cleared_budgets(train_layer))


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config sections as dotted keys: {"agent": {"tau": 1}} -> {"agent.tau": 1}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and (value or is_section(dotted)):
            out.update(flatten(value, f"{dotted}."))  # an empty section sets nothing
        else:  # also {} under an unknown key or a value's key: apply_overrides refuses it
            out[dotted] = value
    return out


def is_section(dotted: str) -> bool:
    """Whether a dotted key names a config section ("agent", "replay.window")."""
    section: type[BaseModel] | None = Config
    for part in dotted.split("."):
        field = section_fields(section).get(part) if section is not None else None
        if field is None:
            return False
        section, _ = section_type(field.annotation)
    return section is not None


def value_at(data: Mapping[str, Any], dotted: str) -> Any:
    """The value a dotted key names in nested sections (a KeyError if it is not there)."""
    for part in dotted.split("."):
        data = data[part]
    return data
