"""Every exact check of the theory lab in one table (``ddpglab theory check``).

Each check compares a quantity computed from a theorem with the same quantity computed
another way, on several problems: random finite MDPs of a few sizes and a grid world
(``tabular``), random LQRs and the default ``ddpglab/LQR-v0`` system (``lqr``). A row holds
the largest absolute error over the problems, that error relative to the size of the
reference value, and whether the relative error is within the check's tolerance. Only
exact identities are here, with one exception: the LAP-PAL rows that say how close PAL
normalised per batch gets (a fixed-seed estimate); the sampled policy gradient estimators
converge statistically and are tested (and plotted) elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ddpglab.theory import lap_pal as lp
from ddpglab.theory import lqr as lq
from ddpglab.theory import tabular as tb
from ddpglab.theory.estimators import gradient_ascent
from ddpglab.theory.lqr_env import LQREnv

#: (abs error, reference scale) pairs, one per problem.
Errors = Iterator[tuple[float, float]]


@dataclass(frozen=True)
class CheckRow:
    """One line of the table."""

    metric: str
    method: str
    max_abs_error: float
    rel_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(self.rel_error <= self.tolerance)


def _diff(got: np.ndarray | float, want: np.ndarray | float) -> tuple[float, float]:
    """(max |got - want|, max |want|) elementwise."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))


# --- tabular ---------------------------------------------------------------------------


def _mdps(gamma: float) -> Iterator[tuple[tb.FiniteMDP, np.ndarray, np.ndarray]]:
    """(mdp, features, theta): random MDPs (tabular and linear features) and a grid world."""
    for i, (n_states, n_actions) in enumerate([(2, 2), (4, 3), (6, 4)]):
        mdp = tb.random_mdp(n_states, n_actions, seed=i, gamma=gamma)
        rng = np.random.default_rng(100 + i)
        for features in (
            tb.tabular_features(n_states, n_actions),
            rng.normal(size=(n_states, n_actions, 3)),
        ):
            yield mdp, features, rng.normal(size=features.shape[2])
    grid = tb.grid_world(walls=((1, 1),), gamma=gamma)
    features = tb.tabular_features(grid.n_states, grid.n_actions)
    yield grid, features, np.random.default_rng(7).normal(size=features.shape[2])


def _lemma_9_1() -> Errors:
    for mdp, f, th in _mdps(0.9):
        yield _diff(tb.metric(mdp, f, th, "rbar"), (1 - mdp.gamma) * tb.metric(mdp, f, th, "vbar"))


def _theorem(name: tb.Metric, gamma: float, reference: str) -> Callable[[], Errors]:
    theorem = tb.grad_vbar0 if name == "vbar0" else tb.grad_rbar_undiscounted
    other = tb.autograd_gradient if reference == "autograd" else tb.finite_difference_gradient

    def errors() -> Errors:
        for mdp, f, th in _mdps(gamma):
            yield _diff(theorem(mdp, f, th), other(mdp, f, th, name))

    return errors


def _theorem_9_3_exact_part() -> Errors:
    for mdp, f, th in _mdps(0.9):
        scaled = (1 - mdp.gamma) * tb.autograd_gradient(mdp, f, th, "vbar")
        yield _diff(scaled, tb.autograd_gradient(mdp, f, th, "rbar"))


def _poisson() -> Errors:
    for mdp, f, th in _mdps(1.0):
        pi = tb.softmax_policy(f, th)
        v_star = tb.differential_values(mdp, pi)
        residual = tb.poisson_residual(mdp, pi, v_star + 3.0)  # any v* + c 1 solves it
        yield _diff(residual, 0.0)[0], float(np.max(np.abs(v_star)))


def _ascent_to_optimum() -> Errors:
    mdp = tb.grid_world(slip=0.1, gamma=0.9)
    features = tb.tabular_features(mdp.n_states, mdp.n_actions)
    optimum = float(mdp.d0 @ tb.value_iteration(mdp).max(axis=1))
    result = gradient_ascent(
        mdp,
        features,
        np.zeros(features.shape[2]),
        lambda theta: tb.grad_vbar0(mdp, features, theta),
        learning_rate=10.0,
        steps=1000,
    )
    yield _diff(result.objective[-1], optimum)


# --- LQR -------------------------------------------------------------------------------


def _lqrs() -> Iterator[tuple[lq.LQR, np.ndarray]]:
    """(problem, a stabilizing gain K that is not optimal): random LQRs and LQR-v0's default.

    K is the Riccati gain of the same dynamics for another cost (Q = I, R = 10 I), which
    stabilizes the discounted system without being its optimum.
    """
    problems = [lq.random_lqr(n, m, seed=i) for i, (n, m) in enumerate([(2, 1), (3, 2), (4, 2)])]
    problems.append(LQREnv().problem(0.9))
    for p in problems:
        other = lq.LQR(p.a, p.b, np.eye(p.n_states), 10 * np.eye(p.n_actions), p.w, p.x0, p.gamma)
        yield p, lq.riccati(other)[0]


def _lyapunov_vs_series() -> Errors:
    for p, k in _lqrs():
        m, stage = np.sqrt(p.gamma) * lq.closed_loop(p, k), p.q + k.T @ p.r @ k
        series, term = np.zeros_like(stage), stage
        while np.abs(term).max() > 1e-14 * np.abs(series).max(initial=1.0):
            series, term = series + term, m.T @ term @ m
        yield _diff(lq.value_matrix(p, k), series)


def _q_of_policy_is_value() -> Errors:
    for p, k in _lqrs():
        x = np.random.default_rng(0).normal(size=(8, p.n_states))
        yield _diff(lq.action_value(p, k, x, x @ -k.T), lq.state_value(p, k, x))


def _dpg(reference: str) -> Callable[[], Errors]:
    other = lq.autograd_gradient if reference == "autograd" else lq.finite_difference_gradient

    def errors() -> Errors:
        for p, k in _lqrs():
            yield _diff(lq.deterministic_policy_gradient(p, k), other(p, k))

    return errors


def _riccati_vs_policy_iteration() -> Errors:
    for p, k in _lqrs():
        yield _diff(lq.policy_iteration(p, k), lq.riccati(p)[0])


def _gradient_vanishes_at_optimum() -> Errors:
    for p, k in _lqrs():
        k_star = lq.riccati(p)[0]
        scale = float(np.abs(lq.deterministic_policy_gradient(p, k)).max())
        yield float(np.abs(lq.deterministic_policy_gradient(p, k_star)).max()), scale


def _riccati_value_is_lyapunov_value() -> Errors:
    for p, _ in _lqrs():
        k_star, p_star = lq.riccati(p)
        yield _diff(lq.value_matrix(p, k_star), p_star)


# --- LAP and PAL (Fujimoto, Meger & Precup 2020) -----------------------------------------

#: (alpha, min_priority) of each problem; alpha = 1 and m < 1 included, where PAL's
#: weighting is strongest.
LAP_PAL_PROBLEMS = ((0.4, 1.0), (0.6, 2.0), (1.0, 0.5))


def _huber_lap_is_pal_uniform() -> Errors:
    for alpha, m in LAP_PAL_PROBLEMS:
        td_errors = lp.td_error_buffer(m)
        yield _diff(
            lp.pal_uniform_gradient(td_errors, alpha, m),
            lp.huber_under_lap_gradient(td_errors, alpha, m),
        )


def _batch_normalised_pal(batch_size: int) -> Callable[[], Errors]:
    def errors() -> Errors:
        for alpha, m in LAP_PAL_PROBLEMS:
            td_errors = lp.td_error_buffer(m)
            yield _diff(
                lp.batch_pal_expected_gradient(td_errors, alpha, m, batch_size),
                lp.huber_under_lap_gradient(td_errors, alpha, m),
            )

    return errors


@dataclass(frozen=True)
class Check:
    metric: str
    method: str
    tolerance: float
    errors: Callable[[], Errors]


CHECKS: tuple[Check, ...] = (
    Check("tabular: rbar = (1 - g) vbar (Lemma 9.1)", "closed forms", 1e-10, _lemma_9_1),
    Check("tabular: grad vbar0 (Thm 9.2)", "autograd", 1e-9, _theorem("vbar0", 0.9, "autograd")),
    Check("tabular: grad vbar0 (Thm 9.2)", "finite diff", 1e-7, _theorem("vbar0", 0.9, "fd")),
    Check(
        "tabular: (1 - g) grad vbar = grad rbar (Thm 9.3)",
        "autograd",
        1e-9,
        _theorem_9_3_exact_part,
    ),
    Check(
        "tabular: grad rbar, g = 1 (Thm 9.5)", "autograd", 1e-9, _theorem("rbar", 1.0, "autograd")
    ),
    Check("tabular: grad rbar, g = 1 (Thm 9.5)", "finite diff", 1e-7, _theorem("rbar", 1.0, "fd")),
    Check("tabular: Poisson eq. v* + c 1 (Thm 9.4)", "residual", 1e-10, _poisson),
    Check("tabular: gradient ascent -> optimum", "value iteration", 2e-3, _ascent_to_optimum),
    Check("lqr: V_K = x^T P_K x (Lyapunov)", "series sum", 1e-9, _lyapunov_vs_series),
    Check("lqr: Q_K(x, -K x) = V_K(x)", "closed forms", 1e-10, _q_of_policy_is_value),
    Check("lqr: deterministic policy gradient", "autograd", 1e-8, _dpg("autograd")),
    Check("lqr: deterministic policy gradient", "finite diff", 1e-6, _dpg("fd")),
    Check("lqr: K* (Riccati)", "policy iteration", 1e-9, _riccati_vs_policy_iteration),
    Check("lqr: grad J(K*) = 0", "DPG at K*", 1e-9, _gradient_vanishes_at_optimum),
    Check(
        "lqr: P* (Riccati) = P_K* (Lyapunov)",
        "closed forms",
        1e-9,
        _riccati_value_is_lyapunov_value,
    ),
    Check(
        "lap-pal: E grad Huber, LAP = E grad PAL, uniform",
        "autograd",
        1e-12,
        _huber_lap_is_pal_uniform,
    ),
    # Sampled, not exact: the batch's mean priority biases PAL's expected gradient by
    # O(1/B); the tolerance is 4% at B = 64 and shrinks as 1/B.
    Check(
        "lap-pal: same, PAL normalised per batch, B = 64",
        "sampled",
        0.05,
        _batch_normalised_pal(64),
    ),
    Check(
        "lap-pal: same, PAL normalised per batch, B = 256",
        "sampled",
        0.0125,
        _batch_normalised_pal(256),
    ),
)


def run_checks(checks: tuple[Check, ...] | None = None) -> list[CheckRow]:
    """Evaluate ``checks`` (default: all of :data:`CHECKS`); a row's relative error is the
    largest ratio, over its problems, of the abs error to the size of the reference."""
    rows = []
    for check in CHECKS if checks is None else checks:
        pairs = list(check.errors())
        abs_error = max(e for e, _ in pairs)
        rel_error = max(e / max(s, np.finfo(np.float64).tiny) for e, s in pairs)
        rows.append(CheckRow(check.metric, check.method, abs_error, rel_error, check.tolerance))
    return rows
