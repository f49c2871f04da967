"""Proportional prioritized experience replay (Schaul et al. 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ddpglab.replay.storage import ReplayBuffer
from ddpglab.replay.sumtree import SumTrees


def priority(td_error: np.ndarray, alpha: float, eps: float) -> np.ndarray:
    """p_i = (|delta_i| + eps)^alpha: the sampling weight of a transition from its TD error."""
    return (np.abs(td_error) + eps) ** alpha


def importance_weights(probs: np.ndarray, size: int, beta: float | np.ndarray) -> np.ndarray:
    """w_i = (N P(i))^-beta / max_j w_j over each member's batch, correcting the bias of
    sampling with P(i) = p_i / sum_j p_j instead of 1/N."""
    w = (size * probs) ** -beta
    return w / w.max(axis=-1, keepdims=True)


class PrioritizedReplay(ReplayBuffer):
    """Sample transition i with P(i) = p_i / sum_j p_j, one sum tree per member.

    New transitions enter at the largest priority seen so far, so each is replayed at least
    once soon; after every update the trainer calls :meth:`update_priorities` with the TD
    errors of the batch. Importance weights use beta annealed linearly from ``beta0`` to 1
    by :meth:`set_progress`.

    Args:
        alpha: how strongly priorities shape sampling (0: uniform).
        beta0: importance-sampling exponent at the start of training.
        eps: added to |delta| so no transition's probability drops to zero.
    """

    needs_priorities = True

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
        alpha: float = 0.6,
        beta0: float = 0.4,
        eps: float = 1e-6,
    ):
        super().__init__(capacity, obs_dim, act_dim, members, seed)
        self.alpha, self.beta0, self.eps = alpha, beta0, eps
        self.beta = np.full((members, 1), beta0)
        self.trees = SumTrees(members, capacity)
        self.max_priority = np.ones(members, dtype=np.float64)

    def add(self, obs, act, rew, next_obs, terminated, truncated) -> None:
        position = self.pos
        super().add(obs, act, rew, next_obs, terminated, truncated)
        self.trees.set_column(position, self.max_priority)

    def set_progress(self, fraction: np.ndarray) -> None:
        """beta_k = beta0 + (1 - beta0) * fraction_k, member k's fraction of training done."""
        self.beta[:, 0] = self.beta0 + (1.0 - self.beta0) * np.clip(fraction, 0.0, 1.0)

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Stratified draw: one uniform point in each of B equal slices of [0, sum p)."""
        total = self.trees.total()
        offsets = np.stack([rng.random(batch_size) for rng in self.rngs])
        points = (np.arange(batch_size) + offsets) / batch_size * total[:, None]
        idx = np.minimum(self.trees.find(points), self.size - 1)
        probs = self.trees.leaves(idx) / total[:, None]
        weights = importance_weights(probs, self.size, self.beta).astype(np.float32)
        return idx, weights

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set p_i = (|delta_i| + eps)^alpha for the sampled ring positions (K, B)."""
        new = priority(td_errors, self.alpha, self.eps)
        self.trees.set(indices, new)
        np.maximum(self.max_priority, new.max(axis=-1), out=self.max_priority)

    def state_dict(self):
        state = super().state_dict()
        state.update(tree=self.trees.tree, max_priority=self.max_priority, beta=self.beta)
        return state

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self.trees.tree[...] = state["tree"]
        self.max_priority[...] = state["max_priority"]
        self.beta[...] = state["beta"]
