"""The discounted LQR (ddpglab.theory.lqr): exact values, the deterministic policy gradient,
the Riccati gain, the LQR-v0 env, the linear actor and quadratic critic, and DDPG moving
toward K*."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from ddpglab.config import ConfigError, load_config
from ddpglab.envs import make_env, rescale_action
from ddpglab.nets import LinearActor, QuadraticCritic
from ddpglab.theory import lqr as lq
from ddpglab.theory.lqr_ddpg import actor_gain, gain_return, run_lqr_experiment
from ddpglab.theory.lqr_env import LQREnv
from ddpglab.theory.tabular import TheoryError

EXAMPLES = settings(max_examples=20, deadline=None, derandomize=True)


@st.composite
def problems(draw):
    """(lqr, K): a random LQR of 1..4 states and 1..3 actions and a stabilizing, non-optimal
    gain (the Riccati gain of the same dynamics for another cost)."""
    n, m = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    p = lq.random_lqr(
        n, m, seed=draw(st.integers(0, 2**16)), gamma=draw(st.sampled_from([0.5, 0.9, 0.99]))
    )
    other = lq.LQR(p.a, p.b, np.eye(n), 10 * np.eye(m), p.w, p.x0, p.gamma)
    return p, lq.riccati(other)[0]


def default_problem(gamma: float = 0.9) -> lq.LQR:
    return LQREnv().problem(gamma)


def rollout_costs(p: lq.LQR, k, x0, n, rng, first_action=None, horizon=None):
    """Discounted costs of n simulated trajectories from x0 under u = -K x (after an
    optional first action), truncated where gamma^H < 1e-13."""
    horizon = horizon or int(np.ceil(np.log(1e-13) / np.log(p.gamma)))
    values, vectors = np.linalg.eigh(p.w)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))  # root root^T = W, also for W = 0
    x = np.tile(x0, (n, 1))
    total = np.zeros(n)
    for t in range(horizon):
        u = x @ -k.T if (t > 0 or first_action is None) else np.tile(first_action, (n, 1))
        total += p.gamma**t * (
            np.einsum("bi,ij,bj->b", x, p.q, x) + np.einsum("bi,ij,bj->b", u, p.r, u)
        )
        x = x @ p.a.T + u @ p.b.T + rng.standard_normal(x.shape) @ root.T
    return total


# --- exact values against Monte Carlo -----------------------------------------------------


def test_lyapunov_value_and_q_function_match_monte_carlo():
    p = default_problem()
    k = lq.riccati(p)[0] * 0.6  # stabilizing, not optimal
    rng = np.random.default_rng(0)
    x0, u0 = np.array([0.8, -0.5]), np.array([1.5])
    for want, first in ((lq.state_value(p, k, x0), None), (lq.action_value(p, k, x0, u0), u0)):
        costs = rollout_costs(p, k, x0, 4000, rng, first_action=first)
        standard_error = costs.std() / np.sqrt(len(costs))
        assert abs(costs.mean() - want) < 4 * standard_error + 1e-9
    # the noise's constant: with W = 0 the value is exactly the quadratic form
    quiet = lq.LQR(p.a, p.b, p.q, p.r, np.zeros((2, 2)), p.x0, p.gamma)
    assert rollout_costs(quiet, k, x0, 1, rng)[0] == pytest.approx(
        x0 @ lq.value_matrix(quiet, k) @ x0, rel=1e-10
    )


def test_env_returns_estimate_the_exact_cost():
    """The env's own rollouts, discounted, average to -J(K) (x0 ~ U(-1, 1)^2, its noise)."""
    p = default_problem(0.8)
    k = lq.riccati(p)[0]
    env = make_env("ddpglab/LQR-v0", max_episode_steps=150)  # 0.8^150 ~ 3e-15
    returns = []
    for episode in range(400):
        x, _ = env.reset(seed=episode)
        total, t, done = 0.0, 0, False
        while not done:
            x, r, terminated, truncated, _ = env.step(-k @ x.astype(np.float64))
            total += p.gamma**t * r
            t, done = t + 1, terminated or truncated
        returns.append(total)
    env.close()
    standard_error = np.std(returns) / np.sqrt(len(returns))
    assert abs(np.mean(returns) + lq.cost(p, k)) < 4 * standard_error


@EXAMPLES
@given(problems())
def test_discounted_state_moment_is_the_discounted_sum_of_second_moments(problem):
    p, k = problem
    m = lq.closed_loop(p, k)
    moment, series = p.x0.copy(), np.zeros_like(p.x0)
    for t in range(int(np.ceil(np.log(1e-14) / np.log(p.gamma))) * 3):
        series += p.gamma**t * moment
        moment = m @ moment @ m.T + p.w  # E[x_{t+1} x_{t+1}^T]
    np.testing.assert_allclose(lq.discounted_state_moment(p, k), series, rtol=1e-7, atol=1e-9)


# --- the deterministic policy gradient ------------------------------------------------------


@EXAMPLES
@given(problems())
def test_deterministic_policy_gradient_is_the_gradient_of_the_cost(problem):
    p, k = problem
    dpg = lq.deterministic_policy_gradient(p, k)
    scale = max(1.0, np.abs(dpg).max())
    np.testing.assert_allclose(dpg, lq.autograd_gradient(p, k), rtol=1e-8, atol=1e-8 * scale)
    fd = lq.finite_difference_gradient(p, k)
    np.testing.assert_allclose(dpg, fd, rtol=1e-5, atol=1e-5 * scale)


# --- the optimal gain ---------------------------------------------------------------------


@EXAMPLES
@given(problems(), st.integers(0, 2**16))
def test_riccati_gain_is_optimal(problem, seed):
    p, k = problem
    k_star, p_star = lq.riccati(p)
    np.testing.assert_allclose(lq.value_matrix(p, k_star), p_star, rtol=1e-8, atol=1e-10)
    grad_scale = np.abs(lq.deterministic_policy_gradient(p, k)).max()
    assert np.abs(lq.deterministic_policy_gradient(p, k_star)).max() <= 1e-8 * max(1.0, grad_scale)
    np.testing.assert_allclose(lq.policy_iteration(p, k), k_star, rtol=1e-7, atol=1e-9)
    rng = np.random.default_rng(seed)
    j_star = lq.cost(p, k_star)
    for _ in range(5):
        perturbed = k_star + 0.05 * rng.normal(size=k_star.shape) * max(1.0, np.abs(k_star).max())
        if lq.discounted_radius(p, perturbed) < 1.0:
            assert j_star <= lq.cost(p, perturbed) + 1e-12 * j_star


def test_default_system_is_open_loop_stable_and_its_optimum_is_not_clipped():
    p = default_problem()
    assert lq.discounted_radius(p, np.zeros((1, 2))) < 1.0  # K = 0 (DDPG's start) is finite
    k_star = lq.riccati(p)[0]
    assert lq.cost(p, k_star) < 0.6 * lq.cost(p, np.zeros((1, 2)))  # control matters
    env = LQREnv()
    assert np.abs(k_star).sum() * env.init_scale < env.action_space.high[0]


# --- the env --------------------------------------------------------------------------------


# The box is [-5, 5] on purpose (the env's units); the agent sees [-1, 1] through make_env.
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")
def test_lqr_env_passes_gymnasium_checks_and_follows_the_model():
    env = make_env("ddpglab/LQR-v0")
    assert env.spec.max_episode_steps == 100
    check_env(env.unwrapped, skip_render_check=True)
    quiet = LQREnv(noise_std=0.0)
    x, _ = quiet.reset(seed=1)
    u = np.array([0.7])
    x_next, reward, terminated, truncated, info = quiet.step(u)
    np.testing.assert_allclose(x_next, quiet.a @ x + quiet.b @ u, rtol=1e-6)
    assert reward == pytest.approx(-(x @ x + 0.1 * 0.49), rel=1e-6)
    assert not terminated and not truncated and not info["clipped"]
    assert quiet.step(np.array([50.0]))[4]["clipped"]  # the action box binds
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"b": [[1.0, 0.0, 0.0]]}, "B must have shape"),
        ({"q": np.eye(3)}, r"Q must have shape \(2, 2\)"),
        ({"r": [[0.0]]}, "R must be positive definite"),
        ({"q": [[1.0, 2.0], [0.0, 1.0]]}, "Q must be symmetric"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"state_bound": 0.5}, "state_bound"),
    ],
)
def test_bad_env_arguments_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LQREnv(**kwargs)


def test_bad_lqr_inputs_give_one_line_errors():
    p = default_problem()
    with pytest.raises(TheoryError, match="does not stabilize") as info:
        lq.cost(p, np.array([[-5.0, -5.0]]))  # positive feedback
    assert "\n" not in str(info.value)
    for bad in (1.0, -0.1):
        with pytest.raises(TheoryError, match=r"gamma must be in \[0, 1\)"):
            p.with_gamma(bad)
    with pytest.raises(TheoryError, match=r"K must have shape \(1, 2\)"):
        lq.value_matrix(p, np.zeros((2, 2)))
    with pytest.raises(TheoryError, match="A must be square"):
        lq.LQR(np.ones((2, 3)), p.b, p.q, p.r, p.w, p.x0, 0.9)


# --- networks ---------------------------------------------------------------------------------


def test_linear_actor_is_state_feedback_and_members_are_independent():
    alone = LinearActor(2, 1, [], seeds=[7])
    pair = LinearActor(2, 1, [], seeds=[3, 7])
    torch.testing.assert_close(pair.weight[1], alone.weight[0])
    obs = torch.randn(2, 5, 2)
    torch.testing.assert_close(pair(obs), torch.bmm(obs, pair.weight))
    # the gain read off the actor is the one the env sees through rescale_action
    env = LQREnv()
    high = env.action_space.high
    k = actor_gain(pair.weight[0].detach().numpy(), high)
    with torch.no_grad():
        a = pair(obs)[0].numpy()
    u = rescale_action(a, env.action_space.low, high)
    np.testing.assert_allclose(u, obs[0].numpy() @ -k.T, rtol=1e-5, atol=1e-6)


def test_quadratic_critic_holds_the_lqr_q_function():
    p = default_problem()
    k = lq.riccati(p)[0]
    h = lq.q_matrix(p, lq.value_matrix(p, k))
    c = lq.value_offset(p, lq.value_matrix(p, k))
    critic = QuadraticCritic(2, 1, [], seeds=[0]).double()
    rows, cols = torch.triu_indices(3, 3)
    with torch.no_grad():  # w_ij = H_ii on the diagonal, 2 H_ij off it
        w = torch.tensor([h[i, j] * (1 if i == j else 2) for i, j in zip(rows, cols, strict=True)])
        critic.weights[0][0, :, 0] = w
        critic.biases[0].fill_(c)
    x, u = (
        np.random.default_rng(0).normal(size=(6, 2)),
        np.random.default_rng(1).normal(size=(6, 1)),
    )
    got = critic(torch.from_numpy(x)[None], torch.from_numpy(u)[None])[0, :, 0].detach().numpy()
    np.testing.assert_allclose(got, lq.action_value(p, k, x, u), rtol=1e-10)


def test_default_agent_networks_are_unchanged():
    config = load_config("pendulum")
    assert (config.agent.actor, config.agent.critic) == ("mlp", "mlp")


# --- DDPG on LQR-v0 ---------------------------------------------------------------------------


def test_short_ddpg_run_moves_the_gain_toward_the_riccati_optimum():
    config = load_config(
        "lqr", overrides={"train.episodes": 10, "train.seeds": [0], "train.torch_threads": 1}
    )
    result = run_lqr_experiment(config, eval_episodes=2)
    (member,) = result.members
    start_error = member.history[0][1]
    assert start_error > 0.9  # near-zero initial weights: K ~ 0
    assert member.gain_error < 0.7 * start_error
    errors = [e for _, e in member.history]
    assert errors[-1] == pytest.approx(member.gain_error)
    assert np.isfinite(member.cost_gap) and member.cost_gap > 0.0  # K* is the optimum


def test_gain_returns_use_common_random_numbers():
    k = lq.riccati(default_problem())[0]
    first = gain_return("ddpglab/LQR-v0", k, 3, seed=5, horizon=20)
    np.testing.assert_array_equal(first, gain_return("ddpglab/LQR-v0", k, 3, seed=5, horizon=20))
    assert np.all(first < 0)


def test_experiment_refuses_configs_it_cannot_compare():
    with pytest.raises(ConfigError, match="linear actor"):
        run_lqr_experiment(load_config("lqr", overrides={"agent.actor": "mlp"}))
    with pytest.raises(ConfigError, match="env.id"):
        run_lqr_experiment(load_config("pendulum", overrides={"agent.actor": "linear"}))
