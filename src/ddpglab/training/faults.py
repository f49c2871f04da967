"""Numerical faults: a NaN or Inf stops only the member it struck.

The checks here decide which members a non-finite value struck and how that is said; the
trainer then stops those members, and the others go on with their own numbers unchanged.
The losses and Q of each update are looked at on the host every ``train.finite_check_every``
updates (:class:`UpdateWatch`): on a GPU a look waits for the device, so it is not made after
every update there.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from ddpglab.agent import UpdateStats

#: Updates between two looks at the losses and Q on a GPU when ``train.finite_check_every``
#: is unset: a look is a host-device synchronisation, which would otherwise stall the queue
#: of kernels once per update; 100 makes it one in a hundred.
GPU_CHECK_EVERY = 100


def check_every(setting: int | None, device: torch.device) -> int:
    """The updates between two looks at the losses and Q: ``train.finite_check_every`` where
    set, else 1 on the CPU (a look costs nothing there) and :data:`GPU_CHECK_EVERY` on a GPU.
    The one place that decides it."""
    if setting is not None:
        return setting
    return 1 if device.type == "cpu" else GPU_CHECK_EVERY


class Fault(NamedTuple):
    """Non-finite values found: the members struck (K,) and, per member, the quantities
    where they were found (name -> (K,) values) and the member's env step then (K,). From
    :class:`UpdateWatch`, the quantities are those of each member's first non-finite update."""

    struck: np.ndarray
    quantities: dict[str, np.ndarray]
    env_steps: np.ndarray

    def message(self, k: int, seed: int) -> str:
        """What stopped member k: its first non-finite quantity and env step."""
        name, value = first_nonfinite(self.quantities, k)
        return fault_message(k, seed, name, value, int(self.env_steps[k]))


class UpdateWatch:
    """Each update's critic loss, actor loss and mean Q per member, kept on the training
    device until the host looks at them, every ``every`` updates or when the trainer asks.

    Nothing here reads a device tensor on the host until :meth:`look`, so a GPU runs the
    updates in between without waiting. A look reports, for each member struck since the
    previous one, its first non-finite update and that update's first non-finite quantity:
    the message names what a look after every update would have named.
    """

    QUANTITIES = ("critic loss", "actor loss", "Q")

    def __init__(self, members: int, every: int, device: torch.device):
        self.every = every
        self.values = torch.zeros(every, members, len(self.QUANTITIES), device=device)
        self.env_steps = np.zeros((every, members), dtype=np.int64)
        self.pending = 0  # updates kept since the latest look

    def add(self, env_steps: np.ndarray, stats: UpdateStats) -> bool:
        """Keep one update's (K,) critic loss, actor loss and mean Q on the device, with the
        members' ``env_steps`` (K,) at it; True when a look is due."""
        values = (stats.critic_loss, stats.actor_loss, stats.mean_q)
        torch.stack(values, dim=1, out=self.values[self.pending])
        self.env_steps[self.pending] = env_steps
        self.pending += 1
        return self.pending == self.every

    def look(self) -> Fault | None:
        """The members whose values went NaN or infinite since the latest look (None if
        none did); the kept updates are forgotten either way."""
        kept, self.pending = self.pending, 0
        if kept == 0:
            return None
        values = self.values[:kept].cpu().numpy()  # the one host-device synchronisation
        finite = np.isfinite(values).all(axis=2)  # (updates, K)
        if finite.all():
            return None
        first = np.argmin(finite, axis=0)  # each member's first non-finite update
        members = np.arange(finite.shape[1])
        at = values[first, members]  # (K, quantities), a copy
        return Fault(
            struck=~finite.all(axis=0),
            quantities={name: at[:, i] for i, name in enumerate(self.QUANTITIES)},
            env_steps=self.env_steps[first, members],
        )


def env_fault(next_obs: np.ndarray, rewards: np.ndarray, env_steps: np.ndarray) -> Fault | None:
    """The members whose reward or next observation (K, obs_dim) is NaN or infinite, at the
    members' ``env_steps`` (K,); None where all are finite."""
    finite = np.isfinite(rewards) & np.isfinite(next_obs).all(axis=1)
    if finite.all():
        return None
    quantities = {"reward": rewards, "observation": np.abs(next_obs).max(axis=1)}
    return Fault(~finite, quantities, env_steps)


def action_fault(actions: np.ndarray, env_steps: np.ndarray) -> Fault | None:
    """The members whose action (K, act_dim) is NaN or infinite, before their env receives it
    (at env step ``env_steps`` + 1, the step it would have taken); None where all are finite.
    An optimiser step can leave an actor's weights NaN while every loss was finite."""
    finite = np.isfinite(actions)
    if finite.all():
        return None
    first_bad = actions[np.arange(len(actions)), np.argmin(finite, axis=1)]
    return Fault(~finite.all(axis=1), {"action": first_bad}, env_steps + 1)


def zero_nonfinite(*arrays: np.ndarray) -> None:
    """Replace NaN and +-Inf by 0 in place, so that the replay structures (reward bins,
    strata, sum trees) stay finite for every member after one of them failed."""
    for array in arrays:
        np.nan_to_num(array, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def first_nonfinite(quantities: dict[str, Any], k: int) -> tuple[str, float]:
    """The name and value of the first of ``quantities`` (name -> (K,) values) that is NaN
    or infinite for member k."""
    return next(
        (name, float(values[k]))
        for name, values in quantities.items()
        if not math.isfinite(float(values[k]))
    )


def fault_message(k: int, seed: int, name: str, value: float, env_step: int) -> str:
    """``member 1 (seed 1): reward is nan at env step 70``: what stopped a member."""
    kind = "nan" if math.isnan(value) else "inf"
    return f"member {k} (seed {seed}): {name} is {kind} at env step {env_step}"


def finite_or_none(value: float) -> float | None:
    """A value for the store: None where it is NaN or infinite."""
    return float(value) if math.isfinite(value) else None
