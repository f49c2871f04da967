"""n-step returns, assembled when a minibatch is drawn by walking forward from each slot.

The ring keeps one-step transitions and an episode-end flag (see
:mod:`ddpglab.replay.storage`); this walk sums up to n rewards from each sampled slot.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def n_step_returns(
    rewards: np.ndarray,
    episode_end: np.ndarray,
    successor: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    gamma: float,
    n_step: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R = sum_{i<k} gamma^i r_{t+i}, walking k <= n steps forward from slots ``start``.

    The walk stops early at the end of the episode (terminated or truncated) and at the
    newest stored transition (``successor`` gives -1). The target is then
    y = R + gamma^k (1 - terminated_last) Q'(s_{t+k}, mu'(s_{t+k})): it bootstraps from
    the next state of the last slot walked to, unless that state is terminal.

    Args:
        rewards: (K, S) stored one-step rewards.
        episode_end: (K, S) bool, True where a transition ended its episode.
        successor: maps slots (K, B) to the slots of the next transitions, or -1.
        start: (K, B) sampled slots.

    Returns:
        R (float64), the last slots walked to, and k, each (K, B).
    """
    members = np.arange(start.shape[0])[:, None]
    last = start
    total = rewards[members, last].astype(np.float64)
    steps = np.ones(start.shape, dtype=np.int64)
    alive = ~episode_end[members, last]
    for i in range(1, n_step):
        following = successor(last)
        alive &= following >= 0
        if not alive.any():
            break
        last = np.where(alive, following, last)
        total += np.where(alive, gamma**i * rewards[members, last], 0.0)
        steps += alive
        alive &= ~episode_end[members, last]
    return total, last, steps
