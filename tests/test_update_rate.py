"""agent.updates_per_step as a rate: fractions spread the updates over env steps exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest
from cli_support import TINY_RUN, run_cli
from hypothesis import given
from hypothesis import strategies as st

from ddpglab.config import load_config, to_yaml
from ddpglab.training import Trainer
from ddpglab.training.update_rate import UpdateRate


@given(
    num=st.integers(min_value=0, max_value=50),
    den=st.integers(min_value=1, max_value=50),
    steps=st.integers(min_value=1, max_value=2000),
)
def test_the_first_t_steps_get_floor_t_u_updates(num, den, steps):
    rate = UpdateRate(num / den)
    assert sum(rate.due(t) for t in range(1, steps + 1)) == steps * num // den
    assert all(rate.due(t) in (num // den, -(-num // den)) for t in range(1, 60))


def test_a_quarter_updates_on_every_fourth_step_and_a_whole_rate_every_step():
    assert [UpdateRate(0.25).due(t) for t in range(1, 9)] == [0, 0, 0, 1, 0, 0, 0, 1]
    assert [UpdateRate(1.5).due(t) for t in range(1, 5)] == [1, 2, 1, 2]
    assert [UpdateRate(2).due(t) for t in range(1, 4)] == [2, 2, 2]
    assert UpdateRate(0.1).rate == Fraction(1, 10), "held exactly, not as the float 0.1"


@pytest.mark.parametrize("rate", [0.25, 1.5])
def test_the_trainer_makes_the_updates_the_rate_gives(rate):
    steps, batch = 120, 16
    config = load_config(
        None,
        overrides={
            **TINY_RUN,
            "agent.batch_size": batch,
            "agent.updates_per_step": rate,
            "env.max_episode_steps": 40,
            "train.steps": steps,
            "train.episodes": None,
            "train.seeds": [0, 1],
        },
    )
    trainer = Trainer(config)
    trainer.run()
    # updates start once a member's buffer holds more than one batch: after step `batch`
    expected = sum(UpdateRate(rate).due(t) for t in range(batch + 1, steps + 1))
    assert trainer.agent.critic_updates == expected


def test_a_whole_rate_stays_a_whole_number_in_the_saved_config():
    assert "updates_per_step: 1\n" in to_yaml(load_config(None))
    assert "updates_per_step: 0.25\n" in to_yaml(
        load_config(None, overrides={"agent.updates_per_step": 0.25})
    )


def test_a_negative_rate_is_refused_with_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run_cli(
        ["train", "--out", str(out), "--set", "agent.updates_per_step=-0.5", "--quiet"], capsys
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "updates_per_step" in err, err
    assert not out.exists()


def test_a_tiny_rate_is_kept_as_written_not_rounded_to_zero():
    rate = UpdateRate(1e-7)
    assert rate.rate == Fraction(1, 10**7)
    assert (rate.due(10**7 - 1), rate.due(10**7)) == (0, 1)
    assert UpdateRate(0.3).rate == Fraction(3, 10), "0.3 as written, not its binary float"
