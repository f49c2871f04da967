"""Storage arrays between host and device: lazily committed zeros and host views."""

from __future__ import annotations

import numpy as np
import torch


def zeros(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A float32 tensor of zeros; on the CPU backed by ``np.zeros``, whose pages the OS
    commits only when written, so a large, mostly empty buffer costs only what it holds."""
    if device.type == "cpu":
        return torch.from_numpy(np.zeros(shape, dtype=np.float32))
    return torch.zeros(shape, device=device)


def host_view(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """A numpy array of ``array``'s values: itself, a view of a CPU tensor, or a host copy."""
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return array
