"""Emphasizing Recent Experience, ERE (Wang & Ross 2019).

"Boosting Soft Actor-Critic: Emphasizing Recent Experience without Forgetting the Past",
arXiv:1906.04009. After an episode of K steps, SAC does K updates; ERE draws the k-th of
them uniformly from the newest c_k = max(N eta^(k 1000 / K), c_min) transitions (N what
the buffer holds), so the early updates see the whole buffer and the late ones ever more
recent data; eta is annealed from eta0 to 1 over training, back to uniform sampling.

ddpglab updates at every env step, not in a burst at each episode's end, so k and K are
defined for that setting: k is the step within the member's current episode (transitions
of it stored so far) and K the length of its previous episode, the burst the paper would
have done. Within an episode the emphasis on recent data then grows as the paper's burst
does, and since an episode's length is not known before it ends, the last one stands in
for it; k / K is capped at 1 when an episode outlasts the previous one, and is 1 before
any episode has ended. c_k never exceeds what the member stores (or its window).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from ddpglab.replay.diagnostics import ReplayStats
from ddpglab.replay.params import StrategyParams
from ddpglab.replay.storage import ReplayBuffer
from ddpglab.replay.uniform import recent_slots

#: The paper's 1000: the length of a MuJoCo episode, so the last update of any episode
#: samples from the newest N eta^1000 transitions.
REFERENCE_LENGTH = 1000


def recent_counts(
    stored: np.ndarray, eta: np.ndarray, k: np.ndarray, previous: np.ndarray, c_min: int
) -> np.ndarray:
    """c_k = min(N, max(floor(N eta^(1000 k / K)), c_min)) per member (K,), N ``stored``,
    K the ``previous`` episode's length, k / K capped at 1 (and 1 with no previous one)."""
    ratio = np.where(previous > 0, np.minimum(k / np.maximum(previous, 1), 1.0), 1.0)
    emphasised = np.floor(stored * eta ** (REFERENCE_LENGTH * ratio)).astype(np.int64)
    return np.minimum(stored, np.maximum(emphasised, c_min))


def nested_uniform_stats(counts: np.ndarray) -> tuple[float, float, float]:
    """E[age], H and P(newest) of the mixture (1/K) sum_k U(c_k), U(c) uniform over the c
    newest transitions, for the K counts c_k given (closed form, O(K log K)):

    P(a) = (1/K) sum_{k: c_k > a} 1 / c_k is constant between consecutive distinct counts,
    so H = -sum_j (c_j - c_{j-1}) P_j ln P_j over the distinct c_1 < c_2 < ..., and
    E[age] = (1/K) sum_k (c_k - 1) / 2.
    """
    distinct, times = np.unique(counts, return_counts=True)
    level = np.cumsum((times / (counts.size * distinct))[::-1])[::-1]  # P(a) on each stretch
    widths = np.diff(distinct, prepend=0)
    entropy = float(-(widths * level * np.log(level)).sum())
    return float(np.mean((counts - 1) / 2)), entropy, float(level[0])


class EmphasizingRecentReplay(ReplayBuffer):
    """Sample uniformly from each member's newest c_k transitions (see the module).

    P(i) = 1 / c_k for the c_k most recent transitions of the member's window, 0 for the
    others; c_k as in :func:`recent_counts`; eta_m = eta0 + (1 - eta0) f_m, f_m member m's
    share of its budget spent (:meth:`set_progress`). No importance weights (ones).

    Args:
        eta0: emphasis at the start of training, in (0, 1] (1: uniform); 0.996 in the paper.
        c_min: fewest transitions ever sampled from (the paper's 5000); at least the batch.
    """

    kind = "ere"
    listing_order = 6

    class Params(StrategyParams):
        """Emphasizing Recent Experience (Wang & Ross 2019); used when replay.kind=ere."""

        eta0: float = Field(0.996, gt=0, le=1, description="emphasis at the start, annealed to 1")
        c_min: int = Field(5000, ge=1, description="fewest recent transitions sampled from")

        def batch_size_problem(self, batch_size: int) -> str | None:
            if self.c_min < batch_size:
                return (
                    f"replay.ere.c_min ({self.c_min}) is smaller than "
                    f"agent.batch_size ({batch_size})"
                )
            return None

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
        *,
        eta0: float = 0.996,
        c_min: int = 5000,
        **options: Any,
    ):
        super().__init__(capacity, obs_dim, act_dim, members, seed, **options)
        self.eta0, self.c_min = float(eta0), int(c_min)
        self.eta = np.full(members, self.eta0)

    follows_progress = True  # eta anneals with progress

    def set_progress(self, fraction: np.ndarray) -> None:
        """eta_m = eta0 + (1 - eta0) * fraction_m, member m's fraction of training done."""
        super().set_progress(fraction)
        self.eta[:] = self.eta0 + (1.0 - self.eta0) * np.minimum(fraction, 1.0)

    def recent_counts(self) -> np.ndarray:
        """c_k of each member now (K,): how many of its newest transitions it samples."""
        return recent_counts(
            self.window_sizes(), self.eta, self.episode_length, self.last_episode_length, self.c_min
        )

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, None]:
        idx = np.empty((self.members, batch_size), dtype=np.int64)
        counts = self.recent_counts().tolist()
        for k, (rng, count) in enumerate(zip(self.rngs, counts, strict=True)):
            idx[k] = recent_slots(
                self.pos, self.capacity, count, rng.integers(0, count, batch_size)
            )
        return idx, None

    def sampling_law(self, batch_size: int | None = None) -> np.ndarray:
        """1 / c_k on each member's c_k newest transitions, at the current k (closed form)."""
        counts = self.recent_counts()
        return (self.ring_ages()[None, :] < counts[:, None]) / counts[:, None].astype(np.float64)

    def replay_stats(
        self, batch_size: int | None = None, members: Sequence[int] | None = None
    ) -> ReplayStats:
        """The law of a transition replayed over the member's next episode, if it lasts as
        long as the last one (K steps): (1/K) sum_{k<K} U(c_k) at the current N and eta.

        At an episode end k = 0, so c_k = N and the law of the next draw alone is uniform:
        reporting it would hide ERE's emphasis on recent data. The mixture over the coming
        episode's updates is what it replays (closed form: :func:`nested_uniform_stats`).
        Before any episode has ended it is the current law (k / K = 1).
        """
        rows = []
        for n, eta, steps, k in zip(
            self.window_sizes().tolist(),
            self.eta.tolist(),
            self.last_episode_length.tolist(),
            self.episode_length.tolist(),
            strict=True,
        ):
            if steps:  # the k-th update of the next episode, k < K = the last one's length
                counts = recent_counts(n, eta, np.arange(steps), steps, self.c_min)
            else:  # no episode has ended: the current law, at k / K = 1
                counts = recent_counts(n, eta, np.array([k]), 0, self.c_min)
            rows.append(nested_uniform_stats(counts))
        expected, entropy, newest = (np.array(column) for column in zip(*rows, strict=True))
        return self.closed_form_stats(expected, entropy, newest, batch_size, members)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(ere_eta=self.eta)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.eta[...] = state["ere_eta"]
