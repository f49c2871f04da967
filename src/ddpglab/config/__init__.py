"""Typed, validated configuration: presets, YAML files and ``--set dotted.key=value`` overrides.

A :class:`Config` is validated once, at the edge (CLI or Python API); code inside the
library trusts it. Every validation problem surfaces as a :class:`ConfigError` whose
message is one line that names the offending key.

The package holds one idea per module: ``sections`` (the pydantic models), ``fields``
(which keys a section holds), ``overrides``
(dotted keys: parsing, applying, flattening, the budget rule), ``yaml_files`` (reading
what users write, with one-line errors) and ``loading`` (presets, files, validation,
``load_config``, ``to_yaml``). Everything public is importable from ``ddpglab.config``.
Importing it does not import torch: the replay registry is consulted by validation only.
"""

from ddpglab.config.errors import ConfigError
from ddpglab.config.fields import section_fields, section_type
from ddpglab.config.loading import (
    BUDGETS,
    budget_grew,
    load_config,
    preset_dict,
    preset_names,
    preset_text,
    same_run_config,
    to_yaml,
    validate,
)
from ddpglab.config.overrides import (
    apply_overrides,
    cleared_budgets,
    flatten,
    is_section,
    one_budget_wins,
    parse_override,
    value_at,
)
from ddpglab.config.sections import (
    AgentConfig,
    Config,
    EnvConfig,
    NoiseConfig,
    PalConfig,
    ReplayConfig,
    TrainConfig,
    WindowConfig,
)
from ddpglab.config.yaml_files import SpecLoader, parse_yaml, read_yaml_file, yaml_mapping

__all__ = [
    "BUDGETS",
    "AgentConfig",
    "Config",
    "ConfigError",
    "EnvConfig",
    "NoiseConfig",
    "PalConfig",
    "ReplayConfig",
    "SpecLoader",
    "TrainConfig",
    "WindowConfig",
    "apply_overrides",
    "budget_grew",
    "cleared_budgets",
    "flatten",
    "is_section",
    "load_config",
    "one_budget_wins",
    "parse_override",
    "parse_yaml",
    "preset_dict",
    "preset_names",
    "preset_text",
    "read_yaml_file",
    "same_run_config",
    "section_fields",
    "section_type",
    "to_yaml",
    "validate",
    "value_at",
    "yaml_mapping",
]
