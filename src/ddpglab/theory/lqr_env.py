"""``ddpglab/LQR-v0``: a linear-quadratic regulator as a gymnasium env.

x' = A x + B u + sigma_w n, n ~ N(0, I), reward -(x^T Q x + u^T R u), x0 ~ U(-s, s)^n; the
default is a lightly damped oscillator (a rotation by 11.9 degrees shrunk by 0.971 per
step): stable open loop, so K = 0 costs more than K* but stays finite, and an untrained
actor's rewards stay bounded while it learns the gain (docs/theory.md gives J(0) and
J(K*)). Episodes never terminate
(the regulator has no failure state); the registered time limit truncates them, and
DDPG bootstraps through truncation, so what it learns is the infinite-horizon Q_K.

Actions are clipped to [-u_max, u_max] and states to [-x_max, x_max]: bounded Box spaces
as DDPG needs them. Both bounds are wide enough that the optimal policy never meets them
from the initial box (``info["clipped"]`` tells when either binds); they only keep an
unstable early policy's rewards finite.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ddpglab.theory.lqr import LQR, Array, TheoryError, check_system

DEFAULT_A = ((0.95, 0.2), (-0.2, 0.95))
DEFAULT_B = ((0.0,), (0.2,))
DEFAULT_Q = ((1.0, 0.0), (0.0, 1.0))
DEFAULT_R = ((0.1,),)


class LQREnv(gym.Env):
    """A linear system with quadratic cost; see the module docstring.

    Args:
        a, b, q, r: dynamics x' = A x + B u + noise and cost x^T Q x + u^T R u.
        noise_std: sigma_w, the standard deviation of each state's Gaussian noise.
        init_scale: s, initial states uniform in [-s, s]^n (second moment s^2 / 3 I).
        action_bound: u_max, the action box [-u_max, u_max]^m.
        state_bound: x_max, the observation box; states are clipped to it.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        a: Array | list = DEFAULT_A,
        b: Array | list = DEFAULT_B,
        q: Array | list = DEFAULT_Q,
        r: Array | list = DEFAULT_R,
        noise_std: float = 0.05,
        init_scale: float = 1.0,
        action_bound: float = 5.0,
        state_bound: float = 20.0,
    ):
        for name, value in (
            ("noise_std", noise_std),
            ("init_scale", init_scale),
            ("action_bound", action_bound),
            ("state_bound", state_bound),
        ):
            if not (np.isfinite(value) and value >= 0.0):
                raise TheoryError(f"LQR-v0: {name} must be finite and >= 0, got {value}")
        if action_bound <= 0.0 or state_bound <= init_scale:
            raise TheoryError("LQR-v0: need action_bound > 0 and state_bound > init_scale")
        n = np.atleast_2d(np.asarray(a)).shape[0]
        eye = np.eye(n)
        self.a, self.b, self.q, self.r, _, _ = check_system(a, b, q, r, eye, eye)
        self.noise_std = float(noise_std)
        self.init_scale = float(init_scale)
        m = self.b.shape[1]
        self.action_space = gym.spaces.Box(-action_bound, action_bound, (m,), np.float32)
        self.observation_space = gym.spaces.Box(-state_bound, state_bound, (n,), np.float32)
        self._u_max, self._x_max = float(action_bound), float(state_bound)
        self._x = np.zeros(n)

    def problem(self, gamma: float) -> LQR:
        """The exact LQR this env samples, under discount gamma (the clips ignored)."""
        n = self.a.shape[0]
        w = self.noise_std**2 * np.eye(n)
        x0 = self.init_scale**2 / 3.0 * np.eye(n)
        return LQR(self.a, self.b, self.q, self.r, w, x0, gamma)

    def stage_cost(self, x: Array, u: Array) -> float:
        """c(x, u) = x^T Q x + u^T R u."""
        return float(x @ self.q @ x + u @ self.r @ u)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        s = self.init_scale
        self._x = self.np_random.uniform(-s, s, size=self.a.shape[0])
        return self._x.astype(np.float32), {}

    def step(self, action: Array) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        raw = np.asarray(action, dtype=np.float64).reshape(self.b.shape[1])
        u = np.clip(raw, -self._u_max, self._u_max)
        reward = -self.stage_cost(self._x, u)
        noise = self.noise_std * self.np_random.standard_normal(self.a.shape[0])
        x_next = self.a @ self._x + self.b @ u + noise
        self._x = np.clip(x_next, -self._x_max, self._x_max)
        clipped = bool(np.any(u != raw) or np.any(self._x != x_next))
        return self._x.astype(np.float32), reward, False, False, {"clipped": clipped}
