"""Loss-adjusted prioritized replay, LAP (Fujimoto, Meger & Precup 2020).

"An Equivalence between Loss Functions and Non-Uniform Sampling in Experience Replay",
NeurIPS 2020; reference code github.com/sfujim/LAP-PAL. Their theorem: sampling by a
priority changes the expected gradient exactly as reweighting the loss does, so a
prioritization scheme is a loss in disguise. PER with importance weights is then a biased
version of the mean squared error; LAP removes the bias by clipping small priorities to 1
(the region where the Huber loss is quadratic, so uniform sampling of it is plain MSE)
and dropping the importance weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from ddpglab.replay.params import StrategyParams
from ddpglab.replay.prioritized import PrioritizedReplay


def lap_priority(td_error: np.ndarray, alpha: float, min_priority: float) -> np.ndarray:
    """p_i = max(|delta_i|, min_priority)^alpha: LAP's sampling weight of a transition."""
    return np.maximum(np.abs(td_error), min_priority) ** alpha


class LossAdjustedReplay(PrioritizedReplay):
    """Sample transition i with P(i) = p_i / sum_j p_j, p_i = max(|delta_i|, m)^alpha.

    Sum trees as in :class:`~ddpglab.replay.prioritized.PrioritizedReplay` (one per
    member, vectorised over members, windows drawn from their range of the tree); new
    transitions enter at the largest priority seen (m^alpha before any TD error, the
    smallest priority LAP gives; the reference code starts at 1, the same at its m = 1);
    no importance weights: every weight is 1. A batch is PER's stratified draw, one point
    per slice of the priority mass, where the reference code draws i.i.d. points: each
    place of the batch has law P either way.

    LAP is meant with the Huber critic loss of threshold m (quadratic for |delta| < m,
    linear beyond): under LAP sampling its expected gradient is that of the mean squared
    error under uniform sampling for the errors below m (Fujimoto et al. 2020, Theorem 2
    and the LAP algorithm). With twin critics the paper's |delta_i| is
    max(|delta_1,i|, |delta_2,i|), the larger of the two critics' errors.

    Args:
        alpha: how strongly priorities shape sampling (0: uniform); the paper uses 0.4.
        min_priority: m, the |TD error| below which every transition is equally likely.
    """

    kind = "lap"
    listing_order = 4

    class Params(StrategyParams):
        """Loss-adjusted prioritized replay (Fujimoto, Meger & Precup 2020); used when
        replay.kind=lap, meant with the Huber critic loss of threshold min_priority."""

        alpha: float = Field(0.4, ge=0, description="priority exponent (0: uniform)")
        min_priority: float = Field(
            1.0, gt=0, description="|TD error| clipped from below to this before the exponent"
        )

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        act_dim: int,
        members: int = 1,
        seed: int | Sequence[int] = 0,
        *,
        alpha: float = 0.4,
        min_priority: float = 1.0,
        **options: Any,
    ):
        super().__init__(capacity, obs_dim, act_dim, members, seed, alpha=alpha, **options)
        self.min_priority = float(min_priority)
        self.max_priority[:] = self.min_priority**alpha

    def priority(self, td_errors: np.ndarray) -> np.ndarray:
        """p_i = max(|delta_i|, min_priority)^alpha (K, B)."""
        return lap_priority(td_errors, self.alpha, self.min_priority)

    def importance_weights(self, probs: np.ndarray, size: int | np.ndarray) -> np.ndarray:
        """All ones: LAP corrects nothing, its law is the loss it stands for."""
        return np.ones_like(probs)

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, None]:
        """PER's stratified draw by LAP's priorities; weights None (ones, kept on the device)."""
        idx, _ = super().sample_indices(batch_size)
        return idx, None

    @property
    def follows_progress(self) -> bool:
        """Only a window schedule moves with progress: LAP has no beta to anneal."""
        return self.window_schedule is not None
