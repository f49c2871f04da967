"""Search specs: a base config, an objective, a budget and a prior per searched parameter.

Each prior is one small class whose ``suggest`` draws the parameter through an Optuna
trial, so every sampler (evolutionary, CMA-ES, TPE, random) sees the same space. A
lognormal prior has no Optuna distribution of its own: it is searched as its quantile
u ~ U(q, 1 - q) and mapped through the normal's inverse CDF, x = exp(mu + sigma Phi^-1(u)),
so a sampler that draws uniformly (every first generation) draws x from the prior itself.
"""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ddpglab.config import (
    Config,
    ConfigError,
    SpecLoader,
    apply_overrides,
    preset_dict,
    read_yaml_file,
    validate,
    yaml_mapping,
)
from ddpglab.study.spec import (
    NAME,
    NAME_RULE,
    SEED_COUNT_OR_LIST,
    BaseSpec,
    StrictSpec,
    spec_error,
)
from ddpglab.study.variants import base_overrides

#: Keys a search decides itself: its seeds and budget, and each trial's thread count.
SEARCH_KEYS = ("train.seeds", "train.episodes", "train.steps", "train.torch_threads")

#: What a run writes along the way, not what it learns. The trials set these for speed
#: (``state_every`` 0 here, the others often in the spec's ``base.set``); the best config
#: takes them from the base preset (or the defaults), so that training the winner
#: evaluates, keeps checkpoints and can be resumed like any run.
OUTPUT_CADENCE_KEYS = (
    "train.eval_every",
    "train.eval_episodes",
    "train.checkpoint_every",
    "train.state_every",
)

#: A lognormal quantile stays in [q, 1 - q]: x within mu +- 3.09 sigma in log space.
LOGNORMAL_TAIL = 1e-3


class LogUniform(StrictSpec):
    """log x ~ U(log low, log high): for positive scale parameters (rates, tau, beta)."""

    prior: Literal["loguniform"]
    low: float = Field(gt=0)
    high: float = Field(gt=0)

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)


class LogNormal(StrictSpec):
    """log x ~ N(mu, sigma^2), truncated to mu +- 3.09 sigma; mu and sigma in log space."""

    prior: Literal["lognormal"]
    mu: float = 0.0
    sigma: float = Field(1.0, gt=0)

    def suggest(self, trial: Any, name: str) -> float:
        from scipy.special import ndtri

        u = trial.suggest_float(f"{name}:quantile", LOGNORMAL_TAIL, 1 - LOGNORMAL_TAIL)
        return float(math.exp(self.mu + self.sigma * float(ndtri(u))))


class Uniform(StrictSpec):
    """x ~ U(low, high)."""

    prior: Literal["uniform"]
    low: float
    high: float

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)


class IntRange(StrictSpec):
    """x ~ U{low, ..., high}, or log-uniform over the integers with ``log``."""

    prior: Literal["int"]
    low: int
    high: int
    log: bool = False

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)


class Categorical(StrictSpec):
    """x ~ U(choices): a replay kind, a buffer capacity, a network shape."""

    prior: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)

    def suggest(self, trial: Any, name: str) -> Any:
        # Optuna stores choices as None, bool, int, float or str: a list goes as its YAML.
        options = [_as_choice(c) for c in self.choices]
        return _from_choice(trial.suggest_categorical(name, options))


def _as_choice(value: Any) -> Any:
    import json

    return json.dumps(value) if isinstance(value, list | dict) else value


def _from_choice(value: Any) -> Any:
    import json

    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


Prior = Annotated[
    LogUniform | LogNormal | Uniform | IntRange | Categorical, Field(discriminator="prior")
]


class Objective(StrictSpec):
    """What a trial scores: the mean over its seeds of each seed's last-k-episode mean return."""

    seeds: list[Annotated[int, Field(ge=0)]] = Field(
        [0, 1, 2], min_length=1, description="a count S (seeds 0..S-1) or a list"
    )
    last: int = Field(20, gt=0, description="k: episodes at the end of training averaged")
    report_every: int = Field(
        10, gt=0, description="episodes between intermediate scores (for pruning)"
    )

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_or_list(cls, seeds: Any) -> Any:
        if not isinstance(seeds, int | list):
            raise ValueError(SEED_COUNT_OR_LIST.format(seeds))
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if not 1 <= seeds <= 1000:
                raise ValueError("a seed count must be between 1 and 1000")
            return list(range(seeds))
        return seeds


class SearchSpec(StrictSpec):
    """A hyperparameter search: base config, objective, budget, sampler and space."""

    name: str
    base: BaseSpec = BaseSpec()
    objective: Objective = Objective()
    trials: int = Field(20, gt=0, le=100_000, description="trials in the whole search")
    episodes: int | None = Field(None, gt=0, description="episodes per trial (default: base's)")
    sampler: Literal["genetic", "cmaes", "tpe", "random"] = Field(
        "genetic",
        description="genetic: Optuna's NSGA-II (tournament selection of parents); "
        "cmaes: CMA-ES; tpe; random",
    )
    population: int = Field(8, ge=2, description="genetic: trials per generation")
    pruner: Literal["median", "none"] = Field(
        "none",
        description="median: stop a trial whose score after prune_after episodes is below "
        "the median of the others' at that episode (not with the genetic sampler)",
    )
    prune_after: int | None = Field(
        None, gt=0, description="episodes before pruning may stop a trial (default: half)"
    )
    seed: int = Field(0, ge=0, description="seed of the sampler")
    space: dict[str, Prior] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not NAME.fullmatch(name):
            raise ValueError(f"'{name}' is not a valid name: use {NAME_RULE}")
        return name

    @field_validator("space")
    @classmethod
    def _ranges(cls, space: dict[str, Any]) -> dict[str, Any]:
        for key, prior in space.items():
            if key in SEARCH_KEYS:
                raise ValueError(f"'{key}' is set by the search itself")
            low, high = getattr(prior, "low", None), getattr(prior, "high", None)
            if low is not None and high is not None and not low < high:
                raise ValueError(f"{key}: low ({low}) must be below high ({high})")
            if isinstance(prior, IntRange) and prior.log and prior.low < 1:
                raise ValueError(f"{key}: a log int range needs low >= 1")
        return space

    @model_validator(mode="after")
    def _checks(self) -> SearchSpec:
        if self.prune_after is not None and self.episodes and self.prune_after > self.episodes:
            raise ValueError("prune_after is longer than a trial")
        if self.sampler == "genetic" and self.pruner == "median":
            # NSGA-II breeds its next generation from complete trials only, and a pruned
            # trial never completes: with most trials pruned it would stay a random search.
            raise ValueError(
                "the genetic sampler breeds from complete trials only, and pruned trials "
                "never complete: use pruner: none with it, or another sampler"
            )
        return self


class Search:
    """A resolved search: the spec, the base config data and the per-trial budget."""

    def __init__(self, spec: SearchSpec, base_data: dict[str, Any], base_set: dict[str, Any]):
        self.spec = spec
        self._base_data, self._base_set = base_data, base_set
        base = validate(apply_overrides(base_data, base_set))
        self.episodes = spec.episodes or base.train.episodes
        if self.episodes is None:
            raise ConfigError("search: the base config counts steps; give episodes per trial")
        self.prune_after = spec.prune_after or max(1, self.episodes // 2)
        if self.prune_after > self.episodes:
            raise ConfigError(
                f"search: prune_after ({self.prune_after}) is longer than a trial "
                f"({self.episodes} episodes)"
            )

    def config(self, params: dict[str, Any], torch_threads: int | None = None) -> Config:
        """The trial config: base, then the searched ``params``, then seeds and budget."""
        fixed = {
            "train.seeds": self.spec.objective.seeds,
            "train.episodes": self.episodes,
            "train.steps": None,
            "train.torch_threads": torch_threads,
            "train.state_every": 0,
        }
        return validate(apply_overrides(self._base_data, {**self._base_set, **params, **fixed}))

    def best_config(self, params: dict[str, Any]) -> Config:
        """The config to train a winner with: the trial config of ``params``, but with the
        base preset's output cadence (:data:`OUTPUT_CADENCE_KEYS`) instead of the trials'."""
        base_set = {k: v for k, v in self._base_set.items() if k not in OUTPUT_CADENCE_KEYS}
        fixed = {
            "train.seeds": self.spec.objective.seeds,
            "train.episodes": self.episodes,
            "train.steps": None,
        }
        return validate(apply_overrides(self._base_data, {**base_set, **params, **fixed}))

    def check_space(self) -> None:
        """Every searched key must be a config key that takes every value its prior can
        draw (checked at the values :func:`_corners` gives)."""
        for key, prior in self.spec.space.items():
            for value in _corners(prior):
                try:
                    self.config({key: value})
                except ConfigError as err:
                    raise ConfigError(f"search space '{key}': {err}") from None

    def canonical(self) -> dict[str, Any]:
        """The spec as data, budget explicit: equal searches have equal canonical forms."""
        data = self.spec.model_dump(mode="json")
        data["episodes"] = self.episodes
        data["prune_after"] = self.prune_after
        data["base"]["set"] = dict(self._base_set)
        data["base"].pop("config", None)
        return data


def _corners(prior: Any) -> list[Any]:
    """Values that stand for every draw of ``prior`` in the config's checks: its choices,
    its ends (a lognormal's truncation points), and for a float range also a value just
    above ``low``, which an integer key refuses as any fractional draw would be."""
    if isinstance(prior, Categorical):
        return list(prior.choices)
    if isinstance(prior, LogNormal):
        reach = prior.sigma * NormalDist().inv_cdf(1 - LOGNORMAL_TAIL)
        return [math.exp(prior.mu - reach), math.exp(prior.mu + reach)]
    if isinstance(prior, IntRange):
        return [prior.low, prior.high]
    return [prior.low, math.nextafter(prior.low, prior.high), prior.high]


def load_search(path: str | Path, trials: int | None = None, episodes: int | None = None) -> Search:
    """Read, validate and resolve a search spec; ``trials`` and ``episodes`` override it."""
    path = Path(path)
    data = read_yaml_file(path, "search spec", SpecLoader)
    data = yaml_mapping(data, str(path), "(name, base, objective, space, ...)", empty=False)
    try:
        spec = SearchSpec.model_validate(data)
        updates = {k: v for k, v in (("trials", trials), ("episodes", episodes)) if v is not None}
        spec = SearchSpec.model_validate({**spec.model_dump(), **updates})
    except ValidationError as err:
        raise spec_error(str(path), err) from None
    base_data = preset_dict(spec.base.preset) if spec.base.preset else {}
    base_set = base_overrides(spec.base, path.parent)
    try:
        search = Search(spec, base_data, base_set)
    except ConfigError as err:
        raise ConfigError(f"search base: {err}") from None
    last = spec.objective.last
    if last > search.episodes:  # it would silently score fewer episodes than it says
        trial = f"{search.episodes} episode" + ("s" if search.episodes > 1 else "")
        raise ConfigError(
            f"{path}: objective.last ({last}) is longer than a trial ({trial}); "
            "lower objective.last or give more episodes"
        )
    search.check_space()
    return search
