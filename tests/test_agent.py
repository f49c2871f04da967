"""DDPG math: soft update, TD target, losses, and the agent's update step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from ddpglab.agent import DDPGAgent, actor_loss, critic_loss, soft_update, td_target
from ddpglab.config import AgentConfig
from ddpglab.replay import Batch

OBS_DIM, ACT_DIM = 3, 2


def make_agent(seeds=(0,), **overrides) -> DDPGAgent:
    settings = {"hidden": [32, 32], "gamma": 0.9, "tau": 0.1, "actor_lr": 1e-3, "critic_lr": 1e-2}
    config = AgentConfig(**{**settings, **overrides})
    return DDPGAgent(OBS_DIM, ACT_DIM, config, list(seeds))


def make_batch(
    members: int,
    size: int,
    seed: int = 0,
    terminated: float | None = None,
    discount: float = 0.9,
) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    done = (torch.rand(members, size, generator=gen) < 0.3).float()
    if terminated is not None:
        done = torch.full((members, size), terminated)
    return Batch(
        obs=torch.randn(members, size, OBS_DIM, generator=gen),
        actions=torch.rand(members, size, ACT_DIM, generator=gen) * 2 - 1,
        rewards=torch.randn(members, size, generator=gen),
        next_obs=torch.randn(members, size, OBS_DIM, generator=gen),
        terminated=done,
        indices=np.zeros((members, size), dtype=np.int64),
        weights=torch.ones(members, size),
        discounts=torch.full((members, size), discount),  # gamma^1: one-step transitions
    )


def params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# -- soft update -------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [1e-3, 0.1, 0.5, 0.9])
def test_soft_update_is_tau_online_plus_one_minus_tau_target(tau):
    gen = torch.Generator().manual_seed(0)
    online = [
        torch.randn(4, 5, generator=gen, dtype=torch.float64),
        torch.randn(3, generator=gen, dtype=torch.float64),
    ]
    target = [
        torch.randn(4, 5, generator=gen, dtype=torch.float64),
        torch.randn(3, generator=gen, dtype=torch.float64),
    ]
    expected = [tau * o + (1 - tau) * t for o, t in zip(online, target, strict=True)]
    online_before = [o.clone() for o in online]
    soft_update(target, online, tau)
    for got, want in zip(target, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-14)
    for o, before in zip(online, online_before, strict=True):
        assert torch.equal(o, before)


def test_soft_update_in_float32_matches_the_formula_to_rounding():
    gen = torch.Generator().manual_seed(1)
    online, target = [torch.randn(1000, generator=gen)], [torch.randn(1000, generator=gen)]
    expected = 1e-3 * online[0] + (1 - 1e-3) * target[0]
    soft_update(target, online, 1e-3)
    torch.testing.assert_close(target[0], expected, rtol=0, atol=1e-6)


def test_soft_update_with_tau_one_copies():
    gen = torch.Generator().manual_seed(2)
    online, target = [torch.randn(50, generator=gen)], [torch.randn(50, generator=gen)]
    soft_update(target, online, 1.0)
    assert torch.equal(target[0], online[0])


# -- TD target and losses ------------------------------------------------------------------------


def test_td_target_bootstraps_unless_terminated():
    rewards = torch.tensor([[1.0, 2.0, -1.0]])
    next_q = torch.tensor([[10.0, 20.0, 30.0]])
    terminated = torch.tensor([[0.0, 1.0, 0.0]])
    y = td_target(rewards, terminated, next_q, discounts=0.9)
    torch.testing.assert_close(y, torch.tensor([[1.0 + 9.0, 2.0, -1.0 + 27.0]]))


def test_td_target_with_gamma_zero_is_the_reward():
    rewards = torch.tensor([[1.0, -2.0]])
    y = td_target(rewards, torch.zeros(1, 2), torch.tensor([[5.0, 6.0]]), discounts=0.0)
    torch.testing.assert_close(y, rewards)


def test_td_target_discounts_each_n_step_transition_by_its_own_gamma_power():
    """n-step: y = R + gamma^k (1 - terminated) Q', k the rewards summed in R."""
    rewards = torch.tensor([[1.0, 2.0, 3.0]])
    next_q = torch.tensor([[10.0, 10.0, 10.0]])
    discounts = torch.tensor([[0.9, 0.81, 0.729]])
    y = td_target(rewards, torch.tensor([[0.0, 0.0, 1.0]]), next_q, discounts)
    torch.testing.assert_close(y, torch.tensor([[1.0 + 9.0, 2.0 + 8.1, 3.0]]))


def test_critic_loss_is_weighted_mean_squared_error_per_member():
    q = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    y = torch.tensor([[2.0, 4.0], [1.0, -3.0]])
    w = torch.tensor([[1.0, 0.5], [2.0, 1.0]])
    loss = critic_loss(q, y, w)
    torch.testing.assert_close(loss, torch.tensor([(1 + 0.5 * 4) / 2, (2 * 1 + 9) / 2]))


def test_actor_loss_is_minus_mean_q_per_member():
    q = torch.tensor([[1.0, 3.0], [-2.0, 0.0]])
    torch.testing.assert_close(actor_loss(q), torch.tensor([-2.0, 1.0]))


# -- the agent -----------------------------------------------------------------------------------


def test_target_networks_start_as_copies_and_take_no_gradients():
    agent = make_agent(seeds=(0, 1))
    for online, target in [(agent.actor, agent.actor_target), (agent.critic, agent.critic_target)]:
        for p, tp in zip(online.parameters(), target.parameters(), strict=True):
            assert torch.equal(p, tp)
            assert p.data_ptr() != tp.data_ptr()
            assert not tp.requires_grad


def test_act_gives_deterministic_actions_in_the_unit_cube():
    agent = make_agent(seeds=(0, 1, 2))
    obs = np.random.default_rng(0).normal(scale=100.0, size=(3, OBS_DIM)).astype(np.float32)
    a = agent.act(obs)
    assert a.shape == (3, ACT_DIM)
    assert np.all(np.abs(a) <= 1.0)
    np.testing.assert_array_equal(a, agent.act(obs))


def test_members_start_from_their_own_seeds():
    alone, together = make_agent(seeds=(3,)), make_agent(seeds=(1, 2, 3))
    for p, q in zip(alone.actor.parameters(), together.actor.parameters(), strict=True):
        assert torch.equal(p[0], q[2])
        assert not torch.equal(q[0], q[1])
    for p, q in zip(alone.critic.parameters(), together.critic.parameters(), strict=True):
        assert torch.equal(p[0], q[2])
    # Actor and critic draw from different streams of the same seed.
    assert not torch.equal(
        alone.actor.weights[0][0, :, :1], alone.critic.weights[0][0, :OBS_DIM, :1]
    )


@pytest.mark.parametrize("discount", [0.0, 0.9, 1.0])
def test_update_target_is_the_reward_on_terminated_transitions(discount):
    """With terminated = 1 everywhere, y = r whatever the discount, so the critic loss is
    mean (r - Q(s, a))^2."""
    agent = make_agent(seeds=(0, 1))
    batch = make_batch(2, 16, terminated=1.0, discount=discount)
    with torch.no_grad():
        q = agent.critic(batch.obs, batch.actions).squeeze(-1)
    stats = agent.update(batch)
    loss, mean_q = stats.critic_loss, stats.mean_q
    torch.testing.assert_close(loss, (batch.rewards - q).square().mean(-1))
    torch.testing.assert_close(mean_q, q.mean(-1))


@pytest.mark.parametrize("discount", [0.5, 0.9])
def test_update_target_bootstraps_from_the_target_networks_when_not_terminated(discount):
    """With terminated = 0 (e.g. a time-limit truncation), y = r + gamma^k Q'(s', mu'(s')),
    gamma^k the batch's discount (the buffer's, which holds the configured gamma)."""
    agent = make_agent(seeds=(0, 1))
    # Make the targets differ from the online networks, so using the wrong ones shows.
    with torch.no_grad():
        for p in (*agent.actor_target.parameters(), *agent.critic_target.parameters()):
            p.add_(0.05 * torch.randn_like(p))
    batch = make_batch(2, 16, terminated=0.0, discount=discount)
    with torch.no_grad():
        q = agent.critic(batch.obs, batch.actions).squeeze(-1)
        next_a = agent.actor_target(batch.next_obs)
        next_q = agent.critic_target(batch.next_obs, next_a).squeeze(-1)
    y = batch.rewards + discount * next_q
    loss = agent.update(batch).critic_loss
    torch.testing.assert_close(loss, (y - q).square().mean(-1))


def reference_ddpg_update(nets, opts, batch: Batch, gamma: float, tau: float) -> None:
    """Lillicrap et al., Algorithm 1, one iteration, written out plainly for K members."""
    actor, critic, actor_t, critic_t = nets
    actor_opt, critic_opt = opts
    with torch.no_grad():
        next_q = critic_t(batch.next_obs, actor_t(batch.next_obs)).squeeze(-1)
        y = batch.rewards + gamma * (1 - batch.terminated) * next_q
    q = critic(batch.obs, batch.actions).squeeze(-1)
    critic_opt.zero_grad()
    ((y - q) ** 2).mean(-1).sum().backward()
    critic_opt.step()
    actor_opt.zero_grad()
    (-critic(batch.obs, actor(batch.obs)).squeeze(-1).mean(-1)).sum().backward()
    actor_opt.step()
    with torch.no_grad():
        for online, target in [(actor, actor_t), (critic, critic_t)]:
            for p, tp in zip(online.parameters(), target.parameters(), strict=True):
                tp.copy_(tau * p + (1 - tau) * tp)


def test_update_matches_a_plain_reference_ddpg_step():
    """Critic step on y, then an actor step through the updated critic, then both soft updates."""
    agent = make_agent(seeds=(0, 1))
    nets = [
        copy.deepcopy(m)
        for m in (agent.actor, agent.critic, agent.actor_target, agent.critic_target)
    ]
    for m in nets:
        for p in m.parameters():
            p.requires_grad_(True)
    opts = (
        torch.optim.Adam(nets[0].parameters(), lr=agent.config.actor_lr),
        torch.optim.Adam(nets[1].parameters(), lr=agent.config.critic_lr),
    )
    for step in range(3):
        batch = make_batch(2, 32, seed=step)
        agent.update(batch)
        reference_ddpg_update(nets, opts, batch, gamma=0.9, tau=0.1)
    ours = (agent.actor, agent.critic, agent.actor_target, agent.critic_target)
    for name, mine, ref in zip(
        ("actor", "critic", "actor_target", "critic_target"), ours, nets, strict=True
    ):
        for p, r in zip(mine.parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p.detach(), r.detach(), rtol=1e-4, atol=1e-5, msg=name)


def test_update_soft_updates_both_targets_after_the_step():
    agent = make_agent(seeds=(0,))
    old_actor_t, old_critic_t = params(agent.actor_target), params(agent.critic_target)
    agent.update(make_batch(1, 16))
    for target, online, old in [
        (agent.actor_target, agent.actor, old_actor_t),
        (agent.critic_target, agent.critic, old_critic_t),
    ]:
        for tp, p, o in zip(target.parameters(), online.parameters(), old, strict=True):
            torch.testing.assert_close(tp, 0.1 * p.detach() + 0.9 * o, rtol=0, atol=1e-6)
            assert not torch.equal(tp, o)


def test_update_of_a_member_does_not_depend_on_the_other_members():
    alone, together = make_agent(seeds=(3,)), make_agent(seeds=(1, 2, 3))
    for step in range(3):
        batch = make_batch(3, 16, seed=step)
        mine = Batch(*(f[2:3] for f in batch))
        loss_alone = alone.update(mine).critic_loss
        loss_together = together.update(batch).critic_loss
        torch.testing.assert_close(loss_alone[0], loss_together[2], rtol=1e-5, atol=1e-6)
    for net in ("actor", "critic", "actor_target", "critic_target"):
        a, t = getattr(alone, net).parameters(), getattr(together, net).parameters()
        for p, q in zip(a, t, strict=True):
            torch.testing.assert_close(p[0], q[2], rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_continues_training_identically():
    agent = make_agent(seeds=(0, 1))
    agent.update(make_batch(2, 16, seed=0))
    restored = make_agent(seeds=(5, 6))
    restored.load_state_dict(copy.deepcopy(agent.state_dict()))
    for step in (1, 2):
        batch = make_batch(2, 16, seed=step)
        a = agent.update(batch).critic_loss
        b = restored.update(batch).critic_loss
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for p, q in zip(agent.actor.parameters(), restored.actor.parameters(), strict=True):
        assert torch.equal(p, q)


# -- one actor step on a fixed critic ------------------------------------------------------


class QuadraticCritic(nn.Module):
    """Q(s, a) = -|a - a*|^2, maximised by a = a* whatever the state."""

    def __init__(self, a_star: torch.Tensor):
        super().__init__()
        self.a_star = a_star

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return -(act - self.a_star).square().sum(-1, keepdim=True)


def actor_step_on(agent: DDPGAgent, critic: nn.Module, obs: torch.Tensor) -> None:
    loss = actor_loss(critic(obs, agent.actor(obs)).squeeze(-1))
    agent.actor_opt.zero_grad()
    loss.sum().backward()
    agent.actor_opt.step()


def test_one_actor_step_on_a_fixed_critic_moves_mu_toward_the_best_action():
    a_star = torch.tensor([0.5, -0.3])
    members = 4
    agent = make_agent(seeds=range(members))
    # One state per member: each member's loss is its own state's distance to a*.
    obs = torch.randn(members, 1, OBS_DIM, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = (agent.actor(obs) - a_star).norm(dim=-1)
    actor_step_on(agent, QuadraticCritic(a_star), obs)
    with torch.no_grad():
        after = (agent.actor(obs) - a_star).norm(dim=-1)
    assert torch.all(after < before), (before, after)


def test_repeated_actor_steps_on_a_fixed_critic_converge_to_the_best_action():
    a_star = torch.tensor([0.5, -0.3])
    agent = make_agent(seeds=(0, 1))
    obs = torch.randn(2, 8, OBS_DIM, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        start = (agent.actor(obs) - a_star).norm(dim=-1)
    for _ in range(300):
        actor_step_on(agent, QuadraticCritic(a_star), obs)
    with torch.no_grad():
        end = (agent.actor(obs) - a_star).norm(dim=-1)
    assert torch.all(end < 0.05)
    assert torch.all(end < start)
