"""LAP (Fujimoto, Meger & Precup 2020): P(i) ~ max(|delta_i|, m)^alpha, no importance
weights, new transitions at the largest priority seen; its law differs from PER's."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import FAST, assert_refused, run_cli
from law_support import add_transitions, draw_counts, fits, rejects

from ddpglab.replay import make_buffer
from ddpglab.replay.lap import LossAdjustedReplay, lap_priority

CAPACITY = 200


def with_td_errors(kind: str, adds: int, **params):
    """A buffer whose stored transitions carry the same fixed TD errors, half of them
    below 1 (where LAP flattens the law and PER does not)."""
    buf = make_buffer(kind, CAPACITY, 1, 1, members=1, seed=7, **params)
    add_transitions(buf, adds)
    td = td_errors(len(buf))
    buf.update_priorities(np.arange(len(buf))[None, :], td)
    return buf, td


def td_errors(n: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    return (rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-3, 1, n))[None, :]


def brute_force(td: np.ndarray, alpha: float, floor: float) -> np.ndarray:
    """P(i) = max(|delta_i|, m)^alpha / sum_j max(|delta_j|, m)^alpha, slot by slot."""
    p = np.array([max(abs(d), floor) ** alpha for d in td[0]])
    return p / p.sum()


def per_law(td: np.ndarray, alpha: float = 0.6, eps: float = 1e-6) -> np.ndarray:
    p = (np.abs(td[0]) + eps) ** alpha
    return p / p.sum()


@pytest.mark.parametrize("adds", [150, 437], ids=["partly-filled", "after-wraparound"])
def test_lap_draws_follow_its_law_and_reject_pers_on_the_same_td_errors(adds):
    buf, td = with_td_errors("lap", adds, alpha=0.4, min_priority=1.0)
    expected = brute_force(td, 0.4, 1.0)
    np.testing.assert_allclose(buf.probabilities()[0, : len(buf)], expected, rtol=1e-9)
    counts = draw_counts(buf, 64, 400)[0, : len(buf)]
    assert fits(counts, expected)
    assert rejects(counts, per_law(td))  # PER's law on the same TD errors
    assert rejects(counts, np.full(len(buf), 1 / len(buf)))  # and uniform


@pytest.mark.parametrize("adds", [150, 437], ids=["partly-filled", "after-wraparound"])
def test_pers_draws_reject_laps_law_on_the_same_td_errors(adds):
    buf, td = with_td_errors("prioritized", adds, alpha=0.6, eps=1e-6)
    counts = draw_counts(buf, 64, 400)[0, : len(buf)]
    assert fits(counts, per_law(td))
    assert rejects(counts, brute_force(td, 0.4, 1.0))


def test_lap_in_a_window_normalises_over_the_window_only():
    buf, td = with_td_errors("lap", 437, alpha=0.4, min_priority=1.0)
    buf.set_window(50)
    window = buf.window_mask()[0]
    p = lap_priority(td[0], 0.4, 1.0) * window
    np.testing.assert_allclose(buf.probabilities()[0], p / p.sum(), rtol=1e-9)
    assert fits(draw_counts(buf, 64, 200)[0], p / p.sum())


def test_priorities_are_clipped_below_min_priority_and_weights_are_ones():
    buf, _ = with_td_errors("lap", 100, alpha=0.5, min_priority=2.0)
    buf.update_priorities(np.array([[0, 1, 2]]), np.array([[0.1, -3.0, 2.0]]))
    np.testing.assert_allclose(buf.trees.leaves(np.array([[0, 1, 2]]))[0], [2**0.5, 3**0.5, 2**0.5])
    batch = buf.sample(32)
    assert (batch.weights.numpy() == 1.0).all()


def test_new_transitions_enter_at_the_largest_priority_seen():
    buf = make_buffer("lap", 16, 1, 1, alpha=0.5, min_priority=2.0)
    add_transitions(buf, 2)
    # before any TD error: m^alpha, the smallest priority LAP gives
    assert buf.trees.leaves(np.array([[0, 1]]))[0] == pytest.approx([2**0.5] * 2)
    buf.update_priorities(np.array([[0]]), np.array([[9.0]]))
    add_transitions(buf, 1, start=2)
    assert buf.trees.leaves(np.array([[2]]))[0, 0] == pytest.approx(3.0)


def test_lap_follows_progress_only_with_a_window_schedule():
    assert not make_buffer("lap", 16, 1, 1).follows_progress
    assert make_buffer("prioritized", 16, 1, 1).follows_progress


def test_cli_trains_with_replay_lap(tmp_path, capsys, built_trainers):
    argv = ["train", "--replay", "lap", "--episodes", "2", "--quiet", *FAST]
    argv += ["--set", "env.max_episode_steps=30", "--set", "replay.lap.alpha=0.3"]
    argv += ["--set", "replay.lap.min_priority=0.5", "--out", str(tmp_path / "run")]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    (trainer,) = built_trainers
    buf = trainer.buffer
    assert type(buf) is LossAdjustedReplay
    assert (buf.alpha, buf.min_priority) == (0.3, 0.5)
    leaves = buf.trees.leaves(np.arange(len(buf))[None, :])
    assert len(np.unique(leaves)) > 10, "TD errors must have replaced the initial priority"
    assert leaves.min() >= 0.5**0.3 * (1 - 1e-12)


@pytest.mark.parametrize(
    ("key", "value"), [("alpha", "-0.1"), ("min_priority", "0"), ("min_priority", "-1")]
)
def test_bad_lap_parameters_are_refused(tmp_path, capsys, key, value):
    out = tmp_path / "run"
    argv = ["train", "--replay", "lap", "--set", f"replay.lap.{key}={value}", "--out", str(out)]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, out, f"replay.lap.{key}")
