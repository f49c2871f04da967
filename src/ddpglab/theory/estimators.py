"""Sampled estimates of grad vbar0 (Theorem 9.2) and policy gradient ascent on finite MDPs.

The exact gradient E_{S~rho_pi, A~pi}[grad ln pi(A|S) q_pi(S, A)] is estimated from N
trajectories S_0 ~ d0, A_t ~ pi(.|S_t), S_{t+1} ~ p(.|S_t, A_t), R_{t+1} = r(S_t, A_t), each
giving one sample sum_t gamma^t grad ln pi(A_t|S_t) psi_t, where psi_t is
- ``reinforce``: the Monte Carlo return G_t = sum_{k>=t} gamma^(k-t) R_{k+1};
- ``baseline``:  G_t - v_pi(S_t) (same mean, since E[grad ln pi(A|s)] = 0; lower variance);
- ``td``:        the TD error delta_t = R_{t+1} + gamma v_pi(S_{t+1}) - v_pi(S_t), an
  unbiased estimate of the advantage q_pi(S_t, A_t) - v_pi(S_t) (exact v_pi is used).
Trajectories are cut at a horizon H with gamma^H < 1e-12, so the truncation bias is below
1e-12 max|r| / (1 - gamma).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ddpglab.theory.tabular import (
    Array,
    FiniteMDP,
    grad_log_policy,
    metric,
    softmax_policy,
    state_values,
)

Estimator = Literal["reinforce", "baseline", "td"]
ESTIMATORS: tuple[Estimator, ...] = ("reinforce", "baseline", "td")


def truncation_horizon(gamma: float, tol: float = 1e-12) -> int:
    """The smallest H with gamma^H < tol."""
    return 1 if gamma == 0.0 else math.ceil(math.log(tol) / math.log(gamma))


def _sample_categorical(rng: np.random.Generator, probs: Array) -> Array:
    """One index per row of probs (N, K), by inverting the row's cumulative distribution."""
    u = rng.random((probs.shape[0], 1))
    return np.minimum((np.cumsum(probs, axis=1) < u).sum(axis=1), probs.shape[1] - 1)


def gradient_samples(
    mdp: FiniteMDP,
    features: Array,
    theta: Array,
    n_trajectories: int,
    rng: np.random.Generator,
    horizon: int | None = None,
) -> dict[Estimator, Array]:
    """Per-trajectory samples sum_t gamma^t grad ln pi(A_t|S_t) psi_t of each estimator,
    all from the same trajectories; each value has shape (n_trajectories, d)."""
    mdp.require_discounted()
    horizon = truncation_horizon(mdp.gamma) if horizon is None else horizon
    pi = softmax_policy(features, theta)
    grad_log = grad_log_policy(features, theta)
    v = state_values(mdp, pi)
    n = n_trajectories
    states = np.empty((n, horizon + 1), dtype=np.int64)
    actions = np.empty((n, horizon), dtype=np.int64)
    states[:, 0] = _sample_categorical(rng, np.broadcast_to(mdp.d0, (n, mdp.n_states)))
    for t in range(horizon):
        actions[:, t] = _sample_categorical(rng, pi[states[:, t]])
        states[:, t + 1] = _sample_categorical(rng, mdp.p[states[:, t], actions[:, t]])
    rewards = mdp.r[states[:, :-1], actions]
    samples = {name: np.zeros((n, features.shape[2])) for name in ESTIMATORS}
    future_return = np.zeros(n)  # G_t, accumulated backwards: G_t = R_{t+1} + gamma G_{t+1}
    for t in reversed(range(horizon)):
        future_return = rewards[:, t] + mdp.gamma * future_return
        s, s_next = states[:, t], states[:, t + 1]
        psi = {
            "reinforce": future_return,
            "baseline": future_return - v[s],
            "td": rewards[:, t] + mdp.gamma * v[s_next] - v[s],
        }
        score = mdp.gamma**t * grad_log[s, actions[:, t]]
        for name in ESTIMATORS:
            samples[name] += psi[name][:, None] * score
    return samples


@dataclass(frozen=True)
class EstimatorCurve:
    """One estimator's N-sample mean for each N in sample_counts.

    mean[k] averages the first sample_counts[k] samples; variance[k] is the total variance
    (trace of the covariance) of that mean, tr Cov / N; squared_error[k] = |mean - exact|^2.
    """

    sample_counts: Array
    mean: Array
    variance: Array
    squared_error: Array


def estimator_statistics(
    mdp: FiniteMDP,
    features: Array,
    theta: Array,
    exact: Array,
    sample_counts: list[int],
    seed: int,
) -> dict[Estimator, EstimatorCurve]:
    """Mean, variance (tr Cov / N) and squared error of each estimator against sample count."""
    rng = np.random.default_rng(seed)
    samples = gradient_samples(mdp, features, theta, max(sample_counts), rng)
    counts = np.asarray(sample_counts)
    curves = {}
    for name, x in samples.items():
        means = np.stack([x[:k].mean(axis=0) for k in counts])
        variances = np.array([x[:k].var(axis=0, ddof=1).sum() / k for k in counts])
        errors = ((means - exact) ** 2).sum(axis=1)
        curves[name] = EstimatorCurve(counts, means, variances, errors)
    return curves


def sampled_gradient(
    mdp: FiniteMDP,
    features: Array,
    estimator: Estimator,
    n_trajectories: int,
    seed: int,
    horizon: int | None = None,
) -> Callable[[Array], Array]:
    """theta -> the estimator's mean over n_trajectories fresh trajectories (seeded)."""
    rng = np.random.default_rng(seed)

    def gradient(theta: Array) -> Array:
        samples = gradient_samples(mdp, features, theta, n_trajectories, rng, horizon)
        return samples[estimator].mean(axis=0)

    return gradient


@dataclass(frozen=True)
class AscentResult:
    """Final parameters and the exact objective vbar0 before each step and at the end."""

    theta: Array
    objective: Array


def gradient_ascent(
    mdp: FiniteMDP,
    features: Array,
    theta0: Array,
    gradient: Callable[[Array], Array],
    learning_rate: float,
    steps: int,
) -> AscentResult:
    """theta_{k+1} = theta_k + alpha g(theta_k), g the exact or a sampled grad vbar0."""
    theta = np.array(theta0, dtype=np.float64)
    objective = [metric(mdp, features, theta, "vbar0")]
    for _ in range(steps):
        theta = theta + learning_rate * gradient(theta)
        objective.append(metric(mdp, features, theta, "vbar0"))
    return AscentResult(theta, np.array(objective))
