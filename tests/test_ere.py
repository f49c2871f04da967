"""ERE (Wang & Ross 2019): uniform over the newest c_k = max(N eta^(1000 k / K), c_min)
transitions, k the step within the current episode and K the previous episode's length."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import FAST, assert_refused, run_cli
from law_support import add_transitions, draw_counts, fits, rejects, stored_steps

from ddpglab.config import load_config
from ddpglab.replay import make_buffer
from ddpglab.replay.ere import EmphasizingRecentReplay, recent_counts

CAPACITY = 150


def brute_count(stored: int, eta: float, k: int, previous: int, c_min: int) -> int:
    """The paper's c_k for one member, k / K read as documented (capped at 1; 1 with no
    previous episode), bounded by what is stored."""
    ratio = 1.0 if previous == 0 else min(k / previous, 1.0)
    return min(stored, max(int(stored * eta ** (1000 * ratio)), c_min))


def brute_force_law(buf, k: int, count: int) -> np.ndarray:
    """1 / c on the c slots holding the newest steps added, 0 elsewhere."""
    steps = stored_steps(buf)[k]
    newest = steps[buf.newest_slot()]
    law = np.zeros(buf.capacity)
    for slot in range(len(buf)):
        if newest - steps[slot] < count:
            law[slot] = 1.0 / count
    return law


def test_recent_counts_follow_the_formula():
    cases = [
        (1000, 0.996, 5, 10, 20),  # halfway through an episode as long as the last
        (1000, 0.996, 10, 10, 20),  # at its end: N eta^1000
        (1000, 0.996, 30, 10, 20),  # longer than the last: capped at k / K = 1
        (1000, 0.996, 0, 10, 20),  # an episode just ended: the whole buffer
        (1000, 0.996, 7, 0, 20),  # no episode has ended yet: k / K = 1
        (1000, 0.999, 9, 10, 500),  # c_min binds
        (100, 0.996, 1, 10, 500),  # never more than stored
        (1000, 1.0, 9, 10, 20),  # eta = 1: uniform
    ]
    for stored, eta, k, previous, c_min in cases:
        got = recent_counts(
            np.array([stored]), np.array([eta]), np.array([k]), np.array([previous]), c_min
        )
        assert got[0] == brute_count(stored, eta, k, previous, c_min)


@pytest.mark.parametrize(
    ("adds", "window"),
    [(100, None), (377, None), (330, 60)],
    ids=["partly-filled", "after-wraparound", "window-across-the-end"],
)
def test_draws_are_uniform_over_the_newest_c_k(adds, window):
    buf = make_buffer("ere", CAPACITY, 1, 1, members=2, seed=[1, 2], eta0=0.995, c_min=8)
    add_transitions(buf, adds, episode_lengths=(40, 60))
    buf.set_progress(np.array([0.2, 0.5]))
    if window is not None:
        buf.set_window(window)
    counts = draw_counts(buf, 64, 300)
    stored = len(buf) if window is None else window
    for k, (length, progress) in enumerate(((40, 0.2), (60, 0.5))):
        eta = 0.995 + 0.005 * progress
        previous = length if adds >= length else 0
        c = brute_count(stored, eta, adds % length, previous, 8)
        assert buf.recent_counts()[k] == c
        expected = brute_force_law(buf, k, c)
        np.testing.assert_allclose(buf.probabilities()[k], expected, rtol=1e-12)
        assert fits(counts[k], expected)
        assert rejects(counts[k], brute_force_law(buf, k, stored))  # uniform over all
        if c > 8:
            assert rejects(counts[k], brute_force_law(buf, k, c // 2))  # too recent


def test_emphasis_grows_within_an_episode_and_resets_when_it_ends():
    buf = make_buffer("ere", 1000, 1, 1, eta0=0.99, c_min=10)
    add_transitions(buf, 600, episode_lengths=(100, 100))  # six episodes of 100
    counts = []
    for t in range(600, 700):
        counts.append(int(buf.recent_counts()[0]))
        add_transitions(buf, 1, start=t, episode_lengths=(100, 100))
    assert counts[0] == 600  # right after an episode ended: the whole buffer
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    assert counts[-1] == max(int(699 * 0.99 ** (1000 * 99 / 100)), 10)
    assert int(buf.recent_counts()[0]) == 700  # the episode ended again


def test_eta_anneals_from_eta0_to_one_per_member():
    buf = make_buffer("ere", 8, 1, 1, members=2, eta0=0.9)
    buf.set_progress(np.array([0.0, 0.5]))
    np.testing.assert_allclose(buf.eta, [0.9, 0.95])
    buf.set_progress(np.array([1.0, 3.0]))
    np.testing.assert_allclose(buf.eta, [1.0, 1.0])


def test_cli_trains_with_replay_ere(tmp_path, capsys, built_trainers):
    argv = ["train", "--replay", "ere", "--episodes", "3", "--quiet", *FAST]
    argv += ["--set", "env.max_episode_steps=30", "--set", "replay.ere.c_min=16"]
    argv += ["--set", "replay.ere.eta0=0.98"]
    rc, _, err = run_cli([*argv, "--out", str(tmp_path / "run")], capsys)
    assert rc == 0, err
    (trainer,) = built_trainers
    buf = trainer.buffer
    assert type(buf) is EmphasizingRecentReplay
    assert (buf.eta0, buf.c_min) == (0.98, 16)
    assert buf.eta[0] == pytest.approx(1.0)  # annealed over the budget


@pytest.mark.parametrize(
    ("sets", "mentions"),
    [
        (["replay.ere.eta0=0"], ["replay.ere.eta0"]),
        (["replay.ere.eta0=1.01"], ["replay.ere.eta0"]),
        (["replay.ere.c_min=0"], ["replay.ere.c_min"]),
        (["replay.ere.c_min=32", "agent.batch_size=64"], ["replay.ere.c_min", "batch_size"]),
    ],
)
def test_bad_ere_parameters_are_refused(tmp_path, capsys, sets, mentions):
    out = tmp_path / "run"
    argv = ["train", "--replay", "ere", "--out", str(out)]
    for item in sets:
        argv += ["--set", item]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, out, *mentions)


def test_c_min_is_checked_against_the_batch_only_when_ere_is_the_strategy():
    config = load_config(None, overrides={"replay.ere.c_min": 8, "agent.batch_size": 64})
    assert config.replay.kind == "uniform"
    assert load_config(None, overrides={"replay.kind": "ere", "replay.ere.eta0": 1}).replay.ere
