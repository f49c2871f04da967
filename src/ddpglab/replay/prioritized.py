"""Proportional prioritized experience replay (Schaul et al. 2015)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from ddpglab.replay.diagnostics import ReplayStats
from ddpglab.replay.params import StrategyParams
from ddpglab.replay.storage import ReplayBuffer
from ddpglab.replay.sumtree import SumTrees


def priority(td_error: np.ndarray, alpha: float, eps: float) -> np.ndarray:
    """p_i = (|delta_i| + eps)^alpha: the sampling weight of a transition from its TD error."""
    return (np.abs(td_error) + eps) ** alpha


def importance_weights(
    probs: np.ndarray, size: int | np.ndarray, beta: float | np.ndarray
) -> np.ndarray:
    """w_i = (N P(i))^-beta / max_j w_j over each member's batch, correcting the bias of
    sampling with P(i) = p_i / sum_j p_j instead of 1/N (N: the transitions sampled from)."""
    w = (size * probs) ** -beta
    return w / w.max(axis=-1, keepdims=True)


class PrioritizedReplay(ReplayBuffer):
    """Sample transition i with P(i) = p_i / sum_j p_j, one sum tree per member.

    New transitions enter at the largest priority seen so far, so each is replayed at least
    once soon; after every update the trainer calls :meth:`update_priorities` with the TD
    errors of the batch. Importance weights use beta annealed linearly from ``beta0`` to 1
    by :meth:`set_progress`. With a window, P(i) = p_i / sum_{j in W} p_j over the
    member's window W, drawn by prefix-sum search on the range of W in the tree.

    Args:
        alpha: how strongly priorities shape sampling (0: uniform).
        beta0: importance-sampling exponent at the start of training.
        eps: added to |delta| so no transition's probability drops to zero.
    """

    kind = "prioritized"
    listing_order = 1

    class Params(StrategyParams):
        """Proportional prioritized replay (Schaul et al. 2015); used when
        replay.kind=prioritized."""

        alpha: float = Field(0.6, ge=0, description="priority exponent (0: uniform)")
        beta0: float = Field(0.4, ge=0, le=1, description="importance exponent, annealed to 1")
        eps: float = Field(1e-6, gt=0, description="added to |TD error| before the exponent")

    needs_priorities = True

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
        *,
        alpha: float = 0.6,
        beta0: float = 0.4,
        eps: float = 1e-6,
        **options: Any,
    ):
        super().__init__(capacity, obs_dim, act_dim, members, seed, **options)
        self.alpha, self.beta0, self.eps = alpha, beta0, eps
        self.beta = np.full((members, 1), beta0)
        self.trees = SumTrees(members, capacity)
        self.max_priority = np.ones(members, dtype=np.float64)

    #: Adds between exact recomputations of the sum trees (:meth:`SumTrees.rebuild`), which
    #: clear the rounding their incremental updates accumulate; tied to the ring position,
    #: so a resumed run rebuilds at the same steps as an uninterrupted one.
    rebuild_every = 1 << 14

    def add(self, obs, act, rew, next_obs, terminated, truncated) -> None:
        position = self.pos
        super().add(obs, act, rew, next_obs, terminated, truncated)
        self.trees.set_column(position, self.max_priority)
        if position % self.rebuild_every == 0:
            self.trees.rebuild()

    follows_progress = True  # beta anneals with progress

    def set_progress(self, fraction: np.ndarray) -> None:
        """beta_k = beta0 + (1 - beta0) * fraction_k, member k's fraction of training done."""
        super().set_progress(fraction)
        # fraction >= 0; np.minimum, not np.clip: this runs every step and clip is slower.
        self.beta[:, 0] = self.beta0 + (1.0 - self.beta0) * np.minimum(fraction, 1.0)

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Stratified draw: one uniform point in each of B equal slices of [0, sum p)."""
        offsets = np.stack([rng.random(batch_size) for rng in self.rngs])
        fractions = (np.arange(batch_size) + offsets) / batch_size
        window = self.window_sizes()
        total = self.trees.total()[:, None]
        idx = np.minimum(self.trees.find(fractions * total), self.size - 1)
        whole = window == self.size
        if whole.all():
            probs = self.trees.leaves(idx) / total
            return idx, self.importance_weights(probs, self.size).astype(np.float32)
        # Each member by its own window, whatever the others' (a member's draws must not
        # depend on who trains beside it): the whole buffer by the total, as above, and a
        # part of it by the prefix sums of its range, which round differently.
        in_window, mass = self._find_in_windows(fractions, window[:, None])
        idx = np.where(whole[:, None], idx, in_window)
        mass = np.where(whole[:, None], total, mass)
        probs = self.trees.leaves(idx) / mass
        return idx, self.importance_weights(probs, window[:, None]).astype(np.float32)

    def sampling_law(self, batch_size: int | None = None) -> np.ndarray:
        """P(i) = p_i / sum_{j in W} p_j from the sum-tree leaves, 0 outside the window W.

        The stratified draw puts one point in each of B slices of the mass: the draw at a
        uniformly chosen place of the batch follows P exactly, whatever B.
        """
        leaves = self.trees.tree[:, self.trees.leaf_offset : self.trees.leaf_offset + self.capacity]
        mass = np.where(self.window_mask(), leaves, 0.0)
        return mass / mass.sum(axis=1, keepdims=True)

    def replay_stats(
        self, batch_size: int | None = None, members: Sequence[int] | None = None
    ) -> ReplayStats:
        """From the sum-tree leaves p_i of each member's window W, mass M = sum_W p_i:
        E[age] = sum p_i age_i / M and H = ln M - sum p_i ln p_i / M; exact as
        :meth:`sampling_law`, one pass over each asked member's window leaves."""
        leaves = self.trees.tree[:, self.trees.leaf_offset : self.trees.leaf_offset + self.capacity]
        expected, entropy, newest = np.zeros((3, self.members))
        windows = self.window_sizes()
        for k in self.member_rows(members):
            n = int(windows[k])
            p = leaves[k, (self.pos - n + np.arange(n)) % self.capacity]  # oldest first
            mass = p.sum()
            expected[k] = p @ np.arange(n - 1, -1, -1, dtype=np.float64) / mass
            logs = np.log(p, out=np.zeros_like(p), where=p > 0)
            entropy[k] = np.log(mass) - p @ logs / mass
            newest[k] = p[-1] / mass
        return self.closed_form_stats(expected, entropy, newest, batch_size, members)

    def importance_weights(self, probs: np.ndarray, size: int | np.ndarray) -> np.ndarray:
        """w_i = (N P(i))^-beta / max_j w_j over each member's batch (K, B), N the
        transitions sampled from (``size``: one count, or (K, 1)) and beta this member's
        annealed exponent. Override to correct the sampling bias another way."""
        # the module function of the same name: the formula itself
        return importance_weights(probs, size, self.beta)

    def priority(self, td_errors: np.ndarray) -> np.ndarray:
        """p_i = (|delta_i| + eps)^alpha: the sampling weight of each transition from its TD
        error (K, B). Override to sample by another rule; P(i) = p_i / sum_j p_j."""
        # the module function of the same name: the formula itself
        return priority(td_errors, self.alpha, self.eps)

    def _find_in_windows(
        self, fractions: np.ndarray, window: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slots at ``fractions`` (K, B) of the priority mass of each member's window, the
        circular slot range [a, a + w) with a = pos - w, and that mass (K, 1).

        With F(x) = sum(leaves < x), the window's mass is F(pos) - F(a), plus the total when
        the range wraps past the end of the ring; a point F(a) + u * mass is searched in the
        tree, minus the total if it passed the end.
        """
        capacity = self.capacity
        first = (self.pos - window) % capacity
        total = self.trees.total()[:, None]
        before_first = self.trees.prefix_sum(first)
        before_end = self.trees.prefix_sum(np.full_like(first, self.pos))
        wraps = first >= self.pos
        mass = np.where(wraps, total - before_first + before_end, before_end - before_first)
        points = before_first + fractions * mass
        points = np.where(points >= total, points - total, points)
        idx = self.trees.find(points)
        # Float rounding of the prefix sums can land a point one slot outside the window;
        # such a draw goes to the nearer edge of the window.
        offset = (idx - first) % capacity
        outside = offset >= window
        if outside.any():
            nearer_first = capacity - offset < offset - window + 1
            edge = np.where(nearer_first, first, (first + window - 1) % capacity)
            idx = np.where(outside, edge, idx)
        return idx, mass

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set p_i = :meth:`priority` (delta_i) for the sampled ring positions (K, B)."""
        new = self.priority(td_errors)
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
