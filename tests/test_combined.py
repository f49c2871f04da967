"""CER (Zhang & Sutton 2017): with ``replay.combined`` every strategy's batch holds each
member's newest transition in place of one draw, at importance weight 1; and configs and
saved states from before the option (and the new strategies) still read as the same run."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import FAST, run_cli
from law_support import add_transitions
from replay_support import KINDS

from ddpglab.config import load_config, same_run_config
from ddpglab.replay import make_buffer


@pytest.mark.parametrize("kind", KINDS)
def test_the_last_place_of_every_batch_is_the_newest_transition(kind):
    buf = make_buffer(kind, 40, 1, 1, members=2, seed=[0, 1], combined=True)
    for start, adds in ((0, 10), (10, 57)):  # before and after the ring wraps
        add_transitions(buf, adds, start=start)
        if buf.needs_priorities:
            slots = np.tile(np.arange(len(buf)), (2, 1))
            buf.update_priorities(slots, np.random.default_rng(0).uniform(0.1, 5, slots.shape))
        newest_step = start + adds - 1
        batch = buf.sample(16)
        assert batch.indices.shape == (2, 16)
        np.testing.assert_array_equal(batch.indices[:, -1], buf.newest_slot())
        np.testing.assert_array_equal(batch.obs[:, -1, 0].numpy(), newest_step)
        assert (batch.weights[:, -1].numpy() == 1.0).all()
        assert (batch.weights.numpy() <= 1.0).all()
    one = buf.sample(1)  # a batch of one is the newest transition alone
    np.testing.assert_array_equal(one.indices, [[buf.newest_slot()]] * 2)


def test_without_combined_sampling_is_unchanged():
    plain = make_buffer("uniform", 40, 1, 1, seed=3)
    explicit = make_buffer("uniform", 40, 1, 1, seed=3, combined=False)
    for buf in (plain, explicit):
        add_transitions(buf, 30)
    np.testing.assert_array_equal(plain.sample(16).indices, explicit.sample(16).indices)


def test_combined_is_off_by_default_and_recorded_in_the_config():
    assert load_config(None).replay.combined is False
    config = load_config(None, overrides={"replay.combined": True})
    dumped = config.model_dump(mode="json")["replay"]
    assert dumped["combined"] is True
    assert {"lap", "geometric", "ere"} <= set(dumped)


def test_a_config_saved_before_the_new_keys_is_the_same_run():
    current = load_config("pendulum").model_dump(mode="json")
    old = {**current, "replay": dict(current["replay"])}
    for key in ("combined", "lap", "geometric", "ere"):
        del old["replay"][key]
    assert same_run_config(old, current)
    # ... but not when the current run sets a key away from its default
    combined = load_config("pendulum", overrides={"replay.combined": True})
    assert not same_run_config(old, combined.model_dump(mode="json"))
    lap = load_config("pendulum", overrides={"replay.lap.alpha": 0.5})
    assert not same_run_config(old, lap.model_dump(mode="json"))
    # and a saved config this version cannot read is another run's
    assert not same_run_config({**current, "agent": {"no_such_key": 1}}, current)


def test_cli_trains_with_cer_and_the_buffer_knows_it(tmp_path, capsys, built_trainers):
    argv = ["train", "--replay", "prioritized", "--episodes", "2", "--quiet", *FAST]
    argv += ["--set", "env.max_episode_steps=30", "--set", "replay.combined=true"]
    rc, _, err = run_cli([*argv, "--out", str(tmp_path / "run")], capsys)
    assert rc == 0, err
    (trainer,) = built_trainers
    assert trainer.buffer.combined
    assert load_config(None, tmp_path / "run" / "config.yaml").replay.combined
