"""Study specs: variants x seeds in one validated YAML file, expanded into configs and jobs.

A spec names a base config (a preset, a config file, ``set`` overrides), the seeds, the
budget and the variants: an explicit list, ``axes`` whose product is taken, or both (each
listed variant crossed with the axes; a variant may carry axes of its own). Every expanded
variant is validated as a full :class:`~ddpglab.config.Config` when the spec is loaded,
so a bad variant stops the study before any run starts.

The *canonical* form of a spec is itself a spec: the config file folded into
``base.set``, the seeds listed, the budget explicit and the variants listed with every
override they get. Its hash identifies the study, so a changed spec is noticed on resume.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from itertools import product
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ddpglab.config import (
    Config,
    ConfigError,
    _section_type,
    apply_overrides,
    preset_dict,
    section_fields,
    validate,
)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")
NAME_RULE = "letters, digits and . _ + = - (starting with a letter or digit)"

#: The largest seed count (``seeds: N``, ``--seeds N``): a count is expanded into a list of
#: seeds before anything else is checked, and a huge one would exhaust memory.
MAX_SEED_COUNT = 1_000_000

#: Keys a study decides itself: its seeds and budget, and the runner's thread count.
STUDY_KEYS = ("train.seeds", "train.episodes", "train.steps", "train.torch_threads")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"'{name}' is not a valid name: use {NAME_RULE}")
    return name


def _check_keys(overrides: dict[str, Any]) -> dict[str, Any]:
    for key in overrides:
        if key in STUDY_KEYS:
            raise ValueError(f"'{key}' is set by the study itself (use seeds, episodes or steps)")
    return overrides


class AxisSpec(_Strict):
    """One dimension of a product: a dotted config key and the values it takes.

    ``values`` is a list (names show each value compactly: 10000 -> ``1e4``) or a mapping
    from a name fragment to a value. ``label`` prefixes the fragment (default: the key's
    last part; ``""`` for none): label ``cap`` and value 1e6 give ``cap1e6``.
    """

    key: str
    values: list[Any] | dict[str, Any]
    label: str | None = None

    @field_validator("key")
    @classmethod
    def _not_a_study_key(cls, key: str) -> str:
        _check_keys({key: None})
        return key

    @field_validator("values")
    @classmethod
    def _not_empty(cls, values: list[Any] | dict[str, Any]) -> list[Any] | dict[str, Any]:
        if not values:
            raise ValueError("an axis needs at least one value")
        return values

    def labelled_values(self) -> list[tuple[str, Any]]:
        """(name fragment, value) for each value, in order."""
        prefix = self.key.rsplit(".", 1)[-1] if self.label is None else self.label
        if isinstance(self.values, dict):
            return [(f"{prefix}{name}", value) for name, value in self.values.items()]
        return [(f"{prefix}{format_value(value)}", value) for value in self.values]


class BaseSpec(_Strict):
    """The config every variant starts from: preset, then config file, then ``set``."""

    preset: str | None = None
    config: str | None = Field(None, description="YAML config file, relative to the spec file")
    set: dict[str, Any] = {}

    _keys = field_validator("set")(_check_keys)


class VariantSpec(_Strict):
    """A named set of overrides, optionally crossed with axes of its own; ``preset``, if
    given, replaces the base's preset for this variant (the base's ``config`` and ``set``
    still apply on top of it)."""

    name: str
    preset: str | None = None
    set: dict[str, Any] = {}
    axes: list[AxisSpec] = []

    _name = field_validator("name")(_check_name)
    _keys = field_validator("set")(_check_keys)


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


class StudySpec(_Strict):
    """A study: variants x seeds, each seed trained for the same budget."""

    name: str
    base: BaseSpec = BaseSpec()
    seeds: list[Seed] = Field(description="a count N (seeds 0..N-1) or a list of seeds")
    episodes: int | None = Field(None, gt=0, description="episodes per seed")
    steps: int | None = Field(None, gt=0, description="env steps per seed (instead of episodes)")
    variants: list[VariantSpec] = []
    axes: list[AxisSpec] = []

    _name = field_validator("name")(_check_name)

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_list(cls, seeds: Any) -> Any:
        if isinstance(seeds, bool):
            raise ValueError("expected a count or a list of seeds")
        if isinstance(seeds, int):
            if seeds < 1:
                raise ValueError("a seed count must be at least 1")
            if seeds > MAX_SEED_COUNT:
                raise ValueError(f"a seed count must be at most {MAX_SEED_COUNT}")
            return list(range(seeds))
        return seeds

    @model_validator(mode="after")
    def _consistent(self) -> StudySpec:
        if not self.seeds:
            raise ValueError("seeds: list at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds: seeds must be distinct")
        if self.episodes is not None and self.steps is not None:
            raise ValueError("set at most one of episodes and steps")
        return self


def format_value(value: Any) -> str:
    """A value as a short name fragment: 10000 -> 1e4, 0.001 -> 1e-3, [64, 64] -> 64x64."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return _compact_number(value)
    if isinstance(value, list | tuple):
        return "x".join(format_value(v) for v in value)
    return str(value)


def _compact_number(x: int | float) -> str:
    """The shorter of plain and scientific notation, exact (no float round-off)."""
    d = Decimal(repr(x) if isinstance(x, float) else str(x))
    if not d.is_finite():
        return str(x)
    d = d.normalize()
    sign, digits, exponent = d.as_tuple()
    plain = format(d, "f")
    mantissa = "".join(map(str, digits))
    if len(mantissa) > 1:
        mantissa = f"{mantissa[0]}.{mantissa[1:]}"
    sci = f"{'-' if sign else ''}{mantissa}e{exponent + len(digits) - 1}"
    return sci if len(sci) < len(plain) else plain


# -- reading ------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML that reads 1e4 and 1e-3 as numbers (YAML 1.1 wants 1.0e+4), as people write them."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def spec_error(origin: str, err: ValidationError) -> ConfigError:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return ConfigError(f"{origin}: unknown key '{where}'")
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"{origin}: {where}: {message}" if where else f"{origin}: {message}")


def read_yaml_file(path: Path, what: str) -> Any:
    try:  # is_file() too can fail: a name longer than the file system allows
        if not path.is_file():
            raise ConfigError(f"{what} not found: {path}")
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {what} {path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from None


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec file; problems raise a one-line :class:`ConfigError`."""
    path = Path(path)
    data = read_yaml_file(path, "study spec")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping (name, base, seeds, variants, ...)")
    return parse_spec(data, str(path))


def parse_spec(data: dict[str, Any], origin: str = "study spec") -> StudySpec:
    """Validate a spec given as a mapping."""
    try:
        return StudySpec.model_validate(data)
    except ValidationError as err:
        raise spec_error(origin, err) from None


# -- resolving ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One expanded variant: its name, every override on top of the base, its config."""

    name: str
    overrides: dict[str, Any]
    config: Config  # train.seeds holds all of the study's seeds
    preset: str | None = None  # the variant's own preset, in place of the base's

    def config_for(self, seeds: list[int], torch_threads: int | None = None) -> Config:
        """This variant's config for a group of seeds trained together."""
        data = self.config.model_dump()
        data["train"].update(seeds=list(seeds), torch_threads=torch_threads)
        return Config.model_validate(data)


@dataclass(frozen=True)
class Study:
    """A resolved spec: every variant's validated config, and the canonical spec."""

    name: str
    seeds: list[int]
    variants: list[Variant]
    canonical: dict[str, Any]

    @property
    def spec_hash(self) -> str:
        """SHA-256 of the canonical spec's JSON; equal hashes mean the same study."""
        return hashlib.sha256(canonical_json(self.canonical).encode()).hexdigest()

    @property
    def by_steps(self) -> bool:
        """Whether the budget counts env steps (else episodes)."""
        return "steps" in self.canonical

    @property
    def budget(self) -> int:
        """Episodes (or env steps) per seed."""
        return int(self.canonical["steps" if self.by_steps else "episodes"])

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def to_yaml(self) -> str:
        """The canonical spec as YAML: a spec file that resolves to this same study."""
        return yaml.safe_dump(self.canonical, sort_keys=False)


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config sections as dotted keys: {"agent": {"tau": 1}} -> {"agent.tau": 1}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and (value or _is_section(dotted)):
            out.update(_flatten(value, f"{dotted}."))  # an empty section sets nothing
        else:  # also {} under an unknown key or a value's key: apply_overrides refuses it
            out[dotted] = value
    return out


def _is_section(dotted: str) -> bool:
    """Whether a dotted key names a config section ("agent", "replay.window")."""
    section: type[BaseModel] | None = Config
    for part in dotted.split("."):
        field = section_fields(section).get(part) if section is not None else None
        if field is None:
            return False
        section, _ = _section_type(field.annotation)
    return section is not None


def _value_at(data: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def _normalized(overrides: dict[str, Any], config: Config) -> dict[str, Any]:
    """Each override as the config reads it (1e4 -> 10000), so equal studies hash equally."""
    dumped = config.model_dump(mode="json")
    return {key: _value_at(dumped, key) for key in overrides}


def base_overrides(base: BaseSpec, spec_dir: Path) -> dict[str, Any]:
    """The config file (seeds and threads dropped: the study sets them), then base.set."""
    layer: dict[str, Any] = {}
    if base.config is not None:
        path = spec_dir / base.config
        data = read_yaml_file(path, "base config file")
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of config sections")
        layer = _flatten(data or {})
        for key in ("train.seeds", "train.torch_threads"):
            layer.pop(key, None)
        for chosen, other in (("train.steps", "train.episodes"), ("train.episodes", "train.steps")):
            if layer.get(chosen) is not None:
                layer.setdefault(other, None)  # one budget: the file's, not a default's too
    return {**layer, **base.set}


def _validated(origin: str, base: dict[str, Any], overrides: dict[str, Any]) -> Config:
    try:
        return validate(apply_overrides(base, overrides))
    except ConfigError as err:
        raise ConfigError(f"{origin}: {err}") from None


def expand_variants(spec: StudySpec) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(name, own preset, overrides) of every variant: each listed variant x the axes x its
    own axes.

    A name is the variant's name, then the study's axis fragments, then its own, joined by
    ``-``: ``stratified-cap1e6-thr-0.5-good0.7``. Without listed variants, the axes alone
    name them; with neither, the one variant is called ``base``.
    """
    out = []
    for listed in spec.variants or [VariantSpec(name="base")]:
        keys = list(listed.set) + [a.key for a in spec.axes + listed.axes]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ConfigError(f"study variant '{listed.name}': '{twice[0]}' is set twice")
        axes = [a.labelled_values() for a in spec.axes + listed.axes]
        for combo in product(*axes):
            parts = [listed.name] if spec.variants else []
            parts += [fragment for fragment, _ in combo]
            overrides = dict(listed.set)
            for axis, (_, value) in zip(spec.axes + listed.axes, combo, strict=True):
                overrides[axis.key] = value
            out.append(("-".join(parts) or "base", listed.preset, overrides))
    return out


def resolve(spec: StudySpec, spec_dir: str | Path = ".") -> Study:
    """Expand and validate every variant; ``spec_dir`` anchors ``base.config``."""
    base_data = preset_dict(spec.base.preset) if spec.base.preset else {}
    base_set = base_overrides(spec.base, Path(spec_dir))
    base_config = _validated("study base", base_data, base_set)
    if spec.steps is not None or (spec.episodes is None and base_config.train.steps is not None):
        budget = {"steps": spec.steps or base_config.train.steps}
    else:
        budget = {"episodes": spec.episodes or base_config.train.episodes}
    for key in ("train.episodes", "train.steps"):
        base_set.pop(key, None)
    # Both budget keys: one set, the other cleared, whatever the base had.
    study_set = {"train.episodes": None, "train.steps": None, "train.seeds": spec.seeds}
    study_set |= {f"train.{k}": v for k, v in budget.items()}

    variants, seen = [], set()
    for name, preset, overrides in expand_variants(spec):
        if not NAME.fullmatch(name):
            raise ConfigError(
                f"study variant name '{name}' is not valid: use {NAME_RULE}; "
                "name the axis values with a mapping {name: value}"
            )
        if name in seen:
            raise ConfigError(f"duplicate variant name '{name}'")
        seen.add(name)
        origin = f"study variant '{name}'"
        try:
            data = base_data if preset is None else preset_dict(preset)
        except ConfigError as err:
            raise ConfigError(f"{origin}: {err}") from None
        config = _validated(origin, data, {**base_set, **overrides, **study_set})
        variants.append(Variant(name, _normalized(overrides, config), config, preset))
    canonical = {
        "name": spec.name,
        "base": {"preset": spec.base.preset, "set": _normalized(base_set, base_config)},
        "seeds": list(spec.seeds),
        **budget,
        "variants": [
            {"name": v.name, **({"preset": v.preset} if v.preset else {}), "set": v.overrides}
            for v in variants
        ],
    }
    return Study(spec.name, list(spec.seeds), variants, canonical)


def load_study(path: str | Path) -> Study:
    """Read, validate and resolve a spec file (``base.config`` is relative to it)."""
    path = Path(path)
    return resolve(load_spec(path), path.parent)
