"""What this machine can run: room for a replay buffer, the GPU a config names.

Checked before a run makes its env or writes a file, by ``ddpglab train``, the study
runner and the trainer itself.
"""

from __future__ import annotations

import os

import torch

from ddpglab.config import ConfigError
from ddpglab.replay import strategies


def check_buffer_fits(kind: str, capacity: int, obs_dim: int, act_dim: int, members: int) -> None:
    """Refuse a replay capacity whose storage exceeds this machine's physical memory."""
    needed = strategies()[kind].storage_bytes(capacity, obs_dim, act_dim, members)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > physical:
        raise ConfigError(
            f"replay.capacity {capacity} x {members} member(s) needs {needed / 2**30:.1f} GiB "
            f"of replay storage; this machine has {physical / 2**30:.1f} GiB"
        )


def training_device(name: str) -> torch.device:
    """The torch device ``train.device`` names; refuses a GPU this machine does not have."""
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"train.device {name}: torch sees no CUDA GPU on this machine")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"train.device {name}: this machine has {count} CUDA GPU(s)")
    return device
