"""Typed, validated configuration: presets, YAML files and ``--set dotted.key=value`` overrides.

A :class:`Config` is validated once, at the edge (CLI or Python API); code inside the
library trusts it. Every validation problem surfaces as a :class:`ConfigError` whose
message is one line that names the offending key.
"""

from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError


class ConfigError(ValueError):
    """Invalid user input: a bad key, type or value. The message is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class EnvConfig(_Section):
    """The gymnasium task."""

    id: str = Field("Pendulum-v1", description="gymnasium environment id with a Box action space")
    max_episode_steps: int | None = Field(
        None, gt=0, description="time limit; None keeps the environment's registered limit"
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
    updates_per_step: int = Field(1, ge=0, description="gradient updates per env step")
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
        for kind, params in _strategy_sections().items():
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


def section_fields(section: type[BaseModel]) -> dict[str, FieldInfo]:
    """The keys a config section holds, by name: its fields, and for ``replay`` one section
    per strategy with parameters (``replay.<kind>``), which the registry supplies."""
    fields = dict(section.model_fields)
    if issubclass(section, ReplayConfig):
        fields.update(
            (kind, FieldInfo.from_annotation(params))
            for kind, params in _strategy_sections().items()
        )
    return fields


def _replay_params() -> dict[str, type[BaseModel] | None]:
    """Each registered replay kind, in listing order, with its ``Params`` (None: it has none)."""
    # imported here: the replay package pulls in torch, which the CLI loads only to train
    from ddpglab.replay.registry import strategies

    return {kind: cls.Params for kind, cls in strategies().items()}


def _strategy_sections() -> dict[str, type[BaseModel]]:
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
    device: str = Field(
        "cpu",
        description="where networks, optimiser state and stored transitions live: cpu, "
        "cuda or cuda:N",
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
        return self


def preset_names() -> list[str]:
    """Names of the presets shipped in ``ddpglab/presets``."""
    files = resources.files("ddpglab").joinpath("presets").iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin}: not valid YAML ({str(err).splitlines()[0]})") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{origin}: not valid YAML (nested too deeply)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of config sections")
    return data


def preset_dict(name: str) -> dict[str, Any]:
    """The raw mapping of a shipped preset."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; choose from {', '.join(preset_names())}")
    text = resources.files("ddpglab").joinpath("presets", f"{name}.yaml").read_text()
    return _read_yaml(text, f"preset {name}")


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
    _one_budget_wins(out, {k.removeprefix("train."): v for k, v in overrides.items()})
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        model: type[BaseModel] = Config
        node = out
        for depth, part in enumerate(parts):
            fields = section_fields(model)
            field = fields.get(part)
            if field is None:
                where = ".".join(parts[:depth]) or "the config"
                known = ", ".join(fields)
                raise ConfigError(f"unknown config key '{dotted}' ({where} has: {known})")
            last = depth == len(parts) - 1
            section, optional = section_type(field.annotation)
            if last:
                if section is not None and not (optional and value is None):
                    raise ConfigError(f"'{dotted}' is a section; set one of its keys")
                node[part] = value
            else:
                if section is None:
                    raise ConfigError(f"unknown config key '{dotted}' ('{part}' has no sub-keys)")
                if node.get(part) is None:  # an optional section switched on by a key
                    node[part] = {}
                node = node[part]
                if not isinstance(node, dict):
                    raise ConfigError(f"config section '{part}' must be a mapping of keys")
                model = section
    return out


def section_type(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The config section a field holds, if any, and whether it may be None (off)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = get_args(annotation)
    sections = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(sections) == 1 and type(None) in args:
        return sections[0], True
    return None, False


def _one_budget_wins(data: dict[str, Any], train_layer: dict[str, Any]) -> None:
    """Episodes and steps are alternative budgets: a layer that sets one clears the other."""
    if data.get("train") is None:  # no preset below: the default budget must yield too
        data["train"] = {}
    train = data["train"]
    if not isinstance(train, dict):
        return
    for chosen, other in (("steps", "episodes"), ("episodes", "steps")):
        if train_layer.get(chosen) is not None and other not in train_layer:
            train[other] = None


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    # a section validated inside a validator carries its own location on ("within")
    within = first.get("ctx", {}).get("within", ())
    where = ".".join(str(p) for p in (*first["loc"], *within))
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"unknown config key '{where}'"
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
        try:  # is_file() too can fail: a name longer than the file system allows
            if not path.is_file():
                raise ConfigError(f"config file not found: {path}")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config file {path}: {err}") from None
        layer = _read_yaml(text, str(path))
        if isinstance(layer.get("train"), dict):
            _one_budget_wins(data, layer["train"])
        for section, values in layer.items():
            if isinstance(values, dict) and isinstance(data.get(section), dict):
                data[section] = {**data[section], **values}
            else:
                data[section] = values
    return validate(apply_overrides(data, overrides or {}))


def same_run_config(
    saved: dict[str, Any], current: dict[str, Any], budget_may_grow: bool = False
) -> bool:
    """Whether a saved state's config is the current one, up to the torch thread count, the
    device and keep_state (which change speed or what is kept, not what is trained: a run
    may resume elsewhere); with ``budget_may_grow``, also up to a larger budget of the same
    kind (a finished run continued, see :func:`budget_grew`)."""

    def comparable(config: dict[str, Any]) -> dict[str, Any]:
        ignored = ("torch_threads", "device", "keep_state")
        if budget_may_grow:
            ignored += BUDGETS
        return {**config, "train": {**config["train"], **dict.fromkeys(ignored)}}

    if budget_may_grow and not (
        all(saved["train"].get(k) == current["train"].get(k) for k in BUDGETS)
        or budget_grew(saved, current)
    ):
        return False
    return comparable(saved) == comparable(current)


#: The two kinds of training budget, per member: one of them is set.
BUDGETS = ("episodes", "steps")


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
