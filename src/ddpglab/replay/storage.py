"""Shared replay storage: preallocated (K, capacity, ...) ring arrays, one ring per member.

Members add in lockstep (one transition each per env step), so the write position and
fill level are shared; only the contents differ. Every sampling strategy subclasses
:class:`ReplayBuffer` and implements :meth:`ReplayBuffer.sample_indices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from ddpglab.seeding import member_rngs


class Batch(NamedTuple):
    """A minibatch per member. Tensors are shaped (K, B, ...); ``indices`` index the rings."""

    obs: torch.Tensor  # (K, B, obs_dim)
    actions: torch.Tensor  # (K, B, act_dim), in [-1, 1]
    rewards: torch.Tensor  # (K, B)
    next_obs: torch.Tensor  # (K, B, obs_dim)
    terminated: torch.Tensor  # (K, B), 1.0 where the episode ended in a terminal state
    indices: np.ndarray  # (K, B) int64 ring positions
    weights: torch.Tensor  # (K, B) importance weights; ones for unbiased strategies


def _member_seeds(seed: int | Sequence[int], members: int) -> list[int]:
    if isinstance(seed, int):
        return [seed + k for k in range(members)]
    seeds = list(seed)
    if len(seeds) != members:
        raise ValueError(f"got {len(seeds)} seeds for {members} members")
    return seeds


class ReplayBuffer:
    """Ring storage of transitions for K members plus episode bookkeeping.

    Args:
        capacity: transitions kept per member; the oldest are overwritten first.
        obs_dim: observation size.
        act_dim: action size.
        members: K, the number of independent members.
        seed: one seed per member, or one int from which member k gets ``seed + k``.
            Member k's sampling depends on its own seed only.
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
    ):
        self.capacity, self.members = capacity, members
        # The ring that `add` writes is slots [0, capacity); strategies that keep strata of
        # their own (stratified) get further slots after it, so one gather serves all.
        shape = (members, capacity * self.slots_per_capacity)
        self.obs = np.zeros((*shape, obs_dim), dtype=np.float32)
        self.actions = np.zeros((*shape, act_dim), dtype=np.float32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.next_obs = np.zeros((*shape, obs_dim), dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=np.float32)
        self.pos = 0
        self.size = 0
        self.rngs = member_rngs(_member_seeds(seed, members), "replay")
        # Running return and length of each member's current episode, and of its last
        # finished one (strategies that act on whole episodes, and the trainer, read them).
        self.episode_return = np.zeros(members, dtype=np.float64)
        self.episode_length = np.zeros(members, dtype=np.int64)
        self.last_episode_return = np.zeros(members, dtype=np.float64)
        self.last_episode_length = np.zeros(members, dtype=np.int64)
        self.episodes_finished = np.zeros(members, dtype=np.int64)
        self._member_axis = np.arange(members)[:, None]
        self._unit_weights: torch.Tensor | None = None

    #: Slots of storage per unit of ``capacity`` (the ring, plus strata of a strategy's own).
    slots_per_capacity = 1

    @classmethod
    def storage_bytes(cls, capacity: int, obs_dim: int, act_dim: int, members: int) -> int:
        """Bytes of the storage arrays: obs, next_obs, actions, reward and terminated, float32."""
        slots = members * capacity * cls.slots_per_capacity
        return 4 * slots * (2 * obs_dim + act_dim + 2)

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        act: np.ndarray,
        rew: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Store one transition per member (arrays with leading size K) and track episodes."""
        i = self.pos
        self.obs[:, i] = obs
        self.actions[:, i] = act
        self.rewards[:, i] = rew
        self.next_obs[:, i] = next_obs
        self.terminated[:, i] = terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.episode_return += rew
        self.episode_length += 1
        ended = np.flatnonzero(np.logical_or(terminated, truncated))
        if ended.size:
            self.last_episode_return[ended] = self.episode_return[ended]
            self.last_episode_length[ended] = self.episode_length[ended]
            self.end_episodes(ended, self.last_episode_return[ended])
            self.episode_return[ended] = 0.0
            self.episode_length[ended] = 0
            self.episodes_finished[ended] += 1

    #: Whether the trainer must report TD errors through :meth:`update_priorities`.
    needs_priorities = False
    #: Per member, the return threshold its last episode was judged by (strategies that
    #: classify episodes set it; None elsewhere). The trainer stores it next to the return.
    last_episode_threshold: np.ndarray | None = None

    def end_episodes(self, members: np.ndarray, returns: np.ndarray) -> None:
        """Hook for strategies that act on whole episodes; called after the last transition."""

    def set_progress(self, fraction: np.ndarray) -> None:
        """Hook for strategies with schedules: the fraction of its budget each member spent."""

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Hook for strategies that sample by TD error (``needs_priorities``)."""

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Ring positions (K, B) to train on, and importance weights (None: all ones)."""
        raise NotImplementedError

    def sample(self, batch_size: int) -> Batch:
        """Draw a minibatch of ``batch_size`` transitions for every member."""
        idx, weights = self.sample_indices(batch_size)
        k = self._member_axis
        if weights is not None:
            w = torch.from_numpy(weights)
        else:  # unbiased strategies share one read-only tensor of ones per batch shape
            if self._unit_weights is None or self._unit_weights.shape != idx.shape:
                self._unit_weights = torch.ones(idx.shape)
            w = self._unit_weights
        return Batch(
            obs=torch.from_numpy(self.obs[k, idx]),
            actions=torch.from_numpy(self.actions[k, idx]),
            rewards=torch.from_numpy(self.rewards[k, idx]),
            next_obs=torch.from_numpy(self.next_obs[k, idx]),
            terminated=torch.from_numpy(self.terminated[k, idx]),
            indices=idx,
            weights=w,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue sampling exactly where this buffer stands."""
        return {
            "obs": self.obs,
            "actions": self.actions,
            "rewards": self.rewards,
            "next_obs": self.next_obs,
            "terminated": self.terminated,
            "pos": self.pos,
            "size": self.size,
            "episode_return": self.episode_return,
            "episode_length": self.episode_length,
            "last_episode_return": self.last_episode_return,
            "last_episode_length": self.last_episode_length,
            "episodes_finished": self.episodes_finished,
            "rng_states": [rng.bit_generator.state for rng in self.rngs],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("obs", "actions", "rewards", "next_obs", "terminated"):
            getattr(self, name)[...] = state[name]
        for name in (
            "episode_return",
            "episode_length",
            "last_episode_return",
            "last_episode_length",
            "episodes_finished",
        ):
            getattr(self, name)[...] = state[name]
        self.pos, self.size = int(state["pos"]), int(state["size"])
        for rng, rng_state in zip(self.rngs, state["rng_states"], strict=True):
            rng.bit_generator.state = rng_state
