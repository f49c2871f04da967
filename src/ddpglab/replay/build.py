"""The replay buffer a validated ``replay`` config section describes.

The config layer validates ``replay`` and knows nothing of buffers; this module turns that
section into a buffer. It reads the section by its attributes only (``kind``, ``capacity``,
``n_step``, ``window``, ``combined`` and the ``replay.<kind>`` parameters), so the replay
package never imports the config module that imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from pydantic import BaseModel

from ddpglab.replay.registry import strategies
from ddpglab.replay.storage import ReplayBuffer
from ddpglab.replay.window import Schedule, WindowSchedule


class WindowSection(Protocol):
    """The ``replay.window`` section: a schedule from ``start`` to ``end`` transitions."""

    schedule: Schedule
    start: int
    end: int | None


class ReplaySection(Protocol):
    """The ``replay`` section; its strategy's parameters are the attribute named ``kind``."""

    kind: str
    capacity: int
    n_step: int
    window: WindowSection | None
    combined: bool


def make_buffer(
    kind: str,
    capacity: int,
    obs_dim: int,
    act_dim: int,
    members: int = 1,
    seed: int | Sequence[int] = 0,
    **params,
) -> ReplayBuffer:
    """Build the replay buffer named ``kind`` (see :func:`strategies`) with its own ``params``."""
    found = strategies()
    if kind not in found:
        raise ValueError(f"unknown replay kind '{kind}'; choose from {', '.join(found)}")
    return found[kind](capacity, obs_dim, act_dim, members, seed, **params)


def window_schedule(window: WindowSection | None) -> WindowSchedule | None:
    """The schedule a ``replay.window`` section describes (a constant one has no end of its
    own: it ends where it starts); None samples everything stored."""
    if window is None:
        return None
    end = window.start if window.end is None else window.end
    return WindowSchedule(window.schedule, window.start, end)


def strategy_params(replay: ReplaySection) -> dict[str, Any]:
    """Keyword arguments of the selected strategy: its ``replay.<kind>`` section, if any."""
    section = getattr(replay, replay.kind, None)
    return section.model_dump() if isinstance(section, BaseModel) else {}


def build_buffer(
    replay: ReplaySection,
    obs_dim: int,
    act_dim: int,
    seeds: Sequence[int],
    gamma: float,
    device: str | torch.device = "cpu",
) -> ReplayBuffer:
    """The buffer ``replay`` describes, one member per seed: its strategy and parameters,
    capacity, n-step returns discounted by ``gamma``, window schedule and CER, on ``device``."""
    return make_buffer(
        replay.kind,
        replay.capacity,
        obs_dim,
        act_dim,
        members=len(seeds),
        seed=seeds,
        device=device,
        gamma=gamma,
        n_step=replay.n_step,
        window=window_schedule(replay.window),
        combined=replay.combined,
        **strategy_params(replay),
    )
