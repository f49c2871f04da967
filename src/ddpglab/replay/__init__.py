"""Replay buffers: one shared storage, one module per sampling strategy.

The strategies are found, not listed (:mod:`ddpglab.replay.registry`): a module of this
package, or an entry point in the group ``ddpglab.replay``, that defines a
:class:`ReplayBuffer` subclass declaring ``kind = "name"`` is a strategy.
"""

from __future__ import annotations

from ddpglab.replay.build import build_buffer, make_buffer
from ddpglab.replay.diagnostics import ReplayStats
from ddpglab.replay.params import StrategyParams
from ddpglab.replay.registry import strategies
from ddpglab.replay.storage import Batch, ReplayBuffer

__all__ = [
    "Batch",
    "ReplayBuffer",
    "ReplayStats",
    "StrategyParams",
    "build_buffer",
    "make_buffer",
    "strategies",
]
