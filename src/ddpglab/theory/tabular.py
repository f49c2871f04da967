"""Exact policy gradients on finite MDPs (Zhao, "Mathematical Foundations of RL", ch. 9.3).

Everything is float64 numpy and follows the book's matrix-vector notation: n states, a
softmax policy pi(a|s, theta) over linear preferences h(s, a, theta) = phi(s, a)^T theta
(tabular theta is the one-hot case, see :func:`tabular_features`), P_pi[s, s'] =
sum_a pi(a|s) p(s'|s, a) and r_pi(s) = sum_a pi(a|s) r(s, a).

The three gradient theorems share one shape (Theorem 9.1, eq. 9.8),
grad J = sum_s eta(s) sum_a grad pi(a|s) q_pi(s, a), computed by :func:`policy_gradient`;
they differ in the metric J, the state weighting eta and the action values q.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ddpglab.config import ConfigError

Array = np.ndarray
Metric = Literal["vbar0", "vbar", "rbar"]
_ATOL = 1e-9


class TheoryError(ConfigError):
    """An invalid MDP or policy, or a quantity that does not exist for it. One-line message."""


@dataclass(frozen=True)
class FiniteMDP:
    """A finite MDP: p[s, a, s'] = p(s'|s, a), r[s, a] = E[R | s, a], initial d0, discount.

    gamma may be 1 (the undiscounted average-reward case); discounted quantities require
    gamma < 1 and say so.
    """

    p: Array
    r: Array
    d0: Array
    gamma: float

    def __post_init__(self) -> None:
        p, r, d0 = (np.asarray(x, dtype=np.float64) for x in (self.p, self.r, self.d0))
        if p.ndim != 3 or p.shape[0] != p.shape[2]:
            raise TheoryError(f"p must have shape (S, A, S), got {p.shape}")
        n_states, n_actions = p.shape[:2]
        if r.shape != (n_states, n_actions):
            raise TheoryError(f"r must have shape {(n_states, n_actions)}, got {r.shape}")
        if d0.shape != (n_states,):
            raise TheoryError(f"d0 must have shape ({n_states},), got {d0.shape}")
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(r)) and np.all(np.isfinite(d0))):
            raise TheoryError("p, r and d0 must be finite")
        if np.any(p < 0):
            s, a, _ = np.argwhere(p < 0)[0]
            raise TheoryError(f"p(.|s={s}, a={a}) has a negative entry")
        row_sums = p.sum(axis=2)
        bad = np.argwhere(np.abs(row_sums - 1.0) > _ATOL)
        if len(bad):
            s, a = bad[0]
            raise TheoryError(f"p(.|s={s}, a={a}) sums to {row_sums[s, a]:.6g}, not 1")
        if np.any(d0 < 0) or abs(d0.sum() - 1.0) > _ATOL:
            raise TheoryError("d0 must be a probability distribution (non-negative, sums to 1)")
        if not 0.0 <= self.gamma <= 1.0:
            raise TheoryError(f"gamma must be in [0, 1], got {self.gamma}")
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "r", r)
        object.__setattr__(self, "d0", d0)
        object.__setattr__(self, "gamma", float(self.gamma))

    @property
    def n_states(self) -> int:
        return self.p.shape[0]

    @property
    def n_actions(self) -> int:
        return self.p.shape[1]

    def with_gamma(self, gamma: float) -> FiniteMDP:
        """The same dynamics and rewards under another discount."""
        return FiniteMDP(self.p, self.r, self.d0, gamma)

    def require_discounted(self) -> None:
        """Discounted values exist only for gamma in [0, 1)."""
        if not 0.0 <= self.gamma < 1.0:
            raise TheoryError(
                f"gamma must be in [0, 1) for discounted quantities, got {self.gamma}"
            )


def random_mdp(n_states: int, n_actions: int, seed: int, gamma: float = 0.9) -> FiniteMDP:
    """A dense random MDP: p(.|s, a) ~ Dirichlet(1), r ~ U(-1, 1), d0 ~ Dirichlet(1).

    Every p(s'|s, a) > 0 almost surely, so every P_pi is irreducible and aperiodic.
    """
    if n_states < 1 or n_actions < 1:
        raise TheoryError(f"need at least one state and action, got {n_states}, {n_actions}")
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    r = rng.uniform(-1.0, 1.0, size=(n_states, n_actions))
    d0 = rng.dirichlet(np.ones(n_states))
    return FiniteMDP(p, r, d0, gamma)


GRID_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left


def grid_world(
    size: int = 4,
    goal: tuple[int, int] | None = None,
    walls: tuple[tuple[int, int], ...] = (),
    slip: float = 0.1,
    gamma: float = 0.9,
    goal_reward: float = 1.0,
    step_reward: float = 0.0,
) -> FiniteMDP:
    """A continuing size x size grid world; states are the non-wall cells in row-major order.

    Actions move up/right/down/left; with probability ``slip`` the move is replaced by a
    uniformly random one, and a move into a wall or off the grid stays put (reward
    ``step_reward``). At the goal (default: bottom-right) every action pays ``goal_reward``
    and restarts the agent from d0, uniform over the non-goal cells, so the chain under
    any softmax policy is irreducible and d_pi exists.
    """
    goal = (size - 1, size - 1) if goal is None else goal
    if size < 2:
        raise TheoryError(f"grid size must be >= 2, got {size}")
    if not 0.0 <= slip <= 1.0:
        raise TheoryError(f"slip must be in [0, 1], got {slip}")
    cells = [(i, j) for i in range(size) for j in range(size) if (i, j) not in set(walls)]
    if goal not in cells:
        raise TheoryError(f"goal {goal} must be a non-wall cell of the {size}x{size} grid")
    index = {cell: k for k, cell in enumerate(cells)}
    n, g = len(cells), index[goal]
    d0 = np.full(n, 1.0 / (n - 1))
    d0[g] = 0.0
    move = np.zeros((n, len(GRID_MOVES), n))  # deterministic effect of each move
    for (i, j), s in index.items():
        for a, (di, dj) in enumerate(GRID_MOVES):
            move[s, a, index.get((i + di, j + dj), s)] = 1.0
    mean_move = move.mean(axis=1, keepdims=True)
    p = (1.0 - slip) * move + slip * mean_move
    p[g] = d0
    r = np.full((n, len(GRID_MOVES)), step_reward)
    r[g] = goal_reward
    return FiniteMDP(p, r, d0, gamma)


# --- policy ---------------------------------------------------------------------------


def tabular_features(n_states: int, n_actions: int) -> Array:
    """phi[s, a] = one-hot of index s * A + a, so h(s, a, theta) = theta[s, a] (theta flat)."""
    return np.eye(n_states * n_actions).reshape(n_states, n_actions, n_states * n_actions)


def softmax_policy(features: Array, theta: Array) -> Array:
    """pi(a|s) = exp(h(s, a)) / sum_b exp(h(s, b)), h(s, a) = phi(s, a)^T theta (eq. 9.12)."""
    h = features @ theta
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    return e / e.sum(axis=1, keepdims=True)


def grad_log_policy(features: Array, theta: Array) -> Array:
    """grad ln pi(a|s) = phi(s, a) - sum_b pi(b|s) phi(s, b); shape (S, A, d)."""
    pi = softmax_policy(features, theta)
    return features - np.einsum("sb,sbd->sd", pi, features)[:, None, :]


def grad_policy(features: Array, theta: Array) -> Array:
    """grad pi(a|s) = pi(a|s) grad ln pi(a|s) (eq. 9.11); shape (S, A, d)."""
    return softmax_policy(features, theta)[..., None] * grad_log_policy(features, theta)


# --- exact quantities -----------------------------------------------------------------


def transition_matrix(mdp: FiniteMDP, pi: Array) -> Array:
    """P_pi[s, s'] = sum_a pi(a|s) p(s'|s, a)."""
    return np.einsum("sa,sat->st", pi, mdp.p)


def expected_reward(mdp: FiniteMDP, pi: Array) -> Array:
    """r_pi(s) = sum_a pi(a|s) r(s, a)."""
    return (pi * mdp.r).sum(axis=1)


def discounted_visitation(mdp: FiniteMDP, pi: Array) -> Array:
    """Pr_pi(s'|s) = sum_k gamma^k [P_pi^k]_{ss'} = [(I - gamma P_pi)^-1]_{ss'} (Lemma 9.2)."""
    mdp.require_discounted()
    return np.linalg.inv(np.eye(mdp.n_states) - mdp.gamma * transition_matrix(mdp, pi))


def state_values(mdp: FiniteMDP, pi: Array) -> Array:
    """v_pi = (I - gamma P_pi)^-1 r_pi, the solution of the Bellman equation."""
    mdp.require_discounted()
    a = np.eye(mdp.n_states) - mdp.gamma * transition_matrix(mdp, pi)
    return np.linalg.solve(a, expected_reward(mdp, pi))


def action_values(mdp: FiniteMDP, pi: Array) -> Array:
    """q_pi(s, a) = r(s, a) + gamma sum_s' p(s'|s, a) v_pi(s')."""
    return mdp.r + mdp.gamma * mdp.p @ state_values(mdp, pi)


def discounted_state_weights(mdp: FiniteMDP, pi: Array) -> Array:
    """rho_pi^T = d0^T (I - gamma P_pi)^-1 (eq. 9.19); sums to 1 / (1 - gamma), not 1."""
    return mdp.d0 @ discounted_visitation(mdp, pi)


def stationary_distribution(transition: Array) -> Array:
    """The unique d with d^T P = d^T, d^T 1 = 1, solved as d^T (I - P + 1 1^T) = 1^T.

    Raises TheoryError when d is not unique: the eigenvalue 1 of P is not simple, i.e. the
    chain has more than one closed class (reducible).
    """
    n = transition.shape[0]
    singular = np.linalg.svd(np.eye(n) - transition, compute_uv=False)
    closed_classes = int(np.sum(singular < 1e-10 * max(1.0, singular[0])))
    if closed_classes > 1:
        raise TheoryError(
            f"stationary distribution is not unique: the chain is reducible "
            f"({closed_classes} closed classes), so d_pi and the average reward are undefined"
        )
    return np.linalg.solve((np.eye(n) - transition + 1.0).T, np.ones(n))


def policy_distribution(mdp: FiniteMDP, pi: Array) -> Array:
    """d_pi: the stationary distribution of P_pi (see :func:`stationary_distribution`)."""
    return stationary_distribution(transition_matrix(mdp, pi))


# --- metrics --------------------------------------------------------------------------


def metric(mdp: FiniteMDP, features: Array, theta: Array, name: Metric) -> float:
    """vbar0 = d0^T v_pi, vbar = d_pi^T v_pi, or rbar = d_pi^T r_pi (gamma-free)."""
    pi = softmax_policy(features, theta)
    if name == "vbar0":
        return float(mdp.d0 @ state_values(mdp, pi))
    d = policy_distribution(mdp, pi)
    if name == "vbar":
        return float(d @ state_values(mdp, pi))
    return float(d @ expected_reward(mdp, pi))


def metric_torch(
    mdp: FiniteMDP, features: Array, theta: torch.Tensor, name: Metric
) -> torch.Tensor:
    """The same closed forms as :func:`metric` in torch float64, for autograd."""
    p, r, d0, phi = (
        torch.as_tensor(x, dtype=torch.float64) for x in (mdp.p, mdp.r, mdp.d0, features)
    )
    pi = torch.softmax(phi @ theta, dim=1)
    transition = torch.einsum("sa,sat->st", pi, p)
    r_pi = (pi * r).sum(dim=1)
    eye = torch.eye(mdp.n_states, dtype=torch.float64)
    if name in ("vbar0", "vbar"):
        mdp.require_discounted()
        v = torch.linalg.solve(eye - mdp.gamma * transition, r_pi)
        if name == "vbar0":
            return d0 @ v
    ones = torch.ones(mdp.n_states, dtype=torch.float64)
    d = torch.linalg.solve((eye - transition + 1.0).T, ones)
    return d @ (v if name == "vbar" else r_pi)


def autograd_gradient(mdp: FiniteMDP, features: Array, theta: Array, name: Metric) -> Array:
    """grad_theta J by torch autograd through the closed form of the metric J."""
    t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(metric_torch(mdp, features, t, name), t)
    return grad.numpy()


def finite_difference_gradient(
    mdp: FiniteMDP, features: Array, theta: Array, name: Metric, eps: float = 1e-5
) -> Array:
    """Central differences: dJ/dtheta_i ~ (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)."""
    grad = np.empty_like(theta, dtype=np.float64)
    for i in range(theta.size):
        step = np.zeros_like(theta, dtype=np.float64)
        step[i] = eps
        plus = metric(mdp, features, theta + step, name)
        minus = metric(mdp, features, theta - step, name)
        grad[i] = (plus - minus) / (2.0 * eps)
    return grad


# --- the gradient theorems ------------------------------------------------------------


def policy_gradient(eta: Array, grad_pi: Array, q: Array) -> Array:
    """Theorem 9.1 (eq. 9.8): grad J = sum_s eta(s) sum_a grad pi(a|s) q(s, a)."""
    return np.einsum("s,sad,sa->d", eta, grad_pi, q)


def grad_vbar0(mdp: FiniteMDP, features: Array, theta: Array) -> Array:
    """Theorem 9.2 (exact): grad vbar0 = sum_s rho_pi(s) sum_a grad pi(a|s) q_pi(s, a),
    rho_pi^T = d0^T (I - gamma P_pi)^-1."""
    pi = softmax_policy(features, theta)
    return policy_gradient(
        discounted_state_weights(mdp, pi), grad_policy(features, theta), action_values(mdp, pi)
    )


def grad_rbar_discounted(mdp: FiniteMDP, features: Array, theta: Array) -> Array:
    """Theorem 9.3 (approximate): grad rbar = (1 - gamma) grad vbar
    ~ sum_s d_pi(s) sum_a grad pi(a|s) q_pi(s, a), with discounted q_pi.

    The neglected term is (1 - gamma) sum_s grad d_pi(s) v_pi(s); it vanishes as gamma -> 1.
    """
    pi = softmax_policy(features, theta)
    return policy_gradient(
        policy_distribution(mdp, pi), grad_policy(features, theta), action_values(mdp, pi)
    )


def poisson_matrix(transition: Array, d: Array) -> Array:
    """A = I - P_pi + 1 d_pi^T (Lemma 9.3: invertible when d_pi is the unique stationary
    distribution; A^-1 = I + sum_{k>=1} (P_pi^k - 1 d_pi^T)). Raises TheoryError if singular."""
    a = np.eye(len(d)) - transition + np.outer(np.ones(len(d)), d)
    if np.linalg.cond(a) > 1e12:
        raise TheoryError(
            f"A = I - P_pi + 1 d_pi^T is singular (condition {np.linalg.cond(a):.3g})"
        )
    return a


def differential_values(mdp: FiniteMDP, pi: Array) -> Array:
    """Theorem 9.4: v*_pi = (I - P_pi + 1 d_pi^T)^-1 r_pi solves the Poisson equation
    v = r_pi - rbar 1 + P_pi v; every solution is v*_pi + c 1."""
    transition = transition_matrix(mdp, pi)
    d = stationary_distribution(transition)
    return np.linalg.solve(poisson_matrix(transition, d), expected_reward(mdp, pi))


def poisson_residual(mdp: FiniteMDP, pi: Array, v: Array) -> Array:
    """v - (r_pi - rbar 1 + P_pi v), zero exactly for the solutions of eq. 9.23."""
    transition = transition_matrix(mdp, pi)
    r_pi = expected_reward(mdp, pi)
    rbar = stationary_distribution(transition) @ r_pi
    return v - (r_pi - rbar + transition @ v)


def differential_action_values(mdp: FiniteMDP, pi: Array) -> Array:
    """q_pi(s, a) = r(s, a) - rbar + sum_s' p(s'|s, a) v*_pi(s') (undiscounted)."""
    rbar = policy_distribution(mdp, pi) @ expected_reward(mdp, pi)
    return mdp.r - rbar + mdp.p @ differential_values(mdp, pi)


def grad_rbar_undiscounted(mdp: FiniteMDP, features: Array, theta: Array) -> Array:
    """Theorem 9.5 (exact): grad rbar = sum_s d_pi(s) sum_a grad pi(a|s) q_pi(s, a),
    with the differential q_pi of the Poisson equation. rbar = d_pi^T r_pi ignores gamma."""
    pi = softmax_policy(features, theta)
    return policy_gradient(
        policy_distribution(mdp, pi),
        grad_policy(features, theta),
        differential_action_values(mdp, pi),
    )


def theorem_9_3_error(
    mdp: FiniteMDP, features: Array, theta: Array, gammas: Array | list[float]
) -> Array:
    """Relative error |approx(gamma) - grad rbar| / |grad rbar| of Theorem 9.3 per gamma,
    where approx(gamma) = sum_s d_pi(s) sum_a grad pi(a|s) q_pi^gamma(s, a) and the exact
    grad rbar (gamma-free) comes from Theorem 9.5."""
    exact = grad_rbar_undiscounted(mdp, features, theta)
    scale = max(float(np.linalg.norm(exact)), np.finfo(np.float64).tiny)
    return np.array(
        [
            np.linalg.norm(grad_rbar_discounted(mdp.with_gamma(g), features, theta) - exact) / scale
            for g in gammas
        ]
    )


# --- optimal control ------------------------------------------------------------------


def value_iteration(mdp: FiniteMDP, tol: float = 1e-12, max_iter: int = 100_000) -> Array:
    """q*: iterate v <- max_a [r(s, a) + gamma sum_s' p(s'|s, a) v(s')] until the update
    moves v by less than tol; the greedy policy of q* is optimal."""
    mdp.require_discounted()
    v = np.zeros(mdp.n_states)
    for _ in range(max_iter):
        q = mdp.r + mdp.gamma * mdp.p @ v
        v_new = q.max(axis=1)
        if np.max(np.abs(v_new - v)) < tol:
            break
        v = v_new
    return mdp.r + mdp.gamma * mdp.p @ v_new
