"""Replay buffers: one shared storage, one module per sampling strategy."""

from __future__ import annotations

from collections.abc import Sequence

from ddpglab.replay.prioritized import PrioritizedReplay
from ddpglab.replay.softmax import SoftmaxReplay
from ddpglab.replay.storage import Batch, ReplayBuffer
from ddpglab.replay.stratified import StratifiedReplay
from ddpglab.replay.uniform import UniformReplay

STRATEGIES: dict[str, type[ReplayBuffer]] = {
    "uniform": UniformReplay,
    "prioritized": PrioritizedReplay,
    "stratified": StratifiedReplay,
    "softmax": SoftmaxReplay,
}


def make_buffer(
    kind: str,
    capacity: int,
    obs_dim: int,
    act_dim: int,
    members: int = 1,
    seed: int | Sequence[int] = 0,
    **params,
) -> ReplayBuffer:
    """Build the replay buffer named ``kind`` (see ``STRATEGIES``) with its own ``params``."""
    if kind not in STRATEGIES:
        raise ValueError(f"unknown replay kind '{kind}'; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[kind](capacity, obs_dim, act_dim, members, seed, **params)


__all__ = [
    "STRATEGIES",
    "Batch",
    "PrioritizedReplay",
    "ReplayBuffer",
    "SoftmaxReplay",
    "StratifiedReplay",
    "UniformReplay",
    "make_buffer",
]
