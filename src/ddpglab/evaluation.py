"""Deterministic evaluation: each member plays a = mu(s), without noise, on an env of its
own, seeded from its seed and kept apart from its training env."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ddpglab.envs import make_env, rescale_action
from ddpglab.seeding import derive_seed


class MemberEvaluator:
    """Each member's eval env and the deterministic episodes played on it.

    Member k's env is made on its first evaluation and reset once with
    ``derive_seed(seeds[k], "eval")``; later episodes continue its own random stream, so
    successive evaluations see new start states and a resumed run sees the same ones.

    Args:
        env_id: the gymnasium id of the members' env.
        max_episode_steps: its time limit (None: the env's own).
        seeds: the members' seeds, in member order.
        obs_dim: observation size.
        low, high: the action bounds that actions in [-1, 1] are rescaled to.
    """

    def __init__(
        self,
        env_id: str,
        max_episode_steps: int | None,
        seeds: list[int],
        obs_dim: int,
        low: np.ndarray,
        high: np.ndarray,
    ):
        self.env_id, self.max_episode_steps = env_id, max_episode_steps
        self.seeds, self.obs_dim = list(seeds), obs_dim
        self.low, self.high = low, high
        self._envs: dict[int, Any] = {}

    def returns(
        self, act: Callable[[np.ndarray], np.ndarray], members: list[int], episodes: int
    ) -> dict[int, list[float]]:
        """The returns of ``episodes`` deterministic episodes of each given member.

        Args:
            act: the members' deterministic actions in [-1, 1], (K, act_dim), for the
                observations of all K members, (K, obs_dim); rows of members not being
                evaluated are ignored.
            members: which members play.
            episodes: episodes per member.
        """
        for k in members:
            self._env(k)
        returns: dict[int, list[float]] = {k: [] for k in members}
        for _ in range(episodes):
            obs = np.zeros((len(self.seeds), self.obs_dim), dtype=np.float32)
            for k in members:
                obs[k] = self._envs[k].reset()[0]
            running = {k: 0.0 for k in members}
            while running:
                actions = rescale_action(act(obs), self.low, self.high)
                for k in list(running):
                    o, r, term, trunc, _ = self._envs[k].step(actions[k])
                    obs[k] = o
                    running[k] += float(r)
                    if term or trunc:
                        returns[k].append(running.pop(k))
        return returns

    def _env(self, k: int) -> Any:
        """Member k's eval env, made and seeded on first use."""
        if k not in self._envs:
            env = make_env(self.env_id, self.max_episode_steps)
            env.reset(seed=derive_seed(self.seeds[k], "eval"))
            self._envs[k] = env
        return self._envs[k]

    def state_dict(self) -> dict[int, Any]:
        """The random state of every eval env made so far, by member."""
        return {
            int(k): env.unwrapped.np_random.bit_generator.state for k, env in self._envs.items()
        }

    def load_state_dict(self, state: dict[int, Any]) -> None:
        """Make the members' eval envs and give them back their random states."""
        for k, rng_state in state.items():
            self._env(int(k)).unwrapped.np_random.bit_generator.state = rng_state

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
