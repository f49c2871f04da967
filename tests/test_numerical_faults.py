"""Numerical faults: a NaN or Inf stops only the member it struck, with a message naming
the member, the env step and the quantity; gradient clipping is per member.

``PoisonedPendulum`` is also what tests/test_replay_contract.py poisons every strategy with."""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing

import gymnasium as gym
import pytest
import torch
from cli_support import FAST, run_cli
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from ddpglab.agent import clip_grad_norm_per_member
from ddpglab.store import ResultsStore
from ddpglab.training import Trainer

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


if "PoisonedPendulum-v0" not in gym.registry:
    gym.register("PoisonedPendulum-v0", PoisonedPendulum, max_episode_steps=30)
ENV_ID = "test_numerical_faults:PoisonedPendulum-v0"


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
