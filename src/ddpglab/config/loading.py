"""Loading a config: a shipped preset, a YAML file over it, ``--set`` overrides last, then
validation into a :class:`Config` with a one-line :class:`ConfigError`; and back to YAML.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ddpglab.config.errors import ConfigError
from ddpglab.config.overrides import apply_overrides, one_budget_wins, unknown_key_message
from ddpglab.config.sections import Config
from ddpglab.config.yaml_files import parse_yaml, read_yaml_file, yaml_mapping


def preset_names() -> list[str]:
    """Names of the presets shipped in ``ddpglab/presets``."""
    files = resources.files("ddpglab").joinpath("presets").iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The YAML file of a shipped preset, as shipped (comments included)."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; choose from {', '.join(preset_names())}")
    return resources.files("ddpglab").joinpath("presets", f"{name}.yaml").read_text()


def preset_dict(name: str) -> dict[str, Any]:
    """The raw mapping of a shipped preset."""
    text = preset_text(name)
    origin = f"preset {name}"
    return yaml_mapping(parse_yaml(text, origin), origin, "of config sections")


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    # a section validated inside a validator carries its own location on ("within")
    within = first.get("ctx", {}).get("within", ())
    where = ".".join(str(p) for p in (*first["loc"], *within))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return unknown_key_message(where)
    return f"{where}: {msg}" if where else msg


def validate(data: dict[str, Any]) -> Config:
    """Validate a raw mapping into a :class:`Config`, raising a one-line :class:`ConfigError`."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"invalid config: {_first_error(err)}") from None


def load_config(
    preset: str | None = "pendulum",
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Build a validated config: preset, then a YAML file on top, then ``overrides``.

    Args:
        preset: name of a shipped preset (see :func:`preset_names`); None starts from defaults.
        file: YAML file with config sections, merged over the preset section by section.
        overrides: ``{"agent.tau": 0.005, ...}`` applied last.
    """
    data = preset_dict(preset) if preset else {}
    if file is not None:
        path = Path(file)
        layer = yaml_mapping(read_yaml_file(path, "config file"), str(path), "of config sections")
        if isinstance(layer.get("train"), dict):
            one_budget_wins(data, layer["train"])
        for section, values in layer.items():
            if isinstance(values, dict) and isinstance(data.get(section), dict):
                data[section] = {**data[section], **values}
            else:
                data[section] = values
    return validate(apply_overrides(data, overrides or {}))


#: The two kinds of training budget, per member: one of them is set.
BUDGETS = ("episodes", "steps")


def same_run_config(
    saved: dict[str, Any], current: dict[str, Any], budget_may_grow: bool = False
) -> bool:
    """Whether a saved state's config is the current one, up to the torch thread count, the
    device, finite_check_every and keep_state (which change speed or what is kept, not what
    is trained: a run may resume elsewhere); with ``budget_may_grow``, also up to a larger
    budget of the same kind (a finished run continued, see :func:`budget_grew`).

    A key the saved config lacks counts as its default: a state saved before the key
    existed (replay.combined, a strategy added since) trained exactly what the default
    trains. A saved config this version cannot validate is another run's.
    """
    try:
        saved = Config.model_validate(saved).model_dump(mode="json")
    except ValidationError:
        return False

    def comparable(config: dict[str, Any]) -> dict[str, Any]:
        ignored = ("torch_threads", "device", "finite_check_every", "keep_state")
        if budget_may_grow:
            ignored += BUDGETS
        return {**config, "train": {**config["train"], **dict.fromkeys(ignored)}}

    if budget_may_grow and not (
        all(saved["train"].get(k) == current["train"].get(k) for k in BUDGETS)
        or budget_grew(saved, current)
    ):
        return False
    return comparable(saved) == comparable(current)


def budget_grew(saved: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether ``current`` (a config dump) has a larger budget of the same kind than
    ``saved``: a finished run continued further (``train --resume --episodes N``)."""
    old, new = saved["train"], current["train"]
    return any(
        old.get(kind) is not None and new.get(kind) is not None and new[kind] > old[kind]
        for kind in BUDGETS
    )


def to_yaml(config: Config) -> str:
    """The resolved config as YAML, loadable again with ``load_config(None, file=...)``."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
