"""Uniform replay: every stored transition is equally likely (Lillicrap et al. 2015)."""

from __future__ import annotations

import numpy as np

from ddpglab.replay.storage import ReplayBuffer


class UniformReplay(ReplayBuffer):
    """Sample B transitions per member uniformly, with replacement, from its ring.

    P(i) = 1 / |D| for each of the |D| stored transitions; importance weights are 1.
    One draw per member from the member's own generator: a single shared draw would be
    faster but would make a member's minibatches depend on which members run beside it.
    """

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, None]:
        idx = np.stack([rng.integers(0, self.size, batch_size) for rng in self.rngs])
        return idx, None
