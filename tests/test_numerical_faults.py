"""Numerical faults: a NaN or Inf stops only the member it struck, with a message naming
the member, the env step and the quantity, also where the losses are looked at only every N
updates (``train.finite_check_every``); gradient clipping is per member.

``PoisonedPendulum`` is also what tests/test_replay_contract.py poisons every strategy with."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing

import gymnasium as gym
import numpy as np
import pytest
import torch
from cli_support import FAST, assert_refused, run_cli
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from ddpglab.agent import UpdateStats, clip_grad_norm_per_member
from ddpglab.config import same_run_config
from ddpglab.state_files import load_state
from ddpglab.store import ResultsStore
from ddpglab.training import STATE_FILE, Trainer
from ddpglab.training.faults import GPU_CHECK_EVERY, UpdateWatch, check_every

POISON_AT = 20  # the env step (of its first episode) at which the reward turns NaN


class PoisonedPendulum(PendulumEnv):
    """Pendulum whose reward becomes NaN at step POISON_AT of the env seeded with 1 (each
    episode runs in a fresh env, so only the seeded first one knows its member)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.poisoned, self.steps = False, 0

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.poisoned, self.steps = seed == 1, 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        if self.poisoned and self.steps == POISON_AT:
            reward = math.nan
        return obs, reward, terminated, truncated, info


class StrictPendulum(PendulumEnv):
    """Pendulum that refuses a NaN or infinite action, as an env with assertions may."""

    def step(self, action):
        if not np.isfinite(action).all():
            raise ValueError(f"non-finite action {action}")
        return super().step(action)


class PoisonedAfterItsBudget(PendulumEnv):
    """Seed 0's first episode ends after 10 steps, seed 1's runs 30 (a NaN action raises);
    the first env reset
    without a seed in the process (member 0's second episode, which starts before its final
    evaluation's) gives a NaN reward at its 5th step. With one episode each, member 0 has
    spent its budget when that NaN comes (lockstep step 15); member 1 never sees it."""

    unseeded_resets = 0  # set to 0 by the test before it trains

    def reset(self, *, seed=None, options=None):
        if seed is None:
            PoisonedAfterItsBudget.unseeded_resets += 1
        self.poisoned = seed is None and PoisonedAfterItsBudget.unseeded_resets == 1
        self.ends_early, self.steps = seed == 0, 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        if not np.isfinite(action).all():
            raise ValueError(f"non-finite action {action}")
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        if self.ends_early and self.steps == 10:
            terminated = True
        if self.poisoned and self.steps == 5:
            reward = math.nan
        return obs, reward, terminated, truncated, info


if "PoisonedPendulum-v0" not in gym.registry:
    gym.register("PoisonedPendulum-v0", PoisonedPendulum, max_episode_steps=30)
    gym.register("PoisonedAfterItsBudget-v0", PoisonedAfterItsBudget, max_episode_steps=30)
    gym.register("StrictPendulum-v0", StrictPendulum, max_episode_steps=200)
ENV_ID = "test_numerical_faults:PoisonedPendulum-v0"
STRICT_ENV_ID = "test_numerical_faults:StrictPendulum-v0"


def test_a_resumed_run_keeps_the_failure_of_a_member_stopped_before_the_state(
    tiny_config, tmp_path
):
    config = tiny_config(**{"env.id": ENV_ID, "train.seeds": [0, 1], "train.episodes": 2})
    message = f"member 1 (seed 1): reward is nan at env step {POISON_AT}"
    with ResultsStore(tmp_path / "results.sqlite") as store:
        first = Trainer(config, tmp_path, store=store)
        first.run()
        first.save_state()  # a state saved after member 1 failed, as a later save would be
        resumed = Trainer(config, tmp_path, store=store)
        assert resumed.resume()
        resumed.rewind_store()
        rows = store.conn.execute("SELECT seed, status, error FROM runs ORDER BY seed").fetchall()
        assert rows == [(0, "running", None), (1, "failed", message)]
        resumed.run()
        rows = store.conn.execute("SELECT seed, status, error FROM runs ORDER BY seed").fetchall()
    assert rows == [(0, "done", None), (1, "failed", message)]


def test_a_nan_after_a_members_budget_is_spent_leaves_its_finished_run_done(
    tiny_config, tmp_path, capsys
):
    """A member past its budget still steps in lockstep; what strikes it then is no longer
    its run's: its run stays done, with no warning."""
    config = tiny_config(
        **{
            "env.id": "test_numerical_faults:PoisonedAfterItsBudget-v0",
            "env.max_episode_steps": 30,
            "train.seeds": [0, 1],
            "train.episodes": 1,
        }
    )
    PoisonedAfterItsBudget.unseeded_resets = 0
    with ResultsStore(tmp_path / "results.sqlite") as store:
        trainer = Trainer(config, tmp_path, store=store)
        trainer.run()
        rows = store.conn.execute("SELECT seed, status, error FROM runs ORDER BY seed").fetchall()
    assert [m.env_steps for m in trainer.members] == [10, 30]
    assert rows == [(0, "done", None), (1, "done", None)]
    assert "warning" not in capsys.readouterr().err


def test_a_nan_action_after_a_members_budget_is_spent_never_reaches_its_env(
    tiny_config, tmp_path, monkeypatch
):
    config = tiny_config(
        **{
            "env.id": "test_numerical_faults:PoisonedAfterItsBudget-v0",
            "env.max_episode_steps": 30,
            "train.seeds": [0, 1],
            "train.episodes": 1,
            "agent.learning_starts": 0,
        }
    )
    PoisonedAfterItsBudget.unseeded_resets = 1  # no NaN reward: only the actions
    with ResultsStore(tmp_path / "results.sqlite") as store:
        trainer = Trainer(config, tmp_path, store=store)
        act, add_actor_file, done = trainer.agent.act, trainer.recorder.add_actor_file, set()

        def nan_for_a_member_done(obs):
            actions = act(obs)
            actions[list(done)] = math.nan
            return actions

        def done_after_its_last_actor_file(k, *args):  # the last thing its run records
            add_actor_file(k, *args)
            done.add(k)

        monkeypatch.setattr(trainer.agent, "act", nan_for_a_member_done)
        monkeypatch.setattr(trainer.recorder, "add_actor_file", done_after_its_last_actor_file)
        trainer.run()
        rows = store.conn.execute("SELECT seed, status, error FROM runs ORDER BY seed").fetchall()
    assert rows == [(0, "done", None), (1, "done", None)]


def test_a_diverging_member_is_stopped_at_its_first_nonfinite_loss(tiny_config):
    trainer = Trainer(tiny_config(**{"train.seeds": [0, 1]}))
    with torch.no_grad():
        trainer.agent.critic.weights[0][1].fill_(math.inf)  # member 1's critic blows up
    summary = trainer.run()
    assert summary.members[0].error is None and len(summary.members[0].returns) == 3
    error = summary.members[1].error
    assert error is not None and error.startswith("member 1 (seed 1): ")
    assert "is nan" in error or "is inf" in error
    assert any(quantity in error for quantity in ("critic loss", "actor loss", "Q"))


def test_the_store_and_the_exit_status_report_the_failed_member(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", *FAST, "--env", ENV_ID, "--seeds", "2", "--episodes", "3"]
    argv += ["--out", str(out), "--quiet"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 1, err
    assert f"member 1 (seed 1): reward is nan at env step {POISON_AT}" in err
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        rows = conn.execute("SELECT seed, status, error FROM runs ORDER BY seed").fetchall()
    assert rows[0][:2] == (0, "done")
    assert rows[1] == (1, "failed", f"member 1 (seed 1): reward is nan at env step {POISON_AT}")


def test_gradient_clipping_scales_each_member_to_its_own_norm():
    weight = torch.zeros(3, 2, 2, requires_grad=True)
    bias = torch.zeros(3, 1, 2, requires_grad=True)
    weight.grad = torch.tensor([[[3.0, 0], [0, 0]], [[0.1, 0], [0, 0]], [[0, 0], [0, 0]]])
    bias.grad = torch.tensor([[[4.0, 0]], [[0, 0]], [[0, 0]]])
    norms = clip_grad_norm_per_member([weight, bias], max_norm=1.0, members=3)
    assert norms.tolist() == pytest.approx([5.0, 0.1, 0.0])
    member_norms = ((weight.grad**2).sum((1, 2)) + (bias.grad**2).sum((1, 2))).sqrt()
    assert member_norms.tolist() == pytest.approx([1.0, 0.1, 0.0], rel=1e-5)
    assert weight.grad[0, 0, 0].item() == pytest.approx(0.6, rel=1e-5)  # direction kept


def test_gradient_clipping_takes_a_members_twin_critics_together():
    # Two members, two critics each: rows 0 and 2 are member 0's Q_1 and Q_2.
    weight = torch.zeros(4, 1, 1, requires_grad=True)
    weight.grad = torch.tensor([3.0, 0.5, 4.0, 0.0]).view(4, 1, 1)
    norms = clip_grad_norm_per_member([weight], max_norm=1.0, members=2)
    assert norms.tolist() == pytest.approx([5.0, 0.5])
    # Member 0's joint gradient (3, 4) is scaled to norm 1 with its direction kept.
    assert weight.grad.flatten().tolist() == pytest.approx([0.6, 0.5, 0.8, 0.0], rel=1e-5)


def test_clipping_changes_training_only_where_gradients_exceed_the_bound(tiny_config):
    plain = Trainer(tiny_config()).run().members[0].returns
    loose = Trainer(tiny_config(**{"agent.max_grad_norm": 1e9})).run().members[0].returns
    tight = Trainer(tiny_config(**{"agent.max_grad_norm": 1e-3})).run().members[0].returns
    assert loose == plain
    assert tight != plain


# -- looking at the losses every N updates (train.finite_check_every) ---------------------------


def blown_up(trainer: Trainer, k: int) -> Trainer:
    """``trainer`` with member k's critic at infinity: its first update's numbers are not
    finite (with finite actions until its actor has taken a step)."""
    with torch.no_grad():
        trainer.agent.critic.weights[0][k].fill_(math.inf)
    return trainer


def update_stats(critic_loss, actor_loss, mean_q) -> UpdateStats:
    values = [torch.tensor(v, dtype=torch.float32) for v in (critic_loss, actor_loss, mean_q)]
    return UpdateStats(*values, td_error=torch.zeros(len(critic_loss), 4))


def test_the_default_look_is_after_every_update_on_the_cpu_and_every_100_on_a_gpu():
    assert check_every(None, torch.device("cpu")) == 1
    assert check_every(None, torch.device("cuda")) == check_every(None, torch.device("cuda:1"))
    assert check_every(None, torch.device("cuda")) == GPU_CHECK_EVERY == 100
    assert check_every(7, torch.device("cpu")) == check_every(7, torch.device("cuda")) == 7


def test_a_look_names_each_members_first_nonfinite_update_and_forgets_what_it_saw():
    watch = UpdateWatch(members=3, every=4, device=torch.device("cpu"))
    nan, inf = math.nan, math.inf
    updates = [  # (critic loss, actor loss, Q) of members 0, 1, 2; member 1 breaks at the 2nd
        ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0]),
        ([1.0, 3.0, 1.0], [0.0, -inf, 0.0], [2.0, 2.0, 2.0]),
        ([1.0, nan, 1.0], [0.0, nan, 0.0], [2.0, nan, inf]),  # member 2 breaks at the 3rd
        ([1.0, nan, nan], [0.0, nan, nan], [2.0, nan, nan]),
    ]
    due = [
        watch.add(np.array([10 + u, 20 + u, 30 + u]), update_stats(*v))
        for u, v in enumerate(updates)
    ]
    assert due == [False, False, False, True]
    fault = watch.look()
    assert fault is not None and fault.struck.tolist() == [False, True, True]
    assert fault.message(1, seed=5) == "member 1 (seed 5): actor loss is inf at env step 21"
    assert fault.message(2, seed=6) == "member 2 (seed 6): Q is inf at env step 32"
    assert watch.look() is None  # forgotten: the next look sees only later updates
    watch.add(np.zeros(3, dtype=np.int64), update_stats(*updates[0]))
    assert watch.look() is None


@pytest.mark.parametrize(
    ("every", "updates_per_step", "looked_after"),
    [
        (2, 3, 2),  # the look due after 2 updates finds it
        (5, 1, 1),  # its broken actor's next action (NaN) makes the trainer look, and its
        # env never sees that action
    ],
)
def test_a_member_struck_between_looks_is_failed_alone_with_the_message_of_its_first_update(
    tiny_config, every, updates_per_step, looked_after
):
    setup = {
        "env.id": STRICT_ENV_ID,
        "train.seeds": [0, 1, 2],
        "train.episodes": 2,
        "env.max_episode_steps": 30,
        "agent.updates_per_step": updates_per_step,
    }
    clean = Trainer(tiny_config(**setup))
    clean_summary = clean.run()
    reference = blown_up(Trainer(tiny_config(**setup)), 1).run().members[1].error
    assert reference is not None and "critic loss" in reference  # looked at every update
    trainer = blown_up(Trainer(tiny_config(**setup, **{"train.finite_check_every": every})), 1)
    assert trainer.update_watch.every == every
    updates_when_failed = []
    fail = trainer._fail_nonfinite

    def note_the_updates(fault):
        updates_when_failed.append(trainer.learning.total_updates)
        fail(fault)

    trainer._fail_nonfinite = note_the_updates
    summary = trainer.run()
    assert summary.members[1].error == reference  # its first non-finite update, named
    assert summary.members[1].episodes == 0  # nothing of it recorded
    assert updates_when_failed[0] == looked_after  # its first update broke it
    for k in (0, 2):  # the others never noticed, bit for bit
        assert summary.members[k].error is None
        assert summary.members[k].returns == clean_summary.members[k].returns
        ours, alone = trainer.agent.actor.member_state(k), clean.agent.actor.member_state(k)
        for name, value in ours.items():
            torch.testing.assert_close(value, alone[name], rtol=0, atol=0)


@pytest.mark.parametrize(
    "budget",
    [
        {"train.episodes": 2},  # the episode end looks before it records
        {"train.steps": 25, "train.episodes": None},  # the budget's end looks before it evaluates
    ],
)
def test_a_member_struck_between_looks_records_nothing(tiny_config, budget):
    # The actor never updates (policy_delay), so only the critic's numbers break, and the
    # look due after 10^4 updates never comes.
    setup = {
        **budget,
        "train.seeds": [0, 1],
        "env.max_episode_steps": 30,
        "agent.policy_delay": 10_000,
    }
    reference = blown_up(Trainer(tiny_config(**setup)), 1).run().members[1].error
    config = tiny_config(**setup, **{"train.finite_check_every": 10_000})
    summary = blown_up(Trainer(config), 1).run()
    struck, other = summary.members[1], summary.members[0]
    assert reference is not None and struck.error == reference
    assert (struck.episodes, struck.returns, struck.eval_return) == (0, [], None)
    assert other.error is None and other.eval_return is not None


@pytest.mark.parametrize("kind", ["prioritized", "lap"])
def test_a_member_struck_between_looks_leaves_its_sum_tree_finite(tiny_config, kind):
    config = tiny_config(
        **{"replay.kind": kind, "train.seeds": [0, 1], "train.finite_check_every": 5}
    )
    trainer = blown_up(Trainer(config), 1)
    summary = trainer.run()
    assert summary.members[1].error is not None and summary.members[0].error is None
    assert np.isfinite(trainer.buffer.trees.tree).all()
    assert np.isfinite(trainer.buffer.max_priority).all()


def test_a_state_is_saved_only_after_a_look_at_the_updates_not_yet_looked_at(tiny_config, tmp_path):
    config = tiny_config(**{"train.seeds": [0, 1], "train.finite_check_every": 5})
    trainer = Trainer(config, tmp_path)
    broken = update_stats([0.5, math.nan], [0.0, math.nan], [1.0, math.nan])
    trainer.update_watch.add(np.array([40, 40]), broken)
    trainer.save_state()
    assert trainer.failed.tolist() == [False, True]
    assert trainer.members[1].error == "member 1 (seed 1): critic loss is nan at env step 40"
    assert load_state(tmp_path / STATE_FILE)["failed"].tolist() == [False, True]
    trainer.envs.close()
    trainer.evaluator.close()


def test_a_check_interval_below_one_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", *FAST, "--set", "train.finite_check_every=0", "--out", str(out)]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, out, "train.finite_check_every")


def test_a_state_resumes_under_another_check_interval(tiny_config):
    # Looks come before every save, so a state holds nothing pending: N may change (a run
    # saved on a GPU, every 100, resumes on the CPU, every 1).
    saved = tiny_config(**{"train.finite_check_every": 100}).model_dump(mode="json")
    assert same_run_config(saved, tiny_config().model_dump(mode="json"))


def test_a_non_finite_action_fails_its_member_before_its_env_receives_it(tiny_config):
    """An actor can break without a non-finite loss (an optimiser step leaves NaN weights):
    its action is checked before the env steps, and only its member stops."""
    config = tiny_config(
        **{
            "env.id": STRICT_ENV_ID,
            "env.max_episode_steps": 30,
            "train.seeds": [0, 1],
            "train.episodes": 2,
            "agent.learning_starts": 0,
        }
    )
    trainer = Trainer(config)
    with torch.no_grad():
        trainer.agent.actor.weights[0][1].fill_(float("nan"))  # member 1's first layer
    summary = trainer.run()  # StrictPendulum raises on a NaN action: the run would die
    assert summary.members[1].error == "member 1 (seed 1): action is nan at env step 1"
    assert summary.members[0].error is None and len(summary.members[0].returns) == 2
