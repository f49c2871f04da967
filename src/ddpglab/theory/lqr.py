"""The discounted linear-quadratic regulator, exactly: values, Q function, the deterministic
policy gradient and the optimal gain.

The system is x' = A x + B u + w, w ~ (0, W) independent of the past, with the stage cost
c(x, u) = x^T Q x + u^T R u (the env's reward is -c) and discount gamma in [0, 1); initial
states have second moment X0 = E[x0 x0^T]. A linear policy u = mu_K(x) = -K x has the
closed loop M_K = A - B K. Everything is written for the *cost* J(K) = E[sum_t gamma^t c_t],
which DDPG's return -J(K) mirrors: the return's gradient is minus the cost's.

Quantities are float64 numpy; :func:`cost_torch` repeats J(K) in torch for autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from ddpglab.theory.tabular import Array, TheoryError

_SYM_TOL = 1e-9


def _matrix(name: str, value: Array | list, shape: tuple[int, int]) -> Array:
    m = np.atleast_2d(np.asarray(value, dtype=np.float64))
    if m.shape != shape:
        raise TheoryError(f"{name} must have shape {shape}, got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise TheoryError(f"{name} must be finite")
    return m


def _psd(name: str, m: Array, definite: bool = False) -> None:
    if np.max(np.abs(m - m.T), initial=0.0) > _SYM_TOL * max(1.0, np.abs(m).max()):
        raise TheoryError(f"{name} must be symmetric")
    smallest = float(np.linalg.eigvalsh(m).min())
    if definite and smallest <= 0.0:
        raise TheoryError(f"{name} must be positive definite (smallest eigenvalue {smallest:.3g})")
    if smallest < -_SYM_TOL * max(1.0, np.abs(m).max()):
        raise TheoryError(f"{name} must be positive semidefinite (eigenvalue {smallest:.3g})")


def check_system(
    a: Array, b: Array, q: Array, r: Array, w: Array, x0: Array
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """Validated float64 copies of (A, B, Q, R, W, X0): A (n, n), B (n, m), Q, W, X0 (n, n)
    symmetric positive semidefinite, R (m, m) symmetric positive definite."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise TheoryError(f"A must be square, got shape {a.shape}")
    n = a.shape[0]
    b = np.asarray(b, dtype=np.float64)
    b = b.reshape(n, 1) if b.ndim == 1 else b
    if b.ndim != 2 or b.shape[0] != n:
        raise TheoryError(f"B must have shape ({n}, m), got {b.shape}")
    m = b.shape[1]
    a, b = _matrix("A", a, (n, n)), _matrix("B", b, (n, m))
    q, r = _matrix("Q", q, (n, n)), _matrix("R", r, (m, m))
    w, x0 = _matrix("W", w, (n, n)), _matrix("X0", x0, (n, n))
    _psd("Q", q)
    _psd("R", r, definite=True)
    _psd("W", w)
    _psd("X0", x0)
    return a, b, q, r, w, x0


@dataclass(frozen=True)
class LQR:
    """A discounted LQR problem; see the module docstring for the meaning of each matrix.

    Args:
        a, b: dynamics x' = A x + B u + w.
        q, r: stage cost x^T Q x + u^T R u.
        w: noise covariance E[w w^T] (zero for deterministic dynamics).
        x0: second moment E[x0 x0^T] of the initial state.
        gamma: discount in [0, 1).
    """

    a: Array
    b: Array
    q: Array
    r: Array
    w: Array
    x0: Array
    gamma: float

    def __post_init__(self) -> None:
        matrices = check_system(self.a, self.b, self.q, self.r, self.w, self.x0)
        for name, value in zip(("a", "b", "q", "r", "w", "x0"), matrices, strict=True):
            object.__setattr__(self, name, value)
        if not 0.0 <= self.gamma < 1.0:
            raise TheoryError(f"gamma must be in [0, 1) for the discounted LQR, got {self.gamma}")
        object.__setattr__(self, "gamma", float(self.gamma))

    @property
    def n_states(self) -> int:
        return self.a.shape[0]

    @property
    def n_actions(self) -> int:
        return self.b.shape[1]

    def with_gamma(self, gamma: float) -> LQR:
        """The same system under another discount."""
        return LQR(self.a, self.b, self.q, self.r, self.w, self.x0, gamma)

    def gain(self, k: Array | list) -> Array:
        """K as a float64 (m, n) matrix, or TheoryError naming the expected shape."""
        return _matrix("K", k, (self.n_actions, self.n_states))


# --- the value of a linear policy ---------------------------------------------------------


def closed_loop(lqr: LQR, k: Array) -> Array:
    """M_K = A - B K: x' = M_K x + w under u = -K x."""
    return lqr.a - lqr.b @ k


def discounted_radius(lqr: LQR, k: Array) -> float:
    """sqrt(gamma) rho(A - B K); the discounted cost of u = -K x is finite iff it is < 1."""
    return float(np.sqrt(lqr.gamma) * np.abs(np.linalg.eigvals(closed_loop(lqr, k))).max())


def require_stabilizing(lqr: LQR, k: Array) -> None:
    """Refuse a gain whose discounted cost is infinite (P_K does not exist)."""
    radius = discounted_radius(lqr, k)
    if radius >= 1.0:
        raise TheoryError(
            f"K does not stabilize the discounted system: sqrt(gamma) rho(A - B K) = "
            f"{radius:.4g} >= 1, so its cost is infinite"
        )


def value_matrix(lqr: LQR, k: Array) -> Array:
    """P_K, the solution of the discounted Lyapunov equation
    P = Q + K^T R K + gamma (A - B K)^T P (A - B K)."""
    k = lqr.gain(k)
    require_stabilizing(lqr, k)
    m = np.sqrt(lqr.gamma) * closed_loop(lqr, k)
    p = scipy.linalg.solve_discrete_lyapunov(m.T, lqr.q + k.T @ lqr.r @ k)
    return (p + p.T) / 2.0


def value_offset(lqr: LQR, p: Array) -> float:
    """c = gamma / (1 - gamma) tr(P W): the noise's share of V_K(x) = x^T P x + c.

    From V(x) = c(x, -K x) + gamma E[V(M x + w)] = x^T (...) x + gamma (tr(P W) + c).
    """
    return lqr.gamma / (1.0 - lqr.gamma) * float(np.trace(p @ lqr.w))


def state_value(lqr: LQR, k: Array, x: Array) -> Array:
    """V_K(x) = x^T P_K x + gamma / (1 - gamma) tr(P_K W), for x of shape (..., n)."""
    p = value_matrix(lqr, k)
    return np.einsum("...i,ij,...j->...", x, p, x) + value_offset(lqr, p)


def q_matrix(lqr: LQR, p: Array) -> Array:
    """H with Q_K(x, u) = [x; u]^T H [x; u] + c, given P = P_K:
    H = [[Q + g A^T P A, g A^T P B], [g B^T P A, R + g B^T P B]] (g = gamma).

    From Q_K(x, u) = c(x, u) + gamma E[V_K(A x + B u + w)]; its constant is the same c as V_K's.
    """
    ab = np.hstack([lqr.a, lqr.b])
    cost = scipy.linalg.block_diag(lqr.q, lqr.r)
    return cost + lqr.gamma * ab.T @ p @ ab


def action_value(lqr: LQR, k: Array, x: Array, u: Array) -> Array:
    """Q_K(x, u) = [x; u]^T H [x; u] + c for x (..., n) and u (..., m)."""
    p = value_matrix(lqr, k)
    z = np.concatenate([x, u], axis=-1)
    return np.einsum("...i,ij,...j->...", z, q_matrix(lqr, p), z) + value_offset(lqr, p)


def cost(lqr: LQR, k: Array) -> float:
    """J(K) = E_{x0}[V_K(x0)] = tr(P_K X0) + gamma / (1 - gamma) tr(P_K W)."""
    p = value_matrix(lqr, k)
    return float(np.trace(p @ lqr.x0)) + value_offset(lqr, p)


# --- the deterministic policy gradient ----------------------------------------------------


def discounted_state_moment(lqr: LQR, k: Array) -> Array:
    """Sigma_K = E_{x~rho_K}[x x^T] = sum_t gamma^t E[x_t x_t^T] (rho_K has mass 1 / (1 - g)):
    the Lyapunov equation Sigma = X0 + g W / (1 - g) + g M_K Sigma M_K^T."""
    k = lqr.gain(k)
    require_stabilizing(lqr, k)
    m = np.sqrt(lqr.gamma) * closed_loop(lqr, k)
    source = lqr.x0 + lqr.gamma / (1.0 - lqr.gamma) * lqr.w
    sigma = scipy.linalg.solve_discrete_lyapunov(m, source)
    return (sigma + sigma.T) / 2.0


def deterministic_policy_gradient(lqr: LQR, k: Array) -> Array:
    """grad_K J = E_{x~rho_K}[grad_K mu_K(x) grad_u Q_K(x, u)|_{u = mu_K(x)}] (Silver et al.).

    With mu_K(x) = -K x, d mu_i / d K_jl = -delta_ij x_l, and
    grad_u Q_K(x, u) = 2 (H_ux x + H_uu u) = 2 (H_ux - H_uu K) x, the integrand is
    -2 (H_ux - H_uu K) x x^T, quadratic in x, so the expectation needs only Sigma_K:
    grad_K J = 2 (H_uu K - H_ux) Sigma_K, H_uu = R + g B^T P B, H_ux = g B^T P A.
    """
    k = lqr.gain(k)
    h = q_matrix(lqr, value_matrix(lqr, k))
    n = lqr.n_states
    h_uu, h_ux = h[n:, n:], h[n:, :n]
    return 2.0 * (h_uu @ k - h_ux) @ discounted_state_moment(lqr, k)


def cost_torch(lqr: LQR, k: torch.Tensor) -> torch.Tensor:
    """J(K) in torch float64 for autograd, from the vectorised Lyapunov equation
    (I - gamma M^T (x) M^T) vec(P) = vec(Q + K^T R K) (column-major vec)."""
    a, b, q, r, w, x0 = (
        torch.as_tensor(x, dtype=torch.float64) for x in (lqr.a, lqr.b, lqr.q, lqr.r, lqr.w, lqr.x0)
    )
    n = lqr.n_states
    m = a - b @ k
    system = torch.eye(n * n, dtype=torch.float64) - lqr.gamma * torch.kron(m.T, m.T)
    source = q + k.T @ r @ k
    p = torch.linalg.solve(system, source.T.reshape(-1)).reshape(n, n).T
    return torch.trace(p @ x0) + lqr.gamma / (1.0 - lqr.gamma) * torch.trace(p @ w)


def autograd_gradient(lqr: LQR, k: Array) -> Array:
    """grad_K J by torch autograd through :func:`cost_torch`."""
    k = lqr.gain(k)
    require_stabilizing(lqr, k)
    t = torch.tensor(k, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(cost_torch(lqr, t), t)
    return grad.numpy()


def finite_difference_gradient(lqr: LQR, k: Array, eps: float = 1e-6) -> Array:
    """Central differences: dJ/dK_ij ~ (J(K + eps E_ij) - J(K - eps E_ij)) / (2 eps)."""
    k = lqr.gain(k)
    grad = np.empty_like(k)
    for idx in np.ndindex(k.shape):
        step = np.zeros_like(k)
        step[idx] = eps
        grad[idx] = (cost(lqr, k + step) - cost(lqr, k - step)) / (2.0 * eps)
    return grad


# --- the optimal gain ---------------------------------------------------------------------


def riccati(lqr: LQR) -> tuple[Array, Array]:
    """(K*, P*) from the discounted Riccati equation
    P = Q + g A^T P A - g^2 A^T P B (R + g B^T P B)^-1 B^T P A, K* = g (R + g B^T P B)^-1 B^T P A,
    solved as the undiscounted one for (sqrt(g) A, sqrt(g) B)."""
    root = np.sqrt(lqr.gamma)
    try:
        p = scipy.linalg.solve_discrete_are(root * lqr.a, root * lqr.b, lqr.q, lqr.r)
    except (np.linalg.LinAlgError, ValueError) as err:
        raise TheoryError(
            f"the discounted Riccati equation has no stabilizing solution: {err}"
        ) from None
    p = (p + p.T) / 2.0
    k = lqr.gamma * np.linalg.solve(lqr.r + lqr.gamma * lqr.b.T @ p @ lqr.b, lqr.b.T @ p @ lqr.a)
    return k, p


def policy_iteration(lqr: LQR, k0: Array, iterations: int = 50) -> Array:
    """Hewer's algorithm: K <- argmin_u Q_K = H_uu^-1 H_ux, i.e.
    K_{i+1} = g (R + g B^T P_i B)^-1 B^T P_i A with P_i = P_{K_i}; from a stabilizing K0 it
    stays stabilizing and converges to K* (an independent route to the Riccati gain)."""
    k = lqr.gain(k0)
    n = lqr.n_states
    for _ in range(iterations):
        h = q_matrix(lqr, value_matrix(lqr, k))
        k = np.linalg.solve(h[n:, n:], h[n:, :n])
    return k


def relative_error(k: Array, k_star: Array) -> float:
    """|K - K*|_F / |K*|_F."""
    return float(np.linalg.norm(k - k_star) / np.linalg.norm(k_star))


def random_lqr(n_states: int, n_actions: int, seed: int, gamma: float = 0.9) -> LQR:
    """A random LQR: A ~ N(0, 1/n) entries rescaled to spectral radius 1.05 (open-loop
    unstable), B ~ N(0, 1), Q = G G^T / n + I / 10 (G ~ N(0, 1)^(n x n)), R likewise with
    m = n_actions, W = I / 100, X0 = I. (A, B) is controllable almost surely, so K* exists."""
    if n_states < 1 or n_actions < 1:
        raise TheoryError(f"need at least one state and action, got {n_states}, {n_actions}")
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_states, n_states)) / np.sqrt(n_states)
    a *= 1.05 / np.abs(np.linalg.eigvals(a)).max()
    b = rng.normal(size=(n_states, n_actions))
    g, h = rng.normal(size=(n_states, n_states)), rng.normal(size=(n_actions, n_actions))
    q = g @ g.T / n_states + np.eye(n_states) / 10
    r = h @ h.T / n_actions + np.eye(n_actions) / 10
    return LQR(a, b, q, r, np.eye(n_states) / 100, np.eye(n_states), gamma)
