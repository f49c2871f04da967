"""The policy gradient theorems (Zhao ch. 9.3) hold numerically on finite MDPs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddpglab.config import ConfigError
from ddpglab.theory.estimators import (
    estimator_statistics,
    gradient_ascent,
    sampled_gradient,
    truncation_horizon,
)
from ddpglab.theory.tabular import (
    FiniteMDP,
    TheoryError,
    action_values,
    autograd_gradient,
    differential_action_values,
    differential_values,
    discounted_state_weights,
    discounted_visitation,
    expected_reward,
    finite_difference_gradient,
    grad_rbar_discounted,
    grad_rbar_undiscounted,
    grad_vbar0,
    grid_world,
    metric,
    poisson_matrix,
    poisson_residual,
    policy_distribution,
    random_mdp,
    softmax_policy,
    state_values,
    tabular_features,
    theorem_9_3_error,
    transition_matrix,
    value_iteration,
)

EXAMPLES = settings(max_examples=25, deadline=None, derandomize=True)
DISCOUNTS = st.sampled_from([0.0, 0.3, 0.9, 0.99])


@st.composite
def problems(draw, gamma=DISCOUNTS):
    """(mdp, features, theta): a random MDP of 2..6 states and 2..4 actions, with tabular
    or 3-dimensional linear softmax features and random preferences."""
    n_states = draw(st.integers(2, 6))
    n_actions = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**16))
    mdp = random_mdp(n_states, n_actions, seed, gamma=draw(gamma))
    rng = np.random.default_rng(seed + 1)
    if draw(st.booleans()):
        features = tabular_features(n_states, n_actions)
    else:
        features = rng.normal(size=(n_states, n_actions, 3))
    theta = rng.normal(size=features.shape[2])
    return mdp, features, theta


def assert_gradients_close(got, want, rtol):
    """|got - want| <= rtol |want| componentwise, with |want|_inf as the scale near zero."""
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()))


# --- exact quantities -----------------------------------------------------------------


@EXAMPLES
@given(problems())
def test_values_distributions_and_lemma_9_1(problem):
    mdp, features, theta = problem
    pi = softmax_policy(features, theta)
    transition, r_pi = transition_matrix(mdp, pi), expected_reward(mdp, pi)
    v, q, d = state_values(mdp, pi), action_values(mdp, pi), policy_distribution(mdp, pi)

    np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(v, r_pi + mdp.gamma * transition @ v, atol=1e-10)  # Bellman
    np.testing.assert_allclose((pi * q).sum(axis=1), v, atol=1e-10)  # v = sum_a pi q
    assert np.all(d >= 0)
    np.testing.assert_allclose(d.sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(d @ transition, d, atol=1e-12)  # d^T P = d^T

    visitation = discounted_visitation(mdp, pi)  # sum_k gamma^k P^k, truncated at gamma^K < 1e-12
    series, term = np.zeros_like(transition), np.eye(mdp.n_states)
    for _ in range(truncation_horizon(mdp.gamma)):
        series, term = series + term, mdp.gamma * term @ transition
    np.testing.assert_allclose(visitation, series, atol=1e-9)
    np.testing.assert_allclose(discounted_state_weights(mdp, pi).sum(), 1 / (1 - mdp.gamma))

    rbar, vbar = metric(mdp, features, theta, "rbar"), metric(mdp, features, theta, "vbar")
    assert rbar == pytest.approx((1 - mdp.gamma) * vbar, rel=1e-10, abs=1e-12)  # Lemma 9.1


# --- gradient theorems against the gradient of the metric ------------------------------


@EXAMPLES
@given(problems())
def test_theorem_9_2_gradient_of_vbar0(problem):
    mdp, features, theta = problem
    theorem = grad_vbar0(mdp, features, theta)
    assert_gradients_close(theorem, autograd_gradient(mdp, features, theta, "vbar0"), 1e-10)
    assert_gradients_close(theorem, finite_difference_gradient(mdp, features, theta, "vbar0"), 1e-8)


@EXAMPLES
@given(problems(gamma=st.just(1.0)))
def test_theorem_9_5_gradient_of_undiscounted_rbar(problem):
    mdp, features, theta = problem
    theorem = grad_rbar_undiscounted(mdp, features, theta)
    assert_gradients_close(theorem, autograd_gradient(mdp, features, theta, "rbar"), 1e-10)
    assert_gradients_close(theorem, finite_difference_gradient(mdp, features, theta, "rbar"), 1e-8)


@EXAMPLES
@given(problems(gamma=st.sampled_from([0.5, 0.9])))
def test_theorem_9_3_is_an_approximation_that_tightens_as_gamma_goes_to_1(problem):
    mdp, features, theta = problem
    exact_rbar = autograd_gradient(mdp, features, theta, "rbar")
    # the exact half: grad rbar = (1 - gamma) grad vbar
    scaled = (1 - mdp.gamma) * autograd_gradient(mdp, features, theta, "vbar")
    assert_gradients_close(scaled, exact_rbar, 1e-9)
    # the approximation: its error is (1 - gamma) sum_s grad d_pi(s) v_pi(s) = O(1 - gamma)
    approx = grad_rbar_discounted(mdp, features, theta)
    error = np.linalg.norm(approx - exact_rbar) / max(np.linalg.norm(exact_rbar), 1e-300)
    assert error == pytest.approx(theorem_9_3_error(mdp, features, theta, [mdp.gamma])[0])
    errors = theorem_9_3_error(mdp, features, theta, [0.9, 0.99, 0.999, 0.9999])
    assert np.all(np.diff(errors) <= 1e-9)
    assert errors[-1] <= 2e-3 * errors[0] + 1e-9


@pytest.mark.parametrize("name", ["vbar0", "rbar"])
def test_gradient_theorems_on_the_grid_world(name):
    mdp = grid_world(walls=((1, 1),), gamma=0.9 if name == "vbar0" else 1.0)
    features = tabular_features(mdp.n_states, mdp.n_actions)
    theta = np.random.default_rng(0).normal(size=features.shape[2])
    theorem = (grad_vbar0 if name == "vbar0" else grad_rbar_undiscounted)(mdp, features, theta)
    assert_gradients_close(theorem, autograd_gradient(mdp, features, theta, name), 1e-10)
    assert_gradients_close(theorem, finite_difference_gradient(mdp, features, theta, name), 1e-8)


# --- the Poisson equation (Theorem 9.4, Lemma 9.3) --------------------------------------


@EXAMPLES
@given(problems(gamma=st.just(1.0)), st.floats(-10, 10))
def test_poisson_solution_is_unique_up_to_a_constant(problem, c):
    mdp, features, theta = problem
    pi = softmax_policy(features, theta)
    transition, d = transition_matrix(mdp, pi), policy_distribution(mdp, pi)
    n = mdp.n_states
    v_star = differential_values(mdp, pi)

    np.testing.assert_allclose(poisson_residual(mdp, pi, v_star), 0.0, atol=1e-10)
    np.testing.assert_allclose(poisson_residual(mdp, pi, v_star + c), 0.0, atol=1e-9)
    bump = np.zeros(n)
    bump[0] = 1.0  # not a multiple of 1: no longer a solution
    assert np.abs(poisson_residual(mdp, pi, v_star + bump)).max() > 1e-3

    # any solution of (I - P) v = (I - 1 d^T) r_pi is v* + c 1
    rhs = expected_reward(mdp, pi) - d @ expected_reward(mdp, pi)
    other = np.linalg.lstsq(np.eye(n) - transition, rhs, rcond=None)[0]
    np.testing.assert_allclose(other - v_star, (other - v_star)[0], atol=1e-9)

    # Lemma 9.3: A = I - P + 1 d^T is invertible, A^-1 = I + sum_{k>=1} (P^k - 1 d^T)
    a = poisson_matrix(transition, d)
    series = np.eye(n) + sum(
        np.linalg.matrix_power(transition, k) - np.outer(np.ones(n), d) for k in range(1, 400)
    )
    np.testing.assert_allclose(np.linalg.inv(a), series, atol=1e-8)
    q = differential_action_values(mdp, pi)
    np.testing.assert_allclose((pi * q).sum(axis=1), v_star, atol=1e-10)


# --- sampled estimators ---------------------------------------------------------------


@pytest.fixture(scope="module")
def estimator_curves():
    mdp = random_mdp(4, 3, seed=0, gamma=0.9)
    features = tabular_features(4, 3)
    theta = np.random.default_rng(1).normal(size=12)
    exact = grad_vbar0(mdp, features, theta)
    return exact, estimator_statistics(mdp, features, theta, exact, [400, 4000], seed=0)


@pytest.mark.parametrize("name", ["reinforce", "baseline", "td"])
def test_estimators_are_unbiased(estimator_curves, name):
    exact, curves = estimator_curves
    curve = curves[name]
    mean = curve.mean[-1]
    # total variance of the mean over d components: |mean - exact|^2 ~ variance on average
    assert curve.squared_error[-1] <= 4 * curve.variance[-1]
    # and each component within 5 standard errors (per-component variance <= total)
    assert np.all(np.abs(mean - exact) <= 5 * np.sqrt(curve.variance[-1]) + 1e-12)
    # the variance of the N-sample mean falls as 1/N
    assert 5 < curve.variance[0] / curve.variance[-1] < 20


def test_baseline_and_td_error_lower_the_variance(estimator_curves):
    _, curves = estimator_curves
    reinforce = curves["reinforce"].variance[-1]
    assert curves["baseline"].variance[-1] < 0.5 * reinforce
    assert curves["td"].variance[-1] < curves["baseline"].variance[-1]


# --- optimal control on the grid world ---------------------------------------------------


def greedy_is_optimal(q_star, pi):
    """Every state's most probable action is one of its optimal actions under q*."""
    chosen = q_star[np.arange(len(pi)), pi.argmax(axis=1)]
    return np.all(chosen >= q_star.max(axis=1) - 1e-9)


@pytest.mark.parametrize("walls", [(), ((1, 1), (2, 1))])
def test_exact_gradient_ascent_reaches_the_value_iteration_optimum(walls):
    mdp = grid_world(walls=walls, slip=0.1, gamma=0.9)
    features = tabular_features(mdp.n_states, mdp.n_actions)
    q_star = value_iteration(mdp)
    np.testing.assert_allclose(q_star, mdp.r + mdp.gamma * mdp.p @ q_star.max(axis=1), atol=1e-10)
    optimum = mdp.d0 @ q_star.max(axis=1)

    result = gradient_ascent(
        mdp,
        features,
        np.zeros(features.shape[2]),
        lambda theta: grad_vbar0(mdp, features, theta),
        learning_rate=10.0,
        steps=1000,
    )
    assert greedy_is_optimal(q_star, softmax_policy(features, result.theta))
    assert result.objective[-1] == pytest.approx(optimum, rel=2e-3)
    assert result.objective[-1] > result.objective[0] + 1.0


def test_td_error_gradient_ascent_approaches_the_optimum():
    mdp = grid_world(slip=0.1, gamma=0.9)
    features = tabular_features(mdp.n_states, mdp.n_actions)
    optimum = mdp.d0 @ value_iteration(mdp).max(axis=1)
    gradient = sampled_gradient(mdp, features, "td", n_trajectories=20, seed=0, horizon=60)
    result = gradient_ascent(mdp, features, np.zeros(features.shape[2]), gradient, 10.0, 150)
    assert result.objective[-1] == pytest.approx(optimum, rel=1e-2)


# --- bad input gives a clear one-line error --------------------------------------------------


def one_line_error(match, call, *args, **kwargs):
    with pytest.raises(TheoryError, match=match) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_bad_mdps_are_rejected():
    good = random_mdp(3, 2, seed=0)
    p = good.p.copy()
    p[1, 0, 2] += 0.1
    one_line_error(r"p\(\.\|s=1, a=0\) sums to 1\.1", FiniteMDP, p, good.r, good.d0, 0.9)
    p = good.p.copy()
    p[2, 1] = [1.5, -0.5, 0.0]
    one_line_error("negative", FiniteMDP, p, good.r, good.d0, 0.9)
    one_line_error("d0", FiniteMDP, good.p, good.r, np.array([0.5, 0.6, 0.0]), 0.9)
    one_line_error("shape", FiniteMDP, good.p, good.r[:, :1], good.d0, 0.9)
    for gamma in (-0.1, 1.5):
        one_line_error(r"gamma must be in \[0, 1\]", FiniteMDP, good.p, good.r, good.d0, gamma)
    undiscounted = good.with_gamma(1.0)  # fine for the average reward, not for values
    pi = np.full((3, 2), 0.5)
    one_line_error(r"gamma must be in \[0, 1\) for discounted", state_values, undiscounted, pi)
    one_line_error("wall", grid_world, walls=((3, 3),))


def test_reducible_chain_has_no_average_reward():
    p = np.zeros((3, 2, 3))
    p[0, :, 0] = 1.0  # two absorbing states: two closed classes
    p[1, :, 1] = 1.0
    p[2, :, :] = [0.5, 0.5, 0.0]
    mdp = FiniteMDP(p, np.ones((3, 2)), np.array([0.0, 0.0, 1.0]), 1.0)
    features = tabular_features(3, 2)
    theta = np.zeros(6)
    one_line_error("reducible", policy_distribution, mdp, softmax_policy(features, theta))
    one_line_error("reducible", grad_rbar_undiscounted, mdp, features, theta)
    one_line_error("reducible", differential_values, mdp, softmax_policy(features, theta))
