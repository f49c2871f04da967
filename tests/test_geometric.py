"""Truncated geometric recency (Korniak et al. 2026): P(i) ~ (1 - p)^age_i over what the
member stores (or its window), drawn exactly by inverting the truncated CDF."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import FAST, assert_refused, run_cli
from law_support import add_transitions, draw_counts, fits, rejects, stored_steps

from ddpglab.config import load_config
from ddpglab.replay import make_buffer
from ddpglab.replay.geometric import (
    DEFAULT_P,
    GeometricReplay,
    truncated_geometric_ages,
    truncated_geometric_law,
)

CAPACITY = 150


def brute_force(buf, k: int, p: float, window: int | None = None) -> np.ndarray:
    """(1 - p)^age / sum, age = newest step - the step each slot holds, over the slots
    written (and within the window), computed slot by slot from what was added."""
    steps = stored_steps(buf)[k]
    newest = steps[buf.newest_slot()]
    law = np.zeros(buf.capacity)
    for slot in range(len(buf)):
        age = newest - steps[slot]
        if window is None or age < window:
            law[slot] = (1 - p) ** age
    return law / law.sum()


@pytest.mark.parametrize(
    ("adds", "window"),
    [(100, None), (377, None), (330, 60)],
    ids=["partly-filled", "after-wraparound", "window-across-the-end"],
)
def test_draws_follow_the_truncated_geometric_law(adds, window):
    p = 0.03
    buf = make_buffer("geometric", CAPACITY, 1, 1, members=2, seed=[1, 2], p=p)
    add_transitions(buf, adds)
    if window is not None:
        buf.set_window(window)
    counts = draw_counts(buf, 64, 300)
    for k in range(2):
        expected = brute_force(buf, k, p, window)
        np.testing.assert_allclose(buf.probabilities()[k], expected, rtol=1e-9, atol=1e-300)
        assert fits(counts[k], expected)
        # power: a geometric law of a plausibly wrong rate, and uniform, are refuted
        assert rejects(counts[k], brute_force(buf, k, 1.5 * p, window))
        assert rejects(counts[k], brute_force(buf, k, 1e-12, window))


def test_the_inverse_cdf_is_exact_at_the_quantiles():
    p, n = 0.1, 20
    law = truncated_geometric_law(p, n)
    cdf = np.cumsum(law)
    # u just below F(a) gives age a, u at F(a) gives a + 1
    u = np.concatenate([cdf[:-1] - 1e-9, cdf[:-1] + 1e-9])
    ages = truncated_geometric_ages(u, p, np.array(n))
    np.testing.assert_array_equal(ages, np.concatenate([np.arange(n - 1), np.arange(1, n)]))
    assert truncated_geometric_ages(np.array([1 - 1e-16]), p, np.array(n))[0] == n - 1


def test_tiny_p_over_a_million_transitions_stays_in_range_and_near_uniform():
    u = np.random.default_rng(0).random(200_000)
    ages = truncated_geometric_ages(u, 1e-12, np.array(1_000_000))
    assert ages.min() >= 0 and ages.max() < 1_000_000
    assert abs(ages.mean() - 499_999.5) < 5_000
    law = truncated_geometric_law(1e-12, 1_000_000)
    assert law.sum() == pytest.approx(1.0, rel=1e-9)


def test_expected_age_sets_p_and_neither_gives_the_default():
    assert make_buffer("geometric", 8, 1, 1, expected_age=99.0).p == pytest.approx(0.01)
    assert make_buffer("geometric", 8, 1, 1, p=0.2).p == 0.2
    assert make_buffer("geometric", 8, 1, 1).p == DEFAULT_P
    config = load_config(None, overrides={"replay.geometric.expected_age": 9})
    assert (config.replay.geometric.p, config.replay.geometric.expected_age) == (None, 9)


def test_cli_trains_with_replay_geometric(tmp_path, capsys, built_trainers):
    argv = ["train", "--replay", "geometric", "--episodes", "2", "--quiet", *FAST]
    argv += ["--set", "env.max_episode_steps=30", "--set", "replay.geometric.expected_age=20"]
    rc, _, err = run_cli([*argv, "--out", str(tmp_path / "run")], capsys)
    assert rc == 0, err
    (trainer,) = built_trainers
    assert type(trainer.buffer) is GeometricReplay
    assert trainer.buffer.p == pytest.approx(1 / 21)


@pytest.mark.parametrize(
    ("sets", "mentions"),
    [
        (["replay.geometric.p=0"], ["replay.geometric.p"]),
        (["replay.geometric.p=1"], ["replay.geometric.p"]),
        (["replay.geometric.p=-0.5"], ["replay.geometric.p"]),
        (["replay.geometric.expected_age=0"], ["replay.geometric.expected_age"]),
        (
            ["replay.geometric.p=0.1", "replay.geometric.expected_age=5"],
            ["replay.geometric", "expected_age"],
        ),
    ],
)
def test_bad_geometric_parameters_are_refused(tmp_path, capsys, sets, mentions):
    out = tmp_path / "run"
    argv = ["train", "--replay", "geometric", "--out", str(out)]
    for item in sets:
        argv += ["--set", item]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, out, *mentions)
