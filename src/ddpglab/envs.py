"""Environments: ``make_env`` with checks, action rescaling, and K member envs in lockstep."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from ddpglab.config import ConfigError

# ddpglab's own envs, registered on import so that make_env (and gymnasium.make) find them.
if "ddpglab/LQR-v0" not in gym.registry:
    gym.register(
        "ddpglab/LQR-v0", entry_point="ddpglab.theory.lqr_env:LQREnv", max_episode_steps=100
    )


def make_env(env_id: str, max_episode_steps: int | None = None, **kwargs) -> gym.Env:
    """``gymnasium.make`` with ddpglab's requirements checked, one-line errors on bad input.

    The env must have a flat Box observation space and a bounded Box action space.
    """
    try:
        env = gym.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    except gym.error.Error as err:
        raise ConfigError(f"cannot make env '{env_id}': {str(err).splitlines()[0]}") from None
    except ImportError as err:
        raise ConfigError(f"env '{env_id}' needs a missing package: {err}") from None
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


class MemberEnvs:
    """One env per member, stepped in lockstep; each member resets its own env when it ends.

    Member k's env is seeded with ``seeds[k]`` on its first reset (and its action space
    too), so its trajectory does not depend on which other members run beside it.
    """

    def __init__(self, env_id: str, seeds: list[int], max_episode_steps: int | None = None):
        self.envs = [make_env(env_id, max_episode_steps) for _ in seeds]
        space = self.envs[0].action_space
        self.low = space.low.astype(np.float32)
        self.high = space.high.astype(np.float32)
        self.obs_dim = self.envs[0].observation_space.shape[0]
        self.act_dim = space.shape[0]
        self.seeds = list(seeds)
        self.obs = np.zeros((len(seeds), self.obs_dim), dtype=np.float32)
        for k, (env, seed) in enumerate(zip(self.envs, seeds, strict=True)):
            env.action_space.seed(seed)
            self.obs[k] = env.reset(seed=seed)[0]

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
        self.obs = next_obs.copy()
        for k in np.flatnonzero(terminated | truncated):
            self.obs[k] = self.envs[k].reset()[0]
        return self.obs, next_obs, rewards, terminated, truncated

    def close(self) -> None:
        for env in self.envs:
            env.close()
