"""Uniform replay: every stored transition is equally likely (Lillicrap et al. 2015)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ddpglab.replay.diagnostics import ReplayStats, uniform_stats
from ddpglab.replay.storage import ReplayBuffer


def recent_slots(pos: int, capacity: int, window: int, offsets: np.ndarray) -> np.ndarray:
    """Slot (pos - window + j) mod capacity for each offset j in [0, window): the window of
    the ``window`` most recent slots of a ring whose next write goes to ``pos``."""
    return (pos - window + offsets) % capacity


class UniformReplay(ReplayBuffer):
    """Sample B transitions per member uniformly, with replacement, from its ring.

    P(i) = 1 / |W| for each of the |W| transitions in the member's window (all it stores,
    unless a window is set); importance weights are 1. One draw per member from the
    member's own generator: a single shared draw would be faster but would make a
    member's minibatches depend on which members run beside it.
    """

    kind = "uniform"
    listing_order = 0

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, None]:
        idx = np.empty((self.members, batch_size), dtype=np.int64)
        windows = self.window_sizes().tolist()
        for k, (rng, window) in enumerate(zip(self.rngs, windows, strict=True)):
            if window == self.size:  # the whole ring: slots [0, size) in any order
                idx[k] = rng.integers(0, self.size, batch_size)
            else:
                idx[k] = recent_slots(
                    self.pos, self.capacity, window, rng.integers(0, window, batch_size)
                )
        return idx, None

    def sampling_law(self, batch_size: int | None = None) -> np.ndarray:
        """P(i) = 1 / |W| on the member's window W, 0 elsewhere (closed form)."""
        mask = self.window_mask()
        return mask / self.window_sizes()[:, None].astype(np.float64)

    def replay_stats(
        self, batch_size: int | None = None, members: Sequence[int] | None = None
    ) -> ReplayStats:
        """Closed form over the window W: E[age] = (|W| - 1) / 2, H = ln |W| (O(1))."""
        return self.closed_form_stats(*uniform_stats(self.window_sizes()), batch_size, members)
