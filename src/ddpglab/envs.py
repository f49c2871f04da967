"""Environments: ``make_env`` with checks, action rescaling, and K member envs in lockstep."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from ddpglab.config import ConfigError
from ddpglab.config.errors import first_line

# ddpglab's own envs, registered on import so that make_env (and gymnasium.make) find them.
if "ddpglab/LQR-v0" not in gym.registry:
    gym.register(
        "ddpglab/LQR-v0", entry_point="ddpglab.theory.lqr_env:LQREnv", max_episode_steps=100
    )


def is_mujoco_env(env_id: str) -> bool:
    """Whether ``env_id`` names one of gymnasium's MuJoCo envs (Hopper-v5, ...), read from its
    registered entry point without importing it; False for an id gymnasium does not know."""
    try:
        entry_point = gym.spec(env_id).entry_point
    except (gym.error.Error, ValueError, TypeError):
        return False
    module = entry_point if isinstance(entry_point, str) else entry_point.__module__
    return module.startswith("gymnasium.envs.mujoco")


def load_mujoco() -> None:
    """Import MuJoCo for one of its envs, refusing in one line where it cannot be imported,
    and send its C-level warnings through Python's ``warnings``.

    MuJoCo prints warnings straight to stderr, and each fresh env instance (one per
    episode, see :class:`MemberEnvs`) compiles its model again: gymnasium's HalfCheetah-v5
    model uses an attribute MuJoCo 3.x and later flag as deprecated, which would print a
    line per training episode. Python's default filter shows a repeated warning once.
    """
    try:
        import mujoco
    except ImportError:
        raise ConfigError(
            "MuJoCo envs need the mujoco extra: pip install 'ddpglab[mujoco]'"
        ) from None
    except Exception as err:  # its import loads the OpenGL backend that MUJOCO_GL names
        backend = os.environ.get("MUJOCO_GL")
        raise ConfigError(
            f"MuJoCo cannot be imported with MUJOCO_GL={backend!r} ({first_line(err)}); "
            "unset MUJOCO_GL or install that backend's system library"
        ) from None
    mujoco.set_mju_user_warning(_mujoco_warning)


def _mujoco_warning(message: str) -> None:
    warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


def make_env(
    env_id: str,
    max_episode_steps: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    **options: Any,
) -> gym.Env:
    """``gymnasium.make`` with ddpglab's requirements checked, one-line errors on bad input.

    ``env_kwargs`` (``env.kwargs``) are the env's own keyword arguments; ``options`` are
    gymnasium's (``render_mode``). The env must have a flat Box observation space and a
    bounded Box action space.
    """
    # gymnasium reads "module:name" as "import module, then make name"; it fails with
    # ValueError or TypeError on more colons, an empty or a relative module name.
    module, colon, _ = env_id.rpartition(":")
    if colon and (not module or ":" in module or module.startswith(".")):
        raise ConfigError(f"malformed env id '{env_id}': expected [module:]name-vN")
    env_kwargs = dict(env_kwargs or {})
    if not colon and is_mujoco_env(env_id):
        load_mujoco()
    try:
        env = gym.make(env_id, max_episode_steps=max_episode_steps, **env_kwargs, **options)
    except gym.error.Error as err:
        raise ConfigError(f"cannot make env '{env_id}': {first_line(err)}") from None
    except ImportError as err:
        raise ConfigError(f"env '{env_id}' needs a missing package: {err}") from None
    except Exception as err:
        # With env.kwargs, whatever the constructor raises is the user's value refused: a
        # keyword it does not take (TypeError), a value it cannot use (ValueError, an
        # assertion, a division by zero, a file it cannot open). Without them such an error
        # is the env's own bug and keeps its traceback.
        if not env_kwargs:
            raise
        raise ConfigError(kwargs_refused(env_id, env_kwargs, err)) from None
    if not isinstance(env.action_space, gym.spaces.Box):
        env.close()
        raise ConfigError(
            f"env '{env_id}' has a {type(env.action_space).__name__} action space; "
            "DDPG needs continuous (Box) actions"
        )
    if len(env.action_space.shape) != 1:
        env.close()
        raise ConfigError(f"env '{env_id}' needs a flat Box action space, got {env.action_space}")
    if not np.all(np.isfinite(env.action_space.low) & np.isfinite(env.action_space.high)):
        env.close()
        raise ConfigError(f"env '{env_id}' has unbounded actions; DDPG needs a bounded Box")
    obs_space = env.observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        env.close()
        raise ConfigError(f"env '{env_id}' needs a flat Box observation space, got {obs_space}")
    if env.spec is None or env.spec.max_episode_steps is None:
        env.close()
        raise ConfigError(
            f"env '{env_id}' has no time limit; set env.max_episode_steps so episodes end"
        )
    return env


def rescale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map an action from the agent's cube [-1, 1] onto the env's Box [low, high].

    a_env = low + (a + 1) / 2 * (high - low)
    """
    return low + (action + 1.0) * 0.5 * (high - low)


def kwargs_refused(env_id: str, env_kwargs: Mapping[str, Any], err: Exception) -> str:
    """The one line that says ``env.kwargs`` did not suit the env, and why."""
    reason = first_line(err)
    return f"env.kwargs {dict(env_kwargs)} refused by '{env_id}': {reason}"


def action_bounds(
    space: gym.spaces.Box, requested: Sequence[float | Sequence[float]] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The bounds that actions in [-1, 1] are rescaled to, as float32 (the actor's precision).

    ``requested`` is ``env.action_bounds``: [low, high], each a number for every action
    dimension or a list of one per dimension; None takes the Box's own bounds. Training,
    evaluation, ``enjoy`` and ``animate`` all decide their bounds here, so each plays the
    same actions.

    Raises:
        ConfigError: a list of the wrong length, or bounds outside the Box (the env would
            clip such actions, and the policy would not get the torque it asked for).
    """
    box_low, box_high = space.low.astype(np.float32), space.high.astype(np.float32)
    if requested is None:
        return box_low, box_high
    bounds = []
    for name, value in zip(("low", "high"), requested, strict=True):
        array = np.asarray(value, dtype=np.float32)
        if array.ndim == 1 and array.shape != box_low.shape:
            raise ConfigError(
                f"env.action_bounds: {name} has {array.size} entries, the env's actions "
                f"{box_low.size}"
            )
        bounds.append(np.broadcast_to(array, box_low.shape).copy())
    low, high = bounds
    if np.any(low < box_low) or np.any(high > box_high):
        raise ConfigError(
            f"env.action_bounds [{_show(requested[0])}, {_show(requested[1])}] lie outside the "
            f"env's action Box [{_show(box_low)}, {_show(box_high)}]"
        )
    return low, high


def _show(bound: float | Sequence[float] | np.ndarray) -> str:
    """A bound as a config writes it: one number when every dimension shares it, else a list."""
    values = np.atleast_1d(np.asarray(bound, dtype=np.float64))
    if np.all(values == values[0]):
        return f"{values[0]:g}"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


class MemberEnvs:
    """One env per member, stepped in lockstep; each member resets its own env when it ends.

    Member k's env is seeded with ``seeds[k]`` on its first reset (and its action space
    too), so its trajectory does not depend on which other members run beside it.

    Every episode runs in a fresh env instance that carries on the previous one's RNG: an
    episode then depends only on its RNG state and its actions, never on what earlier
    episodes left inside the simulator (Box2D reuses one world across resets, and that
    history changes the rounding, then the course, of later episodes).

    To be restored mid-episode (:meth:`state_dict`), each member remembers how its current
    episode began (its env's RNG state before the reset, or the seed of the first one) and
    the actions taken since: a fresh env reset from that RNG state replays to the same
    state, which needs no access to its internals (Box2D bodies cannot be copied).

    ``env_kwargs`` go to every ``gymnasium.make`` (``env.kwargs``); ``bounds``
    (``env.action_bounds``) are what actions in [-1, 1] are rescaled to (see
    :func:`action_bounds`).
    """

    def __init__(
        self,
        env_id: str,
        seeds: list[int],
        max_episode_steps: int | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        bounds: Sequence[float | Sequence[float]] | None = None,
    ):
        self.env_id, self.max_episode_steps = env_id, max_episode_steps
        self.env_kwargs = dict(env_kwargs or {})
        self.envs = [make_env(env_id, max_episode_steps, self.env_kwargs) for _ in seeds]
        space = self.envs[0].action_space
        try:
            self.low, self.high = action_bounds(space, bounds)
        except ConfigError:
            self.close()
            raise
        self.obs_dim = self.envs[0].observation_space.shape[0]
        self.act_dim = space.shape[0]
        self.seeds = list(seeds)
        self.obs = np.zeros((len(seeds), self.obs_dim), dtype=np.float32)
        for k, (env, seed) in enumerate(zip(self.envs, seeds, strict=True)):
            env.action_space.seed(seed)
            self.obs[k] = env.reset(seed=seed)[0]
        max_steps = self.envs[0].spec.max_episode_steps
        self.episode_actions = np.zeros((len(seeds), max_steps, self.act_dim), np.float32)
        self.episode_steps = np.zeros(len(seeds), dtype=np.int64)
        self._members = np.arange(len(seeds))
        # Per member: its env's RNG state just before the reset that began the current
        # episode; None while that reset is the seeded first one.
        self.reset_rng_states: list[dict[str, Any] | None] = [None] * len(seeds)

    def __len__(self) -> int:
        return len(self.envs)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every member with ``actions`` in [-1, 1], shape (K, act_dim).

        Returns ``(obs, next_obs, rewards, terminated, truncated)``, where ``obs`` is what
        each member observes next: ``next_obs`` itself, or a fresh reset after an episode end.
        """
        env_actions = rescale_action(actions, self.low, self.high)
        k_members = len(self.envs)
        next_obs = np.empty((k_members, self.obs_dim), dtype=np.float32)
        rewards = np.empty(k_members, dtype=np.float32)
        terminated = np.empty(k_members, dtype=bool)
        truncated = np.empty(k_members, dtype=bool)
        for k, env in enumerate(self.envs):
            next_obs[k], rewards[k], terminated[k], truncated[k], _ = env.step(env_actions[k])
        self.episode_actions[self._members, self.episode_steps] = actions
        self.episode_steps += 1
        self.obs = next_obs.copy()
        for k in np.flatnonzero(terminated | truncated):
            rng_state = self.envs[k].unwrapped.np_random.bit_generator.state
            self.reset_rng_states[k] = rng_state
            self.obs[k] = self._begin_episode(k, rng_state)
            self.episode_steps[k] = 0
        return self.obs, next_obs, rewards, terminated, truncated

    def _begin_episode(self, k: int, rng_state: dict[str, Any] | None) -> np.ndarray:
        """Replace member k's env by a fresh instance reset from ``rng_state`` (None: the
        member's seed, as its first episode); returns the first observation."""
        self.envs[k].close()
        env = self.envs[k] = make_env(self.env_id, self.max_episode_steps, self.env_kwargs)
        if rng_state is None:
            env.action_space.seed(self.seeds[k])
            return env.reset(seed=self.seeds[k])[0]
        env.unwrapped.np_random.bit_generator.state = rng_state
        return env.reset()[0]

    def state_dict(self) -> dict[str, Any]:
        """How each member's current episode began and the actions taken since."""
        return {
            "obs": self.obs,
            "reset_rng_states": list(self.reset_rng_states),
            "episode_actions": [
                self.episode_actions[k, :n] for k, n in enumerate(self.episode_steps)
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay each member's current episode into its env, up to the saved step.

        Raises:
            RuntimeError: an env did not come back to the saved observation (it is not
                deterministic given its RNG), so the run cannot continue exactly.
        """
        for k in range(len(self.envs)):
            rng_state = state["reset_rng_states"][k]
            obs = self._begin_episode(k, rng_state)
            actions = np.asarray(state["episode_actions"][k], dtype=np.float32)
            for action in rescale_action(actions, self.low, self.high):
                obs = self.envs[k].step(action)[0]
            # The trainer zeroes a failed member's non-finite observation in place.
            replayed = np.asarray(obs, dtype=np.float32)
            replayed = np.nan_to_num(replayed, nan=0.0, posinf=0.0, neginf=0.0)
            if not np.array_equal(replayed, state["obs"][k]):
                raise RuntimeError(
                    f"env {self.env_id} did not replay to its saved state (member {k}): "
                    "it is not deterministic given its RNG, so the run cannot resume exactly"
                )
            self.reset_rng_states[k] = rng_state
            n = len(actions)
            self.episode_actions[k, :n] = actions
            self.episode_steps[k] = n
        self.obs[...] = state["obs"]

    def close(self) -> None:
        for env in self.envs:
            env.close()
