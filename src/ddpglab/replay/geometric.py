"""Truncated geometric recency replay (Korniak et al. 2026).

"When Does Non-Uniform Replay Matter in RL?", arXiv:2605.10236: expected recency of the
replayed transitions is one of the three quantities that decide whether a sampler helps;
a geometric law over the age sets it with one number, and keeps every stored transition
reachable (unlike a hard window).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from ddpglab.replay.diagnostics import ReplayStats, geometric_stats
from ddpglab.replay.params import StrategyParams
from ddpglab.replay.storage import ReplayBuffer

#: p when neither p nor expected_age is set: an untruncated mean age of 9999 transitions.
DEFAULT_P = 1e-4


def truncated_geometric_ages(u: np.ndarray, p: float, n: np.ndarray) -> np.ndarray:
    """Ages a in [0, n) with P(a) = (1 - p)^a / sum_{j<n} (1 - p)^j, from uniforms u in [0, 1).

    Inverse CDF: F(a) = (1 - q^(a+1)) / (1 - q^n) with q = 1 - p, so
    a = floor(log(1 - u (1 - q^n)) / log q); log1p and expm1 keep it exact to rounding for
    p near 0 and n near 1e6. O(1) per draw, whatever n.
    """
    log_q = np.log1p(-p)
    mass = -np.expm1(n * log_q)  # 1 - q^n
    ages = np.floor(np.log1p(-u * mass) / log_q).astype(np.int64)
    return np.minimum(ages, n - 1)  # u * mass rounding up to 1 - q^n lands at n


def truncated_geometric_law(p: float, n: int) -> np.ndarray:
    """P(age = a) for a in [0, n): (1 - p)^a p / (1 - (1 - p)^n)."""
    ages = np.arange(n)
    return np.exp(ages * np.log1p(-p)) * p / -np.expm1(n * np.log1p(-p))


class GeometricReplay(ReplayBuffer):
    """Sample by age: P(i) = (1 - p)^age_i / sum_{j in W} (1 - p)^age_j.

    age_i is 0 for the member's newest transition, 1 for the one before, and so on; W is
    what the member stores (its window, if one is set), so the geometric law is truncated
    at |W|. Each draw inverts the truncated geometric CDF (:func:`truncated_geometric_ages`):
    exact, O(B) per batch, no pass over the buffer. No importance weights (ones).

    The parameter is p, the per-step decay of the weight, or else the expected age of the
    untruncated law, E[age] = (1 - p) / p, so p = 1 / (1 + expected_age); truncation makes
    the realised mean age smaller when |W| is not much larger than it. The paper (Korniak
    et al. 2026) could not be consulted here; both ways of setting p are offered.

    Args:
        p: in (0, 1); larger samples more recent transitions (None: from expected_age).
        expected_age: mean age of the untruncated law, in transitions (None: from p).
    """

    kind = "geometric"
    listing_order = 5

    class Params(StrategyParams):
        """Truncated geometric recency (Korniak et al. 2026, arXiv:2605.10236); used when
        replay.kind=geometric. Set at most one of p and expected_age (neither: p = 1e-4)."""

        p: float | None = Field(
            None, gt=0, lt=1, description="P(i) ~ (1 - p)^age_i, age 0 the newest transition"
        )
        expected_age: float | None = Field(
            None, gt=0, description="sets p = 1 / (1 + expected_age): the untruncated mean age"
        )

        @model_validator(mode="after")
        def _one_way_to_set_p(self) -> GeometricReplay.Params:
            if self.p is not None and self.expected_age is not None:
                raise ValueError("set p or expected_age, not both")
            return self

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
        *,
        p: float | None = None,
        expected_age: float | None = None,
        **options: Any,
    ):
        super().__init__(capacity, obs_dim, act_dim, members, seed, **options)
        if p is None:
            p = DEFAULT_P if expected_age is None else 1.0 / (1.0 + expected_age)
        self.p = float(p)

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, None]:
        u = np.stack([rng.random(batch_size) for rng in self.rngs])
        ages = truncated_geometric_ages(u, self.p, self.window_sizes()[:, None])
        return (self.pos - 1 - ages) % self.capacity, None

    def sampling_law(self, batch_size: int | None = None) -> np.ndarray:
        """(1 - p)^age p / (1 - (1 - p)^|W|) on each member's window W (closed form)."""
        ages = self.ring_ages()
        law = np.zeros((self.members, self.capacity))
        for k, n in enumerate(self.window_sizes().tolist()):
            inside = ages < n
            law[k, inside] = truncated_geometric_law(self.p, n)[ages[inside]]
        return law

    def replay_stats(
        self, batch_size: int | None = None, members: Sequence[int] | None = None
    ) -> ReplayStats:
        """Closed form of the geometric law truncated at |W| (see
        :func:`~ddpglab.replay.diagnostics.geometric_stats`), O(1) per member."""
        return self.closed_form_stats(
            *geometric_stats(self.p, self.window_sizes()), batch_size, members
        )
