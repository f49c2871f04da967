"""Deterministic evaluation: each member plays a = mu(s), without noise, on an env of its
own, seeded from its seed and kept apart from its training env."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ddpglab.envs import MemberEnvs, make_env, rescale_action
from ddpglab.seeding import derive_seed


class MemberEvaluator:
    """Each member's eval stream and the deterministic episodes played from it.

    Member k's stream is seeded with ``derive_seed(seeds[k], "eval")`` on its first
    evaluation; later episodes continue it, so successive evaluations see new start
    states. Every episode plays in a fresh env instance reset from the stream's state, as
    training episodes do (see :class:`~ddpglab.envs.MemberEnvs`): a Box2D env carries
    history from earlier episodes in its world, which a resumed run would not have. So a
    resumed run sees the same episodes as an uninterrupted one.

    Args:
        env_id: the gymnasium id of the members' env.
        max_episode_steps: its time limit (None: the env's own).
        seeds: the members' seeds, in member order.
        obs_dim: observation size.
        low, high: the action bounds that actions in [-1, 1] are rescaled to.
        env_kwargs: the env's keyword arguments (``env.kwargs``), for every instance.
    """

    def __init__(
        self,
        env_id: str,
        max_episode_steps: int | None,
        seeds: list[int],
        obs_dim: int,
        low: np.ndarray,
        high: np.ndarray,
        env_kwargs: Mapping[str, Any] | None = None,
    ):
        self.env_id, self.max_episode_steps = env_id, max_episode_steps
        self.env_kwargs = dict(env_kwargs or {})
        self.seeds, self.obs_dim = list(seeds), obs_dim
        self.low, self.high = low, high
        self._rng_states: dict[int, Any] = {}  # member -> its stream, where the next episode starts

    @classmethod
    def beside(cls, envs: MemberEnvs) -> MemberEvaluator:
        """An evaluator of the members of ``envs``: their env, time limit, kwargs and bounds."""
        return cls(
            envs.env_id,
            envs.max_episode_steps,
            envs.seeds,
            envs.obs_dim,
            envs.low,
            envs.high,
            envs.env_kwargs,
        )

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
        returns: dict[int, list[float]] = {k: [] for k in members}
        for _ in range(episodes):
            obs = np.zeros((len(self.seeds), self.obs_dim), dtype=np.float32)
            envs = {}
            for k in members:
                envs[k], obs[k] = self._begin_episode(k)
            running = {k: 0.0 for k in members}
            while running:
                actions = rescale_action(act(obs), self.low, self.high)
                for k in list(running):
                    o, r, term, trunc, _ = envs[k].step(actions[k])
                    obs[k] = o
                    running[k] += float(r)
                    if term or trunc:
                        returns[k].append(running.pop(k))
                        self._end_episode(k, envs.pop(k))
        return returns

    def _begin_episode(self, k: int) -> tuple[Any, np.ndarray]:
        """A fresh instance of member k's env, reset where its stream left off: (env, s_0)."""
        if k not in self._rng_states:
            # Seeding takes a reset whose start state goes unused, as it always has.
            seeding = make_env(self.env_id, self.max_episode_steps, self.env_kwargs)
            seeding.reset(seed=derive_seed(self.seeds[k], "eval"))
            self._rng_states[k] = seeding.unwrapped.np_random.bit_generator.state
            seeding.close()
        env = make_env(self.env_id, self.max_episode_steps, self.env_kwargs)
        env.unwrapped.np_random.bit_generator.state = self._rng_states[k]
        return env, env.reset()[0]

    def _end_episode(self, k: int, env: Any) -> None:
        self._rng_states[k] = env.unwrapped.np_random.bit_generator.state
        env.close()

    def state_dict(self) -> dict[int, Any]:
        """Where each member's stream stands, for the members evaluated so far."""
        return {int(k): rng_state for k, rng_state in self._rng_states.items()}

    def load_state_dict(self, state: dict[int, Any]) -> None:
        self._rng_states = {int(k): rng_state for k, rng_state in state.items()}

    def close(self) -> None:
        """Nothing stays open between evaluations; kept for the trainer's clean-up."""
