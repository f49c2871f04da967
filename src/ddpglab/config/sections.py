"""Config sections: the typed, validated pydantic models a :class:`Config` is made of.

A :class:`Config` is validated once, at the edge (CLI or Python API); code inside the
library trusts it. Every validation problem surfaces as a :class:`ConfigError` whose
message is one line that names the offending key. Reading, overriding and loading
configs is in :mod:`ddpglab.config.loading` and :mod:`ddpglab.config.overrides`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ddpglab.strict_model import StrictModel


class _Section(StrictModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


#: gymnasium.make's own keywords, which ddpglab sets itself: not env.kwargs.
GYM_MAKE_OPTIONS = ("max_episode_steps", "disable_env_checker", "render_mode")


class EnvConfig(_Section):
    """The gymnasium task."""

    id: str = Field("Pendulum-v1", description="gymnasium environment id with a Box action space")
    max_episode_steps: int | None = Field(
        None, gt=0, description="time limit; None keeps the environment's registered limit"
    )
    action_bounds: tuple[float | list[float], float | list[float]] | None = Field(
        None,
        description="[low, high] the policy's [-1, 1] is rescaled to, each a number (every "
        "action dimension) or a list (one per dimension), inside the env's Box; None: the "
        "env's Box",
    )
    kwargs: dict[str, JsonValue] = Field(
        {}, description="keyword arguments of gymnasium.make(id, **kwargs): the env's own options"
    )

    @field_validator("action_bounds")
    @classmethod
    def _low_below_high(cls, bounds: tuple | None) -> tuple | None:
        if bounds is None:
            return bounds
        low, high = bounds
        sizes = {len(b) for b in bounds if isinstance(b, list)}
        if len(sizes) > 1:
            raise ValueError("low and high lists must have the same length")
        if 0 in sizes:
            raise ValueError("a list of bounds needs one entry per action dimension")
        n = sizes.pop() if sizes else 1
        lows = low if isinstance(low, list) else [low] * n
        highs = high if isinstance(high, list) else [high] * n
        if not all(lo < hi for lo, hi in zip(lows, highs, strict=True)):
            raise ValueError(f"need low < high in every dimension, got [{low}, {high}]")
        return bounds

    @field_validator("kwargs")
    @classmethod
    def _not_make_options(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        for name in GYM_MAKE_OPTIONS:
            if name in kwargs:
                raise ValueError(
                    f"'{name}' is not an env keyword here"
                    + (" (use env.max_episode_steps)" if name == "max_episode_steps" else "")
                )
        return kwargs


class PalConfig(_Section):
    """The prioritized approximation loss, PAL (Fujimoto, Meger & Precup 2020): the loss
    whose expected gradient under uniform sampling is that of the Huber loss under LAP
    sampling with the same alpha and min_priority (``replay.lap``)."""

    alpha: float = Field(0.4, ge=0, description="priority exponent of the LAP law PAL mimics")
    min_priority: float = Field(
        1.0, gt=0, description="m: the |TD error| below which PAL is m^alpha times the MSE"
    )


class AgentConfig(_Section):
    """DDPG networks, losses and optimisation, with the TD3 options (each off by default)."""

    hidden: list[int] = Field([256, 256], min_length=1, description="hidden layer widths")
    actor: Literal["mlp", "linear"] = Field(
        "mlp",
        description="mlp: tanh-bounded MLP; linear: mu(s) = s W, no bias or tanh "
        "(linear state feedback, as the LQR's optimal policy)",
    )
    critic: Literal["mlp", "quadratic"] = Field(
        "mlp",
        description="mlp: MLP on (s, a); quadratic: sum_{i<=j} w_ij z_i z_j + b, z = (s, a) "
        "(holds the LQR's Q exactly); linear and quadratic ignore hidden",
    )
    actor_lr: float = Field(1e-4, gt=0, description="Adam learning rate of the actor")
    critic_lr: float = Field(1e-3, gt=0, description="Adam learning rate of the critic")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor")
    tau: float = Field(1e-3, gt=0, le=1, description="soft target update rate")
    batch_size: int = Field(64, gt=0, description="minibatch size per member")
    updates_per_step: int | float = Field(
        1,
        ge=0,
        description="gradient updates per env step; a fraction spreads them (0.25: one "
        "every 4th step); replay volume is batch_size x updates_per_step",
    )
    learning_starts: int = Field(
        0,
        ge=0,
        description="env steps with uniform random actions before the policy acts; "
        "updates do not wait for it: they start once the buffer holds more than one batch",
    )
    final_layer_init: float | None = Field(
        None,
        gt=0,
        description="output layers drawn from U(-v, v) as in Lillicrap et al.; "
        "None keeps PyTorch's fan-in default",
    )
    max_grad_norm: float | None = Field(
        None,
        gt=0,
        description="clip each member's actor and critic gradients to this L2 norm "
        "(None: no clipping)",
    )
    twin_critics: bool = Field(
        False,
        description="TD3 clipped double-Q: two critics per member, the TD target takes "
        "the smaller of their target values",
    )
    target_noise: float = Field(
        0.0,
        ge=0,
        description="TD3 target policy smoothing: standard deviation of the clipped "
        "Gaussian noise added to the target action (0: off)",
    )
    target_noise_clip: float = Field(
        0.5, gt=0, description="the target smoothing noise is clipped to [-c, c]"
    )
    policy_delay: int = Field(
        1,
        ge=1,
        description="TD3 delayed updates: the actor and both targets are updated after "
        "every d-th critic update (1: after each)",
    )

    critic_loss: Literal["mse", "huber", "pal"] = Field(
        "mse",
        description="mse: mean squared TD error; huber: quadratic below huber_delta, linear "
        "beyond (meant with replay.kind=lap, huber_delta = its min_priority); pal: "
        "Fujimoto et al.'s PAL, LAP's expected gradient under uniform sampling (agent.pal)",
    )
    huber_delta: float = Field(
        1.0, gt=0, description="the |TD error| where the Huber loss turns from quadratic to linear"
    )
    pal: PalConfig = Field(default_factory=PalConfig, description="the PAL loss's parameters")

    @model_validator(mode="after")
    def _hidden_positive(self) -> AgentConfig:
        if any(h <= 0 for h in self.hidden):
            raise ValueError("agent.hidden: every width must be positive")
        return self


class NoiseConfig(_Section):
    """Exploration noise added to the actor's action in [-1, 1] before clipping."""

    kind: Literal["ou", "gaussian", "none"] = Field("ou", description="noise process")
    scale: float = Field(
        0.1, ge=0, description="OU: multiplier of the process; gaussian: standard deviation"
    )
    theta: float = Field(0.15, gt=0, le=1, description="OU mean-reversion rate per step")
    sigma: float = Field(0.2, ge=0, description="OU diffusion per step")
    mu: float = Field(0.0, description="OU long-run mean")


class WindowConfig(_Section):
    """Shrinking window: sample only the most recent window(f) transitions, f the share of
    the training budget spent (the 2023 study's "sample from more recent episodes")."""

    schedule: Literal["constant", "linear", "exponential"] = Field(
        "constant", description="constant: start; linear or exponential: from start to end"
    )
    start: int = Field(gt=0, description="window at the start of training, in transitions")
    end: int | None = Field(
        None, gt=0, description="window at the end of training (linear and exponential)"
    )

    @model_validator(mode="after")
    def _end_matches_schedule(self) -> WindowConfig:
        if self.schedule != "constant" and self.end is None:
            raise ValueError(f"a {self.schedule} schedule needs an end")
        if self.schedule == "constant" and self.end not in (None, self.start):
            raise ValueError("a constant schedule has no end different from start")
        return self


class ReplayConfig(_Section):
    """Replay buffer; ``kind`` selects the sampling strategy, whose own section configures it.

    The strategies and their sections come from the replay registry
    (:func:`ddpglab.replay.strategies`): ``replay.<kind>`` is validated by that strategy's
    ``Params`` and every strategy's section is kept, with its defaults, after the fields
    below (so a dumped config lists them all, and a run compares equal to its rerun). The
    registry is consulted inside the validators only: importing this module stays light.
    """

    # The strategy sections are the extras, each validated by its strategy's Params.
    model_config = ConfigDict(extra="allow")

    kind: str = Field("uniform", description="sampling strategy")
    capacity: int = Field(
        1_000_000, gt=0, description="transitions kept per member (per FIFO for stratified)"
    )
    n_step: int = Field(1, ge=1, description="rewards summed per transition (n-step returns)")
    window: WindowConfig | None = Field(
        None, description="shrinking window of recent transitions to sample; None: all"
    )
    combined: bool = Field(
        False,
        description="CER (Zhang & Sutton 2017): each batch holds the newest transition in "
        "place of one draw",
    )

    @field_validator("kind", mode="before")
    @classmethod
    def _registered_kind(cls, kind: Any) -> Any:
        kinds = list(_replay_params())
        if not (isinstance(kind, str) and kind in kinds):
            # worded and typed as pydantic words a Literal's refusal, as it was one
            quoted = [f"'{k}'" for k in kinds]
            expected = " or ".join(
                [", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted
            )
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": expected}
            )
        return kind

    @model_validator(mode="after")
    def _strategy_sections_valid(self) -> ReplayConfig:
        # Runs before _window_fits (validators run in the order defined): a bad section is
        # reported first, as a bad field would be.
        given = dict(self.__pydantic_extra__ or {})
        sections: dict[str, BaseModel] = {}
        for kind, params in strategy_sections().items():
            try:
                sections[kind] = params.model_validate(given.pop(kind, {}))
            except ValidationError as err:
                raise _nested_error(kind, err) from None
        for key in given:
            raise PydanticCustomError(
                "extra_forbidden", "Extra inputs are not permitted", {"within": (key,)}
            )
        self.__pydantic_extra__ = sections
        return self

    @model_validator(mode="after")
    def _window_fits(self) -> ReplayConfig:
        if self.window is not None:
            for name in ("start", "end"):
                size = getattr(self.window, name)
                if size is not None and size > self.capacity:
                    raise ValueError(
                        f"window.{name} ({size}) is larger than capacity ({self.capacity})"
                    )
        return self


def _replay_params() -> dict[str, type[BaseModel] | None]:
    """Each registered replay kind, in listing order, with its ``Params`` (None: it has none)."""
    # imported here: the replay package pulls in torch, which the CLI loads only to train
    from ddpglab.replay.registry import strategies

    return {kind: cls.Params for kind, cls in strategies().items()}


def strategy_sections() -> dict[str, type[BaseModel]]:
    """The ``replay.<kind>`` sections: each kind that has parameters, with its ``Params``."""
    return {kind: params for kind, params in _replay_params().items() if params is not None}


def _nested_error(kind: str, err: ValidationError) -> PydanticCustomError:
    """The first error of the ``replay.<kind>`` section, located inside it (``within``)."""
    first = err.errors()[0]
    context = {"reason": first["msg"], "within": (kind, *first["loc"])}
    if first["type"] == "model_type":  # not a mapping: named as the other sections are
        context["reason"] = (
            f"Input should be a valid dictionary or instance of {kind.capitalize()}Config"
        )
    return PydanticCustomError(first["type"], "{reason}", context)


#: How the update's matrix products run: fp32, or bf16 (inputs rounded to bfloat16,
#: products accumulated in fp32 by the kernel, results rounded to bfloat16).
Precision = Literal["fp32", "bf16"]


class TrainConfig(_Section):
    """Budget, seeds, evaluation and checkpoints."""

    seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] = Field(
        [0], min_length=1, description="one member per seed, each in [0, 2^32)"
    )
    episodes: int | None = Field(200, gt=0, description="episodes per member")
    steps: int | None = Field(None, gt=0, description="env steps per member (instead of episodes)")
    eval_every: int = Field(10, ge=0, description="evaluate every N episodes (0: only at the end)")
    eval_episodes: int = Field(5, gt=0, description="deterministic episodes per evaluation")
    checkpoint_every: int = Field(
        50, ge=0, description="save actor weights every N episodes (0: only at the end)"
    )
    state_every: int = Field(
        10,
        ge=0,
        description="save the full training state, to resume from, every N episodes per "
        "member (0: only when stopped by SIGINT or SIGTERM)",
    )
    keep_state: bool = Field(
        False,
        description="keep the final full state (state.npz) when the run ends, so that "
        "`train --resume --episodes N` can train it further to a larger budget",
    )
    torch_threads: int | None = Field(None, gt=0, description="None: one thread per core")
    precision: Precision = Field(
        "fp32",
        description="the update's matrix products: fp32, or bf16 (mixed precision: weights, "
        "Adam state, targets and losses stay fp32; acting and evaluation run in fp32)",
    )
    device: str = Field(
        "cpu",
        description="where networks, optimiser state and stored transitions live: cpu, "
        "cuda or cuda:N",
    )
    finite_check_every: int | None = Field(
        None,
        gt=0,
        description="look at each member's critic loss, actor loss and Q every N updates "
        "(unset: 1 on the CPU, 100 on a GPU, where each look waits for the device); also at "
        "every episode end, state save and non-finite action. With N > 1 a member whose "
        "numbers went NaN or Inf is failed up to N-1 updates later, with the message of its "
        "first non-finite update; in between it trains and steps only its own (broken) "
        "networks, env and buffer, and nothing of it reaches the store",
    )

    @model_validator(mode="after")
    def _one_budget(self) -> TrainConfig:
        if (self.episodes is None) == (self.steps is None):
            raise ValueError("train: set exactly one of episodes and steps")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("train.seeds: seeds must be distinct")
        return self

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            raise ValueError(f"expected cpu, cuda or cuda:N, got '{device}'")
        return device


class Config(_Section):
    """A complete, validated ddpglab configuration."""

    env: EnvConfig = EnvConfig()
    agent: AgentConfig = AgentConfig()
    noise: NoiseConfig = NoiseConfig()
    # a factory: a ReplayConfig consults the replay registry, which only validation may load
    replay: ReplayConfig = Field(default_factory=ReplayConfig)
    train: TrainConfig = TrainConfig()

    @model_validator(mode="after")
    def _batch_fits(self) -> Config:
        if self.agent.batch_size > self.replay.capacity:
            raise ValueError(
                f"agent.batch_size ({self.agent.batch_size}) is larger than "
                f"replay.capacity ({self.replay.capacity})"
            )
        # the selected strategy's own limits on the batch (ERE's c_min, say)
        params = getattr(self.replay, self.replay.kind, None)
        problem = None if params is None else params.batch_size_problem(self.agent.batch_size)
        if problem is not None:
            raise ValueError(problem)
        return self
