"""Softmax replay over reward deviations (the 2023 study): exact, and cheap at 1e6 transitions.

Transition i is drawn with

    P(i) = exp(|r_i - mu_R| / beta) / sum_j exp(|r_j - mu_R| / beta),

where r_i is its stored reward and mu_R the mean reward over the transitions sampled from
(the whole buffer, or the most recent ``window`` of it). The 2023 code recomputed every
weight at every step: O(N) per minibatch. Here each member keeps its transitions grouped
in reward bins of width ``beta / 2`` and draws by rejection from an envelope:

* bin b holds n_b transitions whose rewards lie in [lo_b, hi_b] (the smallest and largest
  reward that entered the bin since it was last empty, so a valid bound at all times);
* every member of the bin has weight w_i = exp(|r_i - mu| / beta) <= M_b with
  M_b = exp(d_b / beta), d_b = max(|lo_b - mu|, |hi_b - mu|), the farthest bin edge;
* pick bin b with probability n_b M_b / sum_c n_c M_c, a member i of it uniformly, and
  accept it with probability w_i / M_b = exp((|r_i - mu| - d_b) / beta) <= 1.

One try then returns i with probability w_i / sum_c n_c M_c, proportional to w_i, so an
accepted draw has exactly P(i) (up to float rounding), whatever mu is: the bins never
need reweighting when mu_R moves. Because hi_b - lo_b <= beta / 2, a try is accepted with
probability at least exp(-1/2) ~ 0.61 (about 0.8 on average). The bin weights are handled
in log space, log(n_b M_b) - max_c log(n_c M_c), so no exponent overflows and the largest
bin always has weight 1: no overflow, no NaN, no all-zero distribution at any reward
scale or beta.

Cost per member: an add moves one slot between bins (O(1) amortized: swap-remove arrays
and a slot -> position map); a sample is a few vector operations over the occupied bins
(reward range / (beta / 2) of them: hundreds for Pendulum at beta = 0.05) plus about
1.25 B candidate draws, vectorized over the batch. Pathological reward sets with very
many distinct bins (say 1e5 rewards spread over 1e4 beta) make the per-sample bin pass
proportionally longer; the distribution stays exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from ddpglab.replay.diagnostics import ReplayStats
from ddpglab.replay.params import StrategyParams
from ddpglab.replay.reward_bins import BIN_WIDTH_IN_BETA, RewardBins
from ddpglab.replay.storage import ReplayBuffer


class SoftmaxReplay(ReplayBuffer):
    """Sample P(i) = exp(|r_i - mu_R| / beta) / sum_j exp(|r_j - mu_R| / beta), exactly.

    mu_R is the mean stored reward over the sampled transitions: all of them, or the
    member's most recent ``window`` (see :class:`~ddpglab.replay.storage.ReplayBuffer`).
    Draws are with replacement and independent per member (member k uses only its own
    generator and its own rewards). No importance weights (``weights`` are ones), as in
    the 2023 study. See the module docstring for the binned rejection sampler that makes
    each add O(1) and each sample independent of N.

    Args:
        beta: temperature > 0; small beta concentrates sampling on rewards far from mu_R.
    """

    kind = "softmax"
    listing_order = 3

    class Params(StrategyParams):
        """Sampling by exp(|r - mean r| / beta) (the 2023 study); used when
        replay.kind=softmax."""

        beta: float = Field(1.0, gt=0, description="temperature: larger is closer to uniform")

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
        *,
        beta: float = 1.0,
        **options: Any,
    ):
        if not (math.isfinite(beta) and beta > 0):
            raise ValueError(f"softmax replay needs a finite beta > 0, got {beta}")
        super().__init__(capacity, obs_dim, act_dim, members, seed, **options)
        self.beta = float(beta)
        self.bin_width = BIN_WIDTH_IN_BETA * self.beta
        self.index = [RewardBins(capacity, self.bin_width, self.rewards[k]) for k in range(members)]
        # Per member, the most recent `active[k]` transitions are indexed and sampled.
        self.active = np.zeros(members, dtype=np.int64)
        self.adds_since_exact_sum = 0

    def active_slots(self, k: int) -> np.ndarray:
        """Ring positions of member k's sampled transitions, oldest first."""
        return (self.pos - self.active[k] + np.arange(self.active[k])) % self.capacity

    def mean_reward(self) -> np.ndarray:
        """mu_R per member (K,): the mean stored reward over the active transitions."""
        sums = np.array([ix.reward_sum for ix in self.index])
        return sums / np.maximum(self.active, 1)

    def add(self, obs, act, rew, next_obs, terminated, truncated) -> None:
        stored = np.broadcast_to(np.asarray(rew, dtype=np.float32), (self.members,))
        if not np.all(np.isfinite(stored)):
            raise ValueError(f"softmax replay needs finite rewards, got {stored}")
        slot = self.pos
        # A member whose window is full drops its oldest (at a full ring: `slot` itself).
        for k in np.flatnonzero(self.active >= self.window).tolist():
            self._evict_oldest(k, 1)
        super().add(obs, act, rew, next_obs, terminated, truncated)
        for ix, reward in zip(self.index, self.rewards[:, slot].tolist(), strict=True):
            ix.insert(slot, reward)
        self.active += 1
        self.adds_since_exact_sum += 1
        if self.adds_since_exact_sum >= self.capacity:
            self._resum_rewards()

    def _evict_oldest(self, k: int, n: int) -> None:
        ix, rewards = self.index[k], self.rewards[k]
        for _ in range(n):
            oldest = (self.pos - self.active[k]) % self.capacity
            ix.remove(oldest, float(rewards[oldest]))
            self.active[k] -= 1

    def _resum_rewards(self) -> None:
        """Recompute each member's reward sum from scratch, bounding float drift."""
        for k, ix in enumerate(self.index):
            rewards = self.rewards[k, self.active_slots(k)]
            ix.reward_sum = float(rewards.astype(np.float64).sum())
        self.adds_since_exact_sum = 0

    def reindex(self) -> None:
        """Rebuild every member's index from the stored rewards (after writing the ring
        arrays, ``pos`` and ``size`` directly, e.g. to pre-fill a buffer quickly)."""
        self.active = self.window_sizes()
        for k, ix in enumerate(self.index):
            ix.rebuild(self.active_slots(k))
        self.adds_since_exact_sum = 0

    def set_window(self, window: np.ndarray | int | None) -> None:
        """Sample only each member's most recent ``window`` transitions; mu_R follows.

        Shrinking drops the oldest transitions from the index and growing re-admits stored
        ones, one at a time for small changes and by a rebuild for large ones, so a
        schedule that moves the window each step costs O(1) per step.
        """
        super().set_window(window)
        for k, target in enumerate(self.window_sizes().tolist()):
            change = abs(target - int(self.active[k]))
            if change > 64 and change > self.active[k] // 8:
                self.active[k] = target
                self.index[k].rebuild(self.active_slots(k))
            elif target < self.active[k]:
                self._evict_oldest(k, int(self.active[k]) - target)
            else:
                while self.active[k] < target:
                    older = (self.pos - self.active[k] - 1) % self.capacity
                    self.index[k].insert(older, float(self.rewards[k, older]))
                    self.active[k] += 1

    def sampling_law(self, batch_size: int | None = None) -> np.ndarray:
        """P(i) for every ring slot (K, capacity), zero outside the window: the O(N)
        reference formula over the stored rewards the bins index, with log-sum-exp."""
        probs = np.zeros((self.members, self.capacity))
        for k in range(self.members):
            slots = self.active_slots(k)
            rewards = self.rewards[k, slots].astype(np.float64)
            logits = np.abs(rewards - rewards.mean()) / self.beta
            weights = np.exp(logits - logits.max())
            probs[k, slots] = weights / weights.sum()
        return probs

    def replay_stats(
        self, batch_size: int | None = None, members: Sequence[int] | None = None
    ) -> ReplayStats:
        """From each member's logits l_i = |r_i - mu_R| / beta over its active transitions:
        ln P_i = l_i - L with L = log sum_j exp(l_j), so H = L - sum_i P_i l_i and E[age] =
        sum_i P_i age_i; exact as :meth:`sampling_law`, one pass and no logarithm per slot."""
        expected, entropy, newest = np.zeros((3, self.members))
        for k in self.member_rows(members):
            rewards = self.rewards[k, self.active_slots(k)].astype(np.float64)
            logits = np.abs(rewards - rewards.mean()) / self.beta
            top = logits.max()
            weights = np.exp(logits - top)
            total = weights.sum()
            probs = weights / total
            ages = np.arange(rewards.size - 1, -1, -1, dtype=np.float64)  # oldest first
            expected[k] = probs @ ages
            entropy[k] = np.log(total) + top - probs @ logits
            newest[k] = probs[-1]
        return self.closed_form_stats(expected, entropy, newest, batch_size, members)

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, None]:
        if not self.active.all():
            raise ValueError("cannot sample from an empty replay buffer")
        mu = self.mean_reward().tolist()
        idx = np.stack(
            [
                ix.sample(rng, batch_size, m, self.beta)
                for ix, rng, m in zip(self.index, self.rngs, mu, strict=True)
            ]
        )
        return idx, None

    def check_invariants(self) -> None:
        """Assert each member's index matches a recomputation from the stored rewards."""
        assert (self.active == self.window_sizes()).all()
        for k, ix in enumerate(self.index):
            ix.check(self.active_slots(k))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            softmax_active=self.active,
            softmax_adds_since_exact_sum=self.adds_since_exact_sum,
            softmax_index=[ix.state_dict() for ix in self.index],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.active[...] = state["softmax_active"]
        self.adds_since_exact_sum = int(state["softmax_adds_since_exact_sum"])
        for ix, ix_state in zip(self.index, state["softmax_index"], strict=True):
            ix.load_state_dict(ix_state)
