"""A study spec expanded: every variant's validated config, and the canonical spec.

Every expanded variant is validated as a full :class:`~ddpglab.config.Config` when the
spec is resolved, so a bad variant stops the study before any run starts.

The *canonical* form of a spec is itself a spec: the config file folded into
``base.set``, the seeds listed, the budget explicit and the variants listed with every
override they get. Its hash identifies the study, so a changed spec is noticed on resume.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import yaml

from ddpglab.config import (
    Config,
    ConfigError,
    SpecLoader,
    apply_overrides,
    cleared_budgets,
    flatten,
    preset_dict,
    read_yaml_file,
    validate,
    value_at,
    yaml_mapping,
)
from ddpglab.study.spec import (
    NAME,
    NAME_RULE,
    BaseSpec,
    StudySpec,
    VariantSpec,
    load_spec,
)


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


def _normalized(overrides: dict[str, Any], config: Config) -> dict[str, Any]:
    """Each override as the config reads it (1e4 -> 10000), so equal studies hash equally."""
    dumped = config.model_dump(mode="json")
    return {key: value_at(dumped, key) for key in overrides}


def base_overrides(base: BaseSpec, spec_dir: Path) -> dict[str, Any]:
    """The config file (seeds and threads dropped: the study sets them), then base.set."""
    layer: dict[str, Any] = {}
    if base.config is not None:
        path = spec_dir / base.config
        data = read_yaml_file(path, "base config file", SpecLoader)
        layer = flatten(yaml_mapping(data, str(path), "of config sections"))
        for key in ("train.seeds", "train.torch_threads"):
            layer.pop(key, None)
        # one budget: the file's, not a default's too
        train_layer = {
            k.removeprefix("train."): v for k, v in layer.items() if k.startswith("train.")
        }
        layer.update({f"train.{k}": v for k, v in cleared_budgets(train_layer).items()})
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
        keys = list(listed.set) + [k for a in spec.axes + listed.axes for k in a.set_keys()]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ConfigError(f"study variant '{listed.name}': '{twice[0]}' is set twice")
        axes = [a.labelled_overrides() for a in spec.axes + listed.axes]
        for combo in product(*axes):
            parts = [listed.name] if spec.variants else []
            parts += [fragment for fragment, _ in combo]
            overrides = dict(listed.set)
            for _, axis_overrides in combo:
                overrides.update(axis_overrides)
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
    study_budget = {**budget, **cleared_budgets(budget)}
    study_set = {f"train.{k}": study_budget[k] for k in ("episodes", "steps")}
    study_set["train.seeds"] = spec.seeds

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
