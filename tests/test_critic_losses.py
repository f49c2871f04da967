"""The critic's losses (mse, huber, pal) against hand computations, their use by the
agent, the TD error twin critics report, the config refusals and tiny training runs."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
import torch
from cli_support import FAST, assert_refused, run_cli
from test_agent import ACT_DIM, OBS_DIM, make_batch

from ddpglab.agent import DDPGAgent
from ddpglab.config import AgentConfig, load_config
from ddpglab.critic_losses import (
    critic_loss_for,
    huber_loss,
    mse_loss,
    pal_loss,
    priority_td_error,
)

SQRT2 = math.sqrt(2.0)


def loss_and_grad(loss, q_values, y_values, weights=None):
    """(loss, d loss / dq) in float64 for one member (K = 1); q_values may hold critics."""
    y = torch.tensor([y_values], dtype=torch.float64)
    q = torch.tensor(q_values, dtype=torch.float64).reshape(-1, 1, y.shape[-1]).squeeze(0)
    q.requires_grad_(True)
    w = torch.ones_like(y) if weights is None else torch.tensor([weights], dtype=torch.float64)
    value = loss(q, y, w)
    value.sum().backward()
    return value.detach(), q.grad


# -- huber --------------------------------------------------------------------------------------


def test_huber_is_quadratic_below_the_threshold_and_linear_beyond_by_hand():
    # delta = y - q: 0.5 and -0.3 below d = 1; 2 and -3 beyond
    value, grad = loss_and_grad(
        lambda q, y, w: huber_loss(q, y, w, delta=1.0), [0.0] * 4, [0.5, -0.3, 2.0, -3.0]
    )
    terms = [0.5 * 0.25, 0.5 * 0.09, 1.0 * (2.0 - 0.5), 1.0 * (3.0 - 0.5)]
    torch.testing.assert_close(value, torch.tensor([sum(terms) / 4], dtype=torch.float64))
    # d/dq H(y - q) = -H'(delta): -delta below d, -d sign(delta) beyond; over B = 4
    want = torch.tensor([[-0.5, 0.3, -1.0, 1.0]], dtype=torch.float64) / 4
    torch.testing.assert_close(grad, want)


def test_huber_threshold_and_importance_weights():
    value, grad = loss_and_grad(
        lambda q, y, w: huber_loss(q, y, w, delta=2.0), [1.0, 1.0], [2.5, -4.0], [0.5, 2.0]
    )
    # delta 1.5 (below 2), -5 (beyond): terms 1.125 and 2 (5 - 1) = 8, weighted 0.5 and 2
    torch.testing.assert_close(value, torch.tensor([(0.5 * 1.125 + 2.0 * 8.0) / 2]).double())
    torch.testing.assert_close(grad, torch.tensor([[-0.5 * 1.5, 2.0 * 2.0]]).double() / 2)


def test_huber_equals_half_the_mse_when_every_error_is_below_the_threshold():
    gen = torch.Generator().manual_seed(0)
    q, y = torch.randn(3, 2, 16, generator=gen), torch.randn(2, 16, generator=gen)
    w = torch.rand(2, 16, generator=gen)
    torch.testing.assert_close(huber_loss(q, y, w, delta=100.0), 0.5 * mse_loss(q, y, w))


# -- pal ----------------------------------------------------------------------------------------


def test_pal_by_hand_on_both_sides_of_min_priority():
    alpha, m = 0.5, 2.0
    value, grad = loss_and_grad(
        lambda q, y, w: pal_loss(q, y, w, alpha, m), [0.0, 0.0], [1.0, -4.0]
    )
    # l(1) = m^a 1^2 / 2 (|1| < m); l(-4) = m 4^(1.5) / 1.5; normaliser mean(m^a, 4^a)
    norm = (SQRT2 + 2.0) / 2
    want = (SQRT2 * 0.5 + 2.0 * 8.0 / 1.5) / 2 / norm
    torch.testing.assert_close(value, torch.tensor([want], dtype=torch.float64))
    # l'(1) = m^a 1 = sqrt 2; l'(-4) = m 4^a sign = -4; d/dq = -l' / (B norm), the
    # normaliser held fixed (no gradient through it)
    torch.testing.assert_close(grad, torch.tensor([[-SQRT2, 4.0]]).double() / (2 * norm))


def test_pal_at_min_priority_one_is_half_square_or_power_over_one_plus_alpha():
    alpha = 0.4
    value, _ = loss_and_grad(lambda q, y, w: pal_loss(q, y, w, alpha, 1.0), [0.0] * 2, [0.5, 3.0])
    norm = (1.0 + 3.0**alpha) / 2
    want = (0.5 * 0.25 + 3.0 ** (1 + alpha) / (1 + alpha)) / 2 / norm
    torch.testing.assert_close(value, torch.tensor([want], dtype=torch.float64))


def test_pal_with_alpha_zero_is_the_huber_loss_up_to_a_constant_gradient_for_gradient():
    y = [0.3, -0.7, 1.5, -6.0]
    _, pal_grad = loss_and_grad(lambda q, y, w: pal_loss(q, y, w, 0.0, 1.0), [0.0] * 4, y)
    _, huber_grad = loss_and_grad(lambda q, y, w: huber_loss(q, y, w, 1.0), [0.0] * 4, y)
    torch.testing.assert_close(pal_grad, huber_grad)


def test_pal_weights_multiply_the_terms_not_the_normaliser():
    alpha, m = 0.5, 1.0
    value, _ = loss_and_grad(
        lambda q, y, w: pal_loss(q, y, w, alpha, m), [0.0, 0.0], [0.5, 4.0], [3.0, 0.5]
    )
    norm = (1.0 + 2.0) / 2  # unweighted: mean(max(0.5, 1)^0.5, 4^0.5)
    want = (3.0 * 0.125 + 0.5 * 4.0**1.5 / 1.5) / 2 / norm
    torch.testing.assert_close(value, torch.tensor([want], dtype=torch.float64))


def test_twin_critics_pal_sums_over_critics_with_the_normaliser_of_the_larger_error():
    alpha, m = 0.5, 1.0
    # critic 1's errors: 0.5, -4; critic 2's: 2, 0.5 -> the larger: 2 and 4
    value, grad = loss_and_grad(
        lambda q, y, w: pal_loss(q, y, w, alpha, m), [[0.0, 0.0], [-1.5, -4.5]], [0.5, -4.0]
    )
    assert value.shape == (2, 1)  # one loss per critic and member
    norm = (SQRT2 + 2.0) / 2  # mean(max(|0.5|, |2|)^a, max(|-4|, |0.5|)^a)
    l1 = (0.125 + 4.0**1.5 / 1.5) / 2
    l2 = (2.0**1.5 / 1.5 + 0.125) / 2
    torch.testing.assert_close(value, torch.tensor([[l1 / norm], [l2 / norm]]).double())
    # the normaliser of the larger error differs from either critic's own
    assert not math.isclose(norm, (1.0 + 2.0) / 2) and not math.isclose(norm, (SQRT2 + 1) / 2)
    want = torch.tensor([[[-0.5, 2.0]], [[-SQRT2, -0.5]]]).double() / (2 * norm)
    torch.testing.assert_close(grad, want)


# -- the TD error priorities are told -----------------------------------------------------------


def test_priority_td_error_of_one_critic_is_y_minus_q():
    q, y = torch.tensor([[[1.0, -2.0]]]), torch.tensor([[0.5, 0.5]])
    assert torch.equal(priority_td_error(q, y), y - q[0])


def test_priority_td_error_of_twin_critics_is_the_larger_in_size_with_its_sign():
    q = torch.tensor([[[1.0, 0.0, 2.0]], [[-3.0, 0.5, 2.0]]])  # (2 critics, K=1, B=3)
    y = torch.tensor([[0.0, 0.0, 1.0]])
    # errors: critic 1 (-1, 0, -1), critic 2 (3, -0.5, -1)
    assert torch.equal(priority_td_error(q, y), torch.tensor([[3.0, -0.5, -1.0]]))


# -- the agent's choice -------------------------------------------------------------------------


def test_critic_loss_for_binds_the_configured_parameters():
    assert critic_loss_for(AgentConfig()) is mse_loss
    huber = critic_loss_for(AgentConfig(critic_loss="huber", huber_delta=2.5))
    assert huber.func is huber_loss and huber.keywords == {"delta": 2.5}
    pal = critic_loss_for(AgentConfig(critic_loss="pal", pal={"alpha": 0.7, "min_priority": 3}))
    assert pal.func is pal_loss and pal.keywords == {"alpha": 0.7, "min_priority": 3.0}


@pytest.mark.parametrize(
    ("options", "loss"),
    [
        ({"critic_loss": "huber", "huber_delta": 0.5}, lambda q, y, w: huber_loss(q, y, w, 0.5)),
        (
            {"critic_loss": "pal", "pal": {"alpha": 0.4, "min_priority": 0.5}},
            lambda q, y, w: pal_loss(q, y, w, 0.4, 0.5),
        ),
    ],
)
@pytest.mark.parametrize("twin", [False, True])
def test_the_agent_trains_its_critics_on_the_configured_loss(options, loss, twin):
    settings = {"hidden": [32, 32], "gamma": 0.9, "critic_lr": 1e-2, "twin_critics": twin}
    agent = DDPGAgent(OBS_DIM, ACT_DIM, AgentConfig(**settings, **options), [0, 1])
    critics, batch = 1 + twin, make_batch(2, 16, terminated=0.0)

    def q_values(critic, obs, actions):  # (critics, K, B)
        return critic(obs.repeat(critics, 1, 1), actions.repeat(critics, 1, 1)).view(critics, 2, -1)

    with torch.no_grad():
        next_q = q_values(agent.critic_target, batch.next_obs, agent.actor_target(batch.next_obs))
        y = batch.rewards + 0.9 * next_q.amin(dim=0)  # TD3's smaller target critic, if twin
        q = q_values(agent.critic, batch.obs, batch.actions)
    stats = agent.update(batch)
    torch.testing.assert_close(stats.critic_loss, loss(q, y, batch.weights).mean(dim=0))
    torch.testing.assert_close(stats.td_error, priority_td_error(q, y))


# -- config refusals and training runs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "mentions"),
    [
        ("agent.critic_loss=l1", ["agent.critic_loss", "mse"]),
        ("agent.huber_delta=0", ["agent.huber_delta"]),
        ("agent.huber_delta=-1", ["agent.huber_delta"]),
        ("agent.pal.alpha=-0.1", ["agent.pal.alpha"]),
        ("agent.pal.min_priority=0", ["agent.pal.min_priority"]),
        ("agent.pal.min_priority=-2", ["agent.pal.min_priority"]),
        ("agent.pal.beta=1", ["agent.pal.beta"]),
    ],
)
def test_bad_loss_settings_are_refused_with_one_line_and_status_2(
    tmp_path, capsys, setting, mentions
):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", "--set", setting, "--episodes", "1", "--out", str(out)], capsys)
    assert_refused(rc, err, out, *mentions)


@pytest.mark.parametrize(
    "settings",
    [
        ["agent.critic_loss=pal"],
        ["agent.critic_loss=huber", "replay.kind=lap", "agent.twin_critics=true"],
    ],
)
def test_a_tiny_run_trains_with_each_loss(tmp_path, capsys, settings):
    out = tmp_path / "run"
    flags = [arg for s in settings for arg in ("--set", s)]
    argv = ["train", "--steps", "60", "--set", "env.max_episode_steps=30", *FAST, *flags]
    rc, _, err = run_cli([*argv, "--out", str(out), "--quiet"], capsys)
    assert rc == 0, err
    with sqlite3.connect(out / "results.sqlite") as db:
        losses = [r[0] for r in db.execute("SELECT critic_loss FROM episodes")]
    assert len(losses) == 2 and all(np.isfinite(x) and x >= 0 for x in losses)


def test_the_lap_preset_pairs_lap_with_the_huber_loss_of_threshold_min_priority():
    config = load_config("pendulum-lap")
    assert config.replay.kind == "lap" and config.agent.critic_loss == "huber"
    assert config.agent.huber_delta == config.replay.lap.min_priority
    assert load_config("pendulum").agent.critic_loss == "mse"  # the default is unchanged
