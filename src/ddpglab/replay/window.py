"""The shrinking replay window: sample only among the most recent window(t) transitions.

The 2023 study's "variable buffer size: sample from more recent episodes". The window is a
schedule over each member's training progress f in [0, 1] (its share of the episode or
step budget spent), so member k's window depends on its own progress only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Schedule = Literal["constant", "linear", "exponential"]


def window_size(schedule: Schedule, start: int, end: int, fraction: np.ndarray) -> np.ndarray:
    """w(f), rounded to whole transitions and at least 1, for f clipped to [0, 1]:

    constant:    w(f) = start
    linear:      w(f) = start + (end - start) f
    exponential: w(f) = start (end / start)^f   (a constant factor per unit of progress)
    """
    f = np.clip(np.asarray(fraction, dtype=np.float64), 0.0, 1.0)
    if schedule == "constant":
        w = np.full_like(f, float(start))
    elif schedule == "linear":
        w = start + (end - start) * f
    else:
        w = start * (end / start) ** f
    return np.maximum(np.rint(w), 1).astype(np.int64)


@dataclass(frozen=True)
class WindowSchedule:
    """A window schedule: ``schedule`` from ``start`` to ``end`` transitions over training."""

    schedule: Schedule
    start: int
    end: int

    @classmethod
    def constant(cls, size: int) -> WindowSchedule:
        return cls("constant", size, size)

    def __call__(self, fraction: np.ndarray) -> np.ndarray:
        return window_size(self.schedule, self.start, self.end, fraction)
