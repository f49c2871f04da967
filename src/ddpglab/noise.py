"""Exploration noise for K members: Ornstein-Uhlenbeck and Gaussian, in the action cube."""

from __future__ import annotations

from typing import Any

import numpy as np

from ddpglab.config import NoiseConfig
from ddpglab.seeding import member_rngs, rng_states, set_rng_states


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise, one process per member and action dimension.

    x_{t+1} = x_t + theta (mu - x_t) + sigma eps_t,  eps_t ~ N(0, I)   (dt = 1)
    returned noise: scale * x_{t+1}.  x starts at mu and is reset to mu per episode.

    The discrete process reverts to mu at rate theta and has stationary variance
    sigma^2 / (2 theta - theta^2).
    """

    def __init__(
        self,
        act_dim: int,
        seeds: list[int],
        scale: float = 0.1,
        theta: float = 0.15,
        sigma: float = 0.2,
        mu: float = 0.0,
    ):
        self.scale, self.theta, self.sigma, self.mu = scale, theta, sigma, mu
        self.rngs = member_rngs(seeds, "noise")
        self.state = np.full((len(seeds), act_dim), mu, dtype=np.float64)
        self._eps = np.empty_like(self.state)

    def reset(self, members: np.ndarray | None = None) -> None:
        """Put the process of the given members (default: all) back at mu."""
        if members is None:
            self.state[:] = self.mu
        else:
            self.state[members] = self.mu

    def __call__(self) -> np.ndarray:
        for rng, row in zip(self.rngs, self._eps, strict=True):
            rng.standard_normal(out=row)
        self.state += self.theta * (self.mu - self.state) + self.sigma * self._eps
        return (self.scale * self.state).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.state, "rngs": rng_states(self.rngs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state[...] = state["state"]
        set_rng_states(self.rngs, state["rngs"])


class GaussianNoise:
    """Uncorrelated noise: scale * eps_t, eps_t ~ N(0, I); ``scale`` is the standard deviation."""

    def __init__(self, act_dim: int, seeds: list[int], scale: float = 0.1):
        self.scale = scale
        self.rngs = member_rngs(seeds, "noise")
        self._eps = np.empty((len(seeds), act_dim), dtype=np.float64)

    def reset(self, members: np.ndarray | None = None) -> None:
        """Gaussian noise has no state."""

    def __call__(self) -> np.ndarray:
        for rng, row in zip(self.rngs, self._eps, strict=True):
            rng.standard_normal(out=row)
        return (self.scale * self._eps).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"rngs": rng_states(self.rngs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_states(self.rngs, state["rngs"])


class NoNoise:
    """Zero noise (pure exploitation)."""

    def __init__(self, act_dim: int, seeds: list[int]):
        self.zeros = np.zeros((len(seeds), act_dim), dtype=np.float32)

    def reset(self, members: np.ndarray | None = None) -> None:
        """Nothing to reset."""

    def __call__(self) -> np.ndarray:
        return self.zeros

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore."""


def make_noise(config: NoiseConfig, act_dim: int, seeds: list[int]):
    """The exploration process named by ``config.kind``."""
    if config.kind == "ou":
        return OrnsteinUhlenbeckNoise(
            act_dim, seeds, config.scale, config.theta, config.sigma, config.mu
        )
    if config.kind == "gaussian":
        return GaussianNoise(act_dim, seeds, config.scale)
    return NoNoise(act_dim, seeds)
