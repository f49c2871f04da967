"""TD3's three options, each against a hand computation and a plain per-member reference."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from test_agent import ACT_DIM, OBS_DIM, make_batch, params

from ddpglab.agent import DDPGAgent, clipped_double_q, smoothed_target_action
from ddpglab.config import AgentConfig
from ddpglab.replay import Batch
from ddpglab.seeding import member_rngs

SETTINGS = {"hidden": [16, 16], "gamma": 0.9, "tau": 0.1, "actor_lr": 1e-3, "critic_lr": 1e-2}


def make_td3(seeds=(0,), **options) -> DDPGAgent:
    return DDPGAgent(OBS_DIM, ACT_DIM, AgentConfig(**{**SETTINGS, **options}), list(seeds))


# -- the two target functions, by hand ----------------------------------------------------------


def test_clipped_double_q_takes_the_smaller_critic_value_per_sample():
    next_q = torch.tensor([[[1.0, -2.0, 3.0]], [[0.5, -1.0, 4.0]]])  # (2 critics, K=1, B=3)
    assert torch.equal(clipped_double_q(next_q), torch.tensor([[0.5, -2.0, 3.0]]))


def test_clipped_double_q_of_one_critic_is_that_critic():
    next_q = torch.tensor([[[1.0, -2.0, 3.0]]])
    assert torch.equal(clipped_double_q(next_q), next_q[0])


def test_smoothed_target_action_clips_the_noise_then_the_action():
    action = torch.tensor([0.9, -0.2, 0.0, 0.3, -0.95])
    noise = torch.tensor([0.7, -0.3, -2.0, 0.1, -0.4])
    # 0.9 + 0.5 -> 1.0; -0.2 - 0.3; 0.0 - 0.5; 0.3 + 0.1; -0.95 - 0.4 -> -1.0
    expected = torch.tensor([1.0, -0.5, -0.5, 0.4, -1.0])
    torch.testing.assert_close(smoothed_target_action(action, noise, 0.5), expected)


# -- the update against a plain reference -------------------------------------------------------


def _mlp(layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    for i, (w, b) in enumerate(layers):
        x = x @ w + b
        if i < len(layers) - 1:
            x = torch.relu(x)
    return x


class ReferenceMember:
    """One member's TD3 written out with plain tensors: separate Q1 and Q2, its own Adams."""

    def __init__(self, agent: DDPGAgent, k: int, seed: int):
        def layers(net, member):
            return [
                (w[member].detach().clone().requires_grad_(), b[member].detach().clone())
                for w, b in zip(net.weights, net.biases, strict=True)
            ]

        def with_bias_grads(net_layers):
            return [(w, b.requires_grad_()) for w, b in net_layers]

        cfg, members = agent.config, agent.members
        self.cfg = cfg
        self.actor = with_bias_grads(layers(agent.actor, k))
        self.q = [
            with_bias_grads(layers(agent.critic, k + j * members)) for j in range(agent.critics)
        ]
        self.actor_t = layers(agent.actor_target, k)
        self.q_t = [layers(agent.critic_target, k + j * members) for j in range(agent.critics)]
        flat = lambda nets: [t for net in nets for pair in net for t in pair]  # noqa: E731
        self.actor_opt = torch.optim.Adam(flat([self.actor]), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(flat(self.q), lr=cfg.critic_lr)
        self.noise_rng = member_rngs([seed], "target_noise")[0]
        self.updates = 0

    def q_of(self, net, obs, act):
        return _mlp(net, torch.cat([obs, act], dim=-1)).squeeze(-1)

    def update(self, obs, actions, rewards, next_obs, terminated) -> None:
        cfg = self.cfg
        with torch.no_grad():
            next_a = torch.tanh(_mlp(self.actor_t, next_obs))
            if cfg.target_noise > 0:
                eps = self.noise_rng.standard_normal(next_a.shape, dtype=np.float32)
                eps = torch.from_numpy(eps) * cfg.target_noise
                c = cfg.target_noise_clip
                next_a = (next_a + eps.clamp(-c, c)).clamp(-1, 1)
            next_q = torch.stack([self.q_of(net, next_obs, next_a) for net in self.q_t])
            y = rewards + cfg.gamma * (1 - terminated) * next_q.min(dim=0).values
        loss = sum(((y - self.q_of(net, obs, actions)) ** 2).mean() for net in self.q)
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step()
        self.updates += 1
        if self.updates % cfg.policy_delay:
            return
        self.actor_opt.zero_grad()
        (-self.q_of(self.q[0], obs, torch.tanh(_mlp(self.actor, obs))).mean()).backward()
        self.actor_opt.step()
        with torch.no_grad():
            for online, target in [(self.actor, self.actor_t), *zip(self.q, self.q_t, strict=True)]:
                for (w, b), (tw, tb) in zip(online, target, strict=True):
                    tw.copy_(cfg.tau * w + (1 - cfg.tau) * tw)
                    tb.copy_(cfg.tau * b + (1 - cfg.tau) * tb)


OPTIONS = list(itertools.product([False, True], [0.0, 0.3], [1, 2]))


@pytest.mark.parametrize(("twin", "noise", "delay"), OPTIONS)
def test_update_matches_a_plain_per_member_reference_for_every_option_combination(
    twin, noise, delay
):
    """Each option on or off alone: twin critics, target smoothing, delayed actor updates."""
    seeds = (4, 7)
    agent = make_td3(seeds, twin_critics=twin, target_noise=noise, policy_delay=delay)
    refs = [ReferenceMember(agent, k, s) for k, s in enumerate(seeds)]
    for step in range(5):
        batch = make_batch(2, 32, seed=step)
        agent.update(batch)
        for k, ref in enumerate(refs):
            ref.update(
                batch.obs[k],
                batch.actions[k],
                batch.rewards[k],
                batch.next_obs[k],
                batch.terminated[k],
            )
    for k, ref in enumerate(refs):
        nets = [
            (agent.actor, [ref.actor], 1),
            (agent.actor_target, [ref.actor_t], 1),
            (agent.critic, ref.q, agent.critics),
            (agent.critic_target, ref.q_t, agent.critics),
        ]
        for ours, theirs, critics in nets:
            assert len(ours.weights[0]) == critics * len(seeds)
            for j, layers in enumerate(theirs):
                for i, (w, b) in enumerate(layers):
                    member = k + j * len(seeds)
                    torch.testing.assert_close(
                        ours.weights[i][member], w.detach(), rtol=1e-4, atol=1e-5
                    )
                    torch.testing.assert_close(
                        ours.biases[i][member], b.detach(), rtol=1e-4, atol=1e-5
                    )


def test_twin_critic_target_is_the_reward_plus_the_smaller_target_critic():
    """y = r + gamma min(Q'_1, Q'_2)(s', mu'(s')) by hand, read back through the critic loss."""
    agent = make_td3((0,), twin_critics=True)
    with torch.no_grad():  # move Q'_2 well away from Q'_1 so taking the wrong one shows
        for p in agent.critic_target.parameters():
            p[1].add_(0.3 * torch.randn_like(p[1]))
    batch = make_batch(1, 16, terminated=0.0)
    with torch.no_grad():
        next_a = agent.actor_target(batch.next_obs)
        obs2, act2 = batch.next_obs.repeat(2, 1, 1), next_a.repeat(2, 1, 1)
        q1_t, q2_t = agent.critic_target(obs2, act2).squeeze(-1)
        y = batch.rewards[0] + 0.9 * torch.minimum(q1_t, q2_t)
        q1, q2 = agent.critic(batch.obs.repeat(2, 1, 1), batch.actions.repeat(2, 1, 1)).squeeze(-1)
    assert (q1_t != q2_t).all()
    stats = agent.update(batch)
    expected = ((y - q1).square().mean() + (y - q2).square().mean()) / 2
    torch.testing.assert_close(stats.critic_loss[0], expected)
    # the TD error prioritized replay ranks by: the critic with the larger |delta| (LAP-PAL)
    larger = torch.where((y - q2).abs() > (y - q1).abs(), y - q2, y - q1)
    assert (larger != y - q1).any()
    torch.testing.assert_close(stats.td_error[0], larger)
    torch.testing.assert_close(stats.mean_q[0], q1.mean())


def test_delayed_updates_move_the_actor_and_targets_only_every_d_th_critic_update():
    agent = make_td3((0,), policy_delay=3)
    changed = {"actor": [], "targets": [], "critic": []}
    for step in range(1, 8):
        before = {
            "actor": params(agent.actor),
            "targets": params(agent.actor_target) + params(agent.critic_target),
            "critic": params(agent.critic),
        }
        agent.update(make_batch(1, 16, seed=step))
        after = {
            "actor": params(agent.actor),
            "targets": params(agent.actor_target) + params(agent.critic_target),
            "critic": params(agent.critic),
        }
        for name in changed:
            if any(not torch.equal(a, b) for a, b in zip(before[name], after[name], strict=True)):
                changed[name].append(step)
    assert changed == {"actor": [3, 6], "targets": [3, 6], "critic": list(range(1, 8))}
    assert agent.critic_updates == 7


def test_actor_loss_reports_the_latest_actor_update_between_delayed_updates():
    agent = make_td3((0,), policy_delay=2)
    first = agent.update(make_batch(1, 16, seed=1)).actor_loss
    assert torch.equal(first, torch.zeros(1))  # no actor update yet
    second = agent.update(make_batch(1, 16, seed=2)).actor_loss
    third = agent.update(make_batch(1, 16, seed=3)).actor_loss
    assert torch.equal(second, third) and not torch.equal(second, first)


def test_target_noise_draws_come_from_each_members_own_stream():
    """Member 7's smoothing noise, and so its update, is the same alone as in an ensemble."""
    options = {"twin_critics": True, "target_noise": 0.2, "policy_delay": 2}
    alone, together = make_td3((7,), **options), make_td3((3, 7), **options)
    for step in range(4):
        batch = make_batch(2, 16, seed=step)
        alone.update(Batch(*(f[1:2] for f in batch)))
        together.update(batch)
    for net in ("actor", "critic", "actor_target", "critic_target"):
        a, t = params(getattr(alone, net)), params(getattr(together, net))
        for p, q in zip(a, t, strict=True):
            # the critic holds Q_1 of every member, then Q_2 of every member
            torch.testing.assert_close(p[0], q[1], rtol=1e-5, atol=1e-6)
            if len(p) == 2:
                torch.testing.assert_close(p[1], q[3], rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip_keeps_the_noise_stream_and_the_delay_phase():
    options = {"twin_critics": True, "target_noise": 0.2, "policy_delay": 2}
    agent = make_td3((0, 1), **options)
    agent.update(make_batch(2, 16, seed=0))  # odd count: the next update moves the actor
    copy_ = make_td3((0, 1), **options)
    # deep-copied as a file would be: Adam's load keeps tensors of matching device and dtype
    copy_.load_state_dict(copy.deepcopy(agent.state_dict()))
    for step in range(1, 4):
        batch = make_batch(2, 16, seed=step)
        torch.testing.assert_close(agent.update(batch).actor_loss, copy_.update(batch).actor_loss)
    for net in ("actor", "critic", "actor_target", "critic_target"):
        for p, q in zip(params(getattr(agent, net)), params(getattr(copy_, net)), strict=True):
            assert torch.equal(p, q)
