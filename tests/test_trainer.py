"""The training loop: independence of members, determinism, what gets stored and when."""

from __future__ import annotations

import contextlib
import sqlite3
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from ddpglab.noise import OrnsteinUhlenbeckNoise
from ddpglab.replay import ReplayBuffer
from ddpglab.replay.storage import host_view
from ddpglab.run_folder import train
from ddpglab.store import ResultsStore
from ddpglab.summary import TrainSummary
from ddpglab.training import Trainer

# A short random warm-up too, so the random-action streams are covered as well.
WARMUP = {"agent.learning_starts": 20}


def returns_of(summary: TrainSummary) -> list[list[float]]:
    return [m.returns for m in summary.members]


def policy(trainer: Trainer, obs: np.ndarray) -> np.ndarray:
    """mu(s) of every member on its own observations, obs shaped (K, B, obs_dim)."""
    with torch.no_grad():
        return trainer.agent.actor(torch.as_tensor(obs)).numpy()


# -- independence and determinism ---------------------------------------------------------


@pytest.fixture(scope="module")
def seed_3_alone(tiny_config):
    return train(tiny_config(**WARMUP, **{"train.seeds": [3]}))


@pytest.fixture(scope="module")
def seeds_1_2_3(tiny_config):
    return train(tiny_config(**WARMUP, **{"train.seeds": [1, 2, 3]}))


def test_train_without_out_returns_a_summary_per_member(seeds_1_2_3):
    assert isinstance(seeds_1_2_3, TrainSummary)
    assert seeds_1_2_3.env_id == "Pendulum-v1"
    assert [m.seed for m in seeds_1_2_3.members] == [1, 2, 3]
    for m in seeds_1_2_3.members:
        assert m.episodes == 3
        assert m.env_steps == 150
        assert len(m.returns) == 3
        assert all(np.isfinite(m.returns))
        # eval_every 0 still evaluates once at the end.
        assert m.eval_return is not None
    total = sum(m.env_steps for m in seeds_1_2_3.members)
    assert seeds_1_2_3.env_steps_per_s == pytest.approx(total / seeds_1_2_3.wall_s)


def test_a_member_trains_the_same_alone_or_beside_others(seed_3_alone, seeds_1_2_3):
    alone = seed_3_alone.members[0]
    member = seeds_1_2_3.members[2]
    assert member.seed == alone.seed == 3
    np.testing.assert_allclose(member.returns, alone.returns, rtol=1e-4)
    assert member.eval_return == pytest.approx(alone.eval_return, rel=1e-4)


def test_members_with_different_seeds_do_not_share_random_streams(tiny_config):
    """Negative control for the test above: the learner's draws differ between members
    (their envs differ anyway, so different returns would not show it)."""
    trainer = Trainer(tiny_config(**WARMUP, **{"train.seeds": [1, 2, 3], "train.episodes": 1}))
    trainer.run()
    warmup_actions = host_view(trainer.buffer.actions)[:, : WARMUP["agent.learning_starts"]]
    noise = trainer.noise()
    replay_indices = trainer.buffer.sample(32).indices
    for draws in (warmup_actions, noise, replay_indices):
        for a, b in ((0, 1), (1, 2), (0, 2)):
            assert not np.array_equal(draws[a], draws[b])


def test_different_seeds_trained_alone_give_different_returns(tiny_config, seed_3_alone):
    other = train(tiny_config(**WARMUP, **{"train.seeds": [4], "train.episodes": 1}))
    assert other.members[0].returns[0] != pytest.approx(seed_3_alone.members[0].returns[0])


def test_same_config_and_seed_give_identical_returns(tiny_config, seed_3_alone):
    again = train(tiny_config(**WARMUP, **{"train.seeds": [3]}))
    assert returns_of(again) == returns_of(seed_3_alone)
    assert again.members[0].eval_return == seed_3_alone.members[0].eval_return


def test_gaussian_noise_runs_are_deterministic_too(tiny_config):
    config = tiny_config(**{"noise.kind": "gaussian", "noise.scale": 0.3, "train.episodes": 1})
    assert returns_of(train(config)) == returns_of(train(config))


@pytest.mark.parametrize("n_step", [1, 3])
def test_sampled_discounts_are_powers_of_the_configured_gamma(tiny_config, n_step):
    """The buffer bootstraps with agent.gamma: gamma^k, k <= n_step the rewards summed."""
    overrides = {"agent.gamma": 0.7, "replay.n_step": n_step, "train.episodes": 1}
    trainer = Trainer(tiny_config(**overrides))
    trainer.run()
    discounts = host_view(trainer.buffer.sample(256).discounts).astype(np.float64)
    powers = 0.7 ** np.arange(1, n_step + 1)
    assert np.abs(discounts[..., None] - powers).min(axis=-1).max() < 1e-6
    # Most transitions lie n_step or more before their episode's end.
    assert np.mean(np.isclose(discounts, 0.7**n_step)) > 0.5


# -- budgets ------------------------------------------------------------------------------------


def test_a_step_budget_stops_every_member_after_that_many_steps(tiny_config):
    config = tiny_config(**{"train.steps": 120, "train.episodes": None, "train.seeds": [0, 1]})
    summary = train(config)
    for m in summary.members:
        assert m.env_steps == 120
        # Episodes of 50 steps: two finished, the third cut short and not reported.
        assert m.episodes == 2
        assert len(m.returns) == 2
        assert m.eval_return is not None


# -- what reaches the buffer ------------------------------------------------------------------


def stored(buffer: ReplayBuffer) -> SimpleNamespace:
    """The buffer's per-slot arrays as numpy arrays (views on the CPU)."""
    return SimpleNamespace(
        **{name: host_view(getattr(buffer, name)) for name in buffer.SLOT_ARRAYS}
    )


def pendulum_step(obs: np.ndarray, action: float) -> tuple[np.ndarray, float]:
    """Pendulum-v1's own step from obs (cos th, sin th, th_dot) and an agent action in [-1, 1]."""
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=0)
    env.state = np.array([np.arctan2(obs[1], obs[0]), obs[2]], dtype=np.float64)
    next_obs, reward, *_ = env.step(np.array([2.0 * action], dtype=np.float32))
    env.close()
    return next_obs, reward


def test_stored_transitions_follow_the_env_with_rescaled_actions(tiny_config):
    config = tiny_config(
        **{"train.episodes": 2, "env.max_episode_steps": 30, "train.seeds": [0, 1]}
    )
    trainer = Trainer(config)
    trainer.run()
    assert len(trainer.buffer) == 60
    buf = stored(trainer.buffer)
    for k in range(2):
        for t in range(60):
            next_obs, reward = pendulum_step(buf.obs[k, t], float(buf.actions[k, t, 0]))
            np.testing.assert_allclose(buf.next_obs[k, t], next_obs, rtol=1e-4, atol=1e-4)
            assert buf.rewards[k, t] == pytest.approx(reward, rel=1e-4, abs=1e-4)
        # Within an episode the next state is where the following transition starts; across
        # the boundary the member continues from a fresh reset.
        for t in range(59):
            continues = np.array_equal(buf.next_obs[k, t], buf.obs[k, t + 1])
            assert continues == (t != 29), t


def test_time_limit_truncation_is_stored_as_not_terminated(tiny_config):
    trainer = Trainer(tiny_config(**{"train.episodes": 2, "env.max_episode_steps": 20}))
    trainer.run()
    assert len(trainer.buffer) == 40
    np.testing.assert_array_equal(trainer.buffer.terminated[:, :40], 0.0)


def test_actions_are_clipped_policy_actions_plus_noise(tiny_config):
    config = tiny_config(**{"train.episodes": 1, "agent.updates_per_step": 0, "noise.kind": "none"})
    trainer = Trainer(config)
    trainer.run()
    # No updates, no noise: every stored action is the initial policy's mu(s).
    buf = stored(trainer.buffer)
    np.testing.assert_allclose(buf.actions[:, :50], policy(trainer, buf.obs[:, :50]), rtol=1e-6)

    noisy = Trainer(
        tiny_config(
            **{
                "train.episodes": 1,
                "agent.updates_per_step": 0,
                "noise.kind": "gaussian",
                "noise.scale": 2.0,
            }
        )
    )
    noisy.run()
    actions = stored(noisy.buffer).actions[0, :50]
    mu = policy(noisy, stored(noisy.buffer).obs[:, :50])[0]
    assert np.all(np.abs(actions) <= 1.0)
    assert not np.allclose(actions, mu)
    # Large noise saturates: many actions sit exactly on the bounds after clipping.
    assert np.sum(np.abs(actions) == 1.0) > 10


def test_learning_starts_takes_uniform_random_actions_first(tiny_config):
    config = tiny_config(
        **{
            "train.episodes": 2,
            "agent.updates_per_step": 0,
            "agent.learning_starts": 60,
            "noise.kind": "none",
        }
    )
    trainer = Trainer(config)
    trainer.run()
    buf = stored(trainer.buffer)
    mu = policy(trainer, buf.obs[:, :100])[0, :, 0]
    random_part, policy_part = buf.actions[0, :60, 0], buf.actions[0, 60:100, 0]
    np.testing.assert_allclose(policy_part, mu[60:], rtol=1e-6)
    assert not np.any(np.isclose(random_part, mu[:60]))
    assert random_part.min() < -0.7
    assert random_part.max() > 0.7
    assert abs(random_part.mean()) < 0.25


def test_updates_start_once_the_buffer_holds_more_than_one_batch(tiny_config, tmp_path):
    """Batch 50 and 50-step episodes: the buffer holds more than a batch only from step 51."""
    config = tiny_config(**{"train.episodes": 2, "agent.batch_size": 50})
    with ResultsStore(tmp_path / "r.sqlite") as store:
        Trainer(config, store=store).run()
    with contextlib.closing(sqlite3.connect(tmp_path / "r.sqlite")) as db:
        rows = db.execute("SELECT episode, critic_loss, mean_q FROM episodes ORDER BY episode")
        rows = rows.fetchall()
    assert rows[0][1:] == (None, None)
    assert rows[1][1] is not None and np.isfinite(rows[1][1])
    assert rows[1][2] is not None and np.isfinite(rows[1][2])


def test_updates_per_step_zero_leaves_the_actor_untouched(tiny_config):
    trainer = Trainer(tiny_config(**{"train.episodes": 2, "agent.updates_per_step": 0}))
    before = [p.detach().clone() for p in trainer.agent.actor.parameters()]
    trainer.run()
    for p, b in zip(trainer.agent.actor.parameters(), before, strict=True):
        assert np.array_equal(p.detach().numpy(), b.numpy())


def test_evaluation_is_deterministic_without_exploration_noise(tiny_config):
    """Same actor (no updates), different exploration noise: same evaluation return."""
    base = {"train.episodes": 1, "agent.updates_per_step": 0, "train.eval_episodes": 2}
    quiet = train(tiny_config(**base, **{"noise.kind": "none"}))
    noisy = train(tiny_config(**base, **{"noise.kind": "ou", "noise.scale": 1.0}))
    assert quiet.members[0].returns != noisy.members[0].returns
    assert quiet.members[0].eval_return == noisy.members[0].eval_return


def test_exploration_noise_is_an_ou_process_restarted_at_mu_each_episode(tiny_config):
    config = tiny_config(
        **{
            "train.episodes": 2,
            "env.max_episode_steps": 20,
            "agent.updates_per_step": 0,
            "agent.final_layer_init": 3e-3,  # mu(s) near 0: no action is clipped
            "noise.kind": "ou",
            "noise.scale": 0.1,
            "train.seeds": [6],
        }
    )
    trainer = Trainer(config)
    trainer.run()
    buf = stored(trainer.buffer)
    realised = buf.actions[0, :40] - policy(trainer, buf.obs[:, :40])[0]

    reference = OrnsteinUhlenbeckNoise(act_dim=1, seeds=[6], scale=0.1)
    first = [reference()[0] for _ in range(20)]
    reference.reset()
    second = [reference()[0] for _ in range(20)]
    np.testing.assert_allclose(realised, np.array(first + second), atol=1e-6)


def test_the_bipedal_preset_trains_on_bipedalwalker(tmp_path):
    """Box2D is installed by the package itself and the walker runs headless."""
    from ddpglab.config import load_config

    config = load_config(
        "bipedal",
        overrides={
            "agent.hidden": [32, 32],
            "agent.batch_size": 16,
            "replay.capacity": 1000,
            "env.max_episode_steps": 40,
            "train.episodes": 2,
            "train.eval_episodes": 1,
            "train.torch_threads": 1,
        },
    )
    summary = train(config, out=tmp_path)
    member = summary.members[0]
    assert summary.env_id == "BipedalWalker-v3"
    assert member.episodes == 2
    assert 2 <= member.env_steps <= 80
    assert (tmp_path / "checkpoints" / "seed0").is_dir()


@pytest.mark.parametrize(
    "replay",
    [
        {},
        # schedules move with each member's own progress: its window and its PER beta
        {
            "replay.kind": "prioritized",
            "replay.n_step": 2,
            "replay.window.schedule": "linear",
            "replay.window.start": 2000,
            "replay.window.end": 100,
        },
    ],
    ids=["uniform", "prioritized-window-nstep"],
)
def test_members_stay_independent_when_their_episodes_end_at_different_steps(replay):
    """LunarLander terminates early and at different steps per seed, so members finish their
    episode budgets at different times; evaluations fall at different lockstep steps too."""
    from ddpglab.config import load_config

    def run(seeds: list[int]) -> TrainSummary:
        overrides = {
            **replay,
            "env.id": "LunarLanderContinuous-v3",
            "agent.hidden": [32, 32],
            "agent.batch_size": 16,
            "replay.capacity": 2000,
            "train.seeds": seeds,
            "train.episodes": 3,
            "train.eval_every": 2,
            "train.eval_episodes": 1,
            "train.torch_threads": 1,
        }
        return train(load_config(None, overrides=overrides))

    alone = run([3]).members[0]
    together = run([1, 2, 3]).members
    lengths = {m.env_steps for m in together}
    assert len(lengths) > 1, "the scenario needs members whose episodes differ in length"
    np.testing.assert_allclose(together[2].returns, alone.returns, rtol=1e-4)
    assert together[2].env_steps == alone.env_steps
    assert together[2].eval_return == pytest.approx(alone.eval_return, rel=1e-4)


def test_each_episode_records_q_at_its_start_and_its_discounted_return(tiny_config, tmp_path):
    """q_start = Q(s_0, mu(s_0)) of the critic when the episode began; discounted_return =
    sum_t gamma^t r_t over the rewards the episode stored, plus gamma^T Q(s_T, mu(s_T)) at
    the time limit; terminated = 0 there."""
    config = tiny_config(**{"train.episodes": 2, "agent.gamma": 0.9, "replay.capacity": 1000})
    with ResultsStore(tmp_path / "results.sqlite") as store:
        trainer = Trainer(config, store=store)
        estimates, estimate = [], trainer.agent.value_estimate

        def logged(obs):
            estimates.append(float(estimate(obs)[0]))
            return estimates[-1] * np.ones(1)

        trainer.agent.value_estimate = logged
        trainer.run()
        rows = store.conn.execute(
            "SELECT length, terminated, q_start, discounted_return FROM episodes ORDER BY episode"
        ).fetchall()
    # Per episode: Q(s_0) as it begins, then Q(s_T) as the time limit cuts it.
    q_starts, q_ends = estimates[0::2], estimates[1::2]
    assert len(estimates) == 2 * len(rows) == 4
    rewards, start = trainer.buffer.rewards[0], 0  # the ring, not yet wrapped
    for (length, terminated, q_start, discounted), q0, q_end in zip(
        rows, q_starts, q_ends, strict=True
    ):
        episode_rewards = np.asarray(rewards[start : start + length], dtype=np.float64)
        observed = float(np.sum(0.9 ** np.arange(length) * episode_rewards))
        assert discounted == pytest.approx(observed + 0.9**length * q_end, rel=1e-6)
        assert 0.9**length * abs(q_end) > 1e-6 * abs(observed)  # the tail is not negligible
        assert q_start == pytest.approx(q0, rel=1e-6)
        assert terminated == 0  # Pendulum ends at its time limit only
        start += length
    assert rows[1][2] != rows[0][2]  # the critic learned in between


def test_an_episode_the_env_ends_is_marked_terminated(tmp_path):
    """LunarLander ends when the lander crashes or rests, before its time limit."""
    from ddpglab.config import load_config

    overrides = {
        "env.id": "LunarLanderContinuous-v3",
        "agent.hidden": [16, 16],
        "agent.batch_size": 8,
        "replay.capacity": 2000,
        "train.seeds": [0],
        "train.episodes": 2,
        "train.eval_every": 0,
        "train.eval_episodes": 1,
        "train.torch_threads": 1,
    }
    with ResultsStore(tmp_path / "results.sqlite") as store:
        Trainer(load_config(None, overrides=overrides), store=store).run()
        rows = store.conn.execute("SELECT length, terminated FROM episodes").fetchall()
    assert rows and all(terminated == int(length < 1000) for length, terminated in rows)
    assert any(terminated for _, terminated in rows)
