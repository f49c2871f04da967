"""Numerical faults: a NaN or Inf stops only the member it struck.

The checks here decide which members a non-finite value struck and how that is said; the
trainer then stops those members, and the others go on with their own numbers unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def env_output_finite(next_obs: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """(K,) True where member k's reward and next observation are all finite."""
    return np.isfinite(rewards) & np.isfinite(next_obs).all(axis=1)


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
