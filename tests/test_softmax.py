"""Softmax replay: the exact distribution, numerical safety, independence, state, invariants."""

from __future__ import annotations

import copy
import warnings
import zlib

import numpy as np
import pytest
from cli_support import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from ddpglab.replay.softmax import SoftmaxReplay

DRAWS = 100_000


def chi_square_critical(df: int, z: float = 3.09) -> float:
    """Upper quantile of chi^2(df) at normal score z (3.09: p = 0.001), Wilson-Hilferty."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3


def reference_probabilities(rewards: np.ndarray, beta: float) -> np.ndarray:
    """p_i = exp(|r_i - mu| / beta) / sum_j exp(|r_j - mu| / beta) by log-sum-exp, float64."""
    r = rewards.astype(np.float64)
    logits = np.abs(r - r.mean()) / beta
    log_z = logits.max() + np.log(np.exp(logits - logits.max()).sum())
    return np.exp(logits - log_z)


def chi_square_test(counts: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """(statistic, critical value) after pooling cells, in order of probability, until
    each expected count reaches 5; the leftover tail joins the last cell."""
    n = counts.sum()
    order = np.argsort(probs)
    cells_expected, cells_observed = [], []
    e_acc = o_acc = 0.0
    for i in order:
        e_acc += n * probs[i]
        o_acc += counts[i]
        if e_acc >= 5:
            cells_expected.append(e_acc)
            cells_observed.append(o_acc)
            e_acc = o_acc = 0.0
    if cells_expected:
        cells_expected[-1] += e_acc
        cells_observed[-1] += o_acc
    expected, observed = np.array(cells_expected), np.array(cells_observed)
    assert len(expected) >= 2, "too few cells for a chi-square test"
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, chi_square_critical(len(expected) - 1)


def transition(members: int, rewards) -> tuple:
    obs = np.zeros((members, 2), dtype=np.float32)
    act = np.zeros((members, 1), dtype=np.float32)
    no = np.zeros(members, dtype=bool)
    return obs, act, np.asarray(rewards, dtype=np.float32), obs, no, no


def spread_rewards(rng: np.random.Generator, n: int, beta: float, kind: str) -> np.ndarray:
    """Rewards over several orders of magnitude, scaled so the sampling law stays
    informative (weights spread over a few e-folds, not one transition holding all mass).

    "cluster": a few near -100 (spread over 4 beta), most in [-1, 1], many tiny ones;
    "magnitudes": |r| log-uniform from 1e-6 to 8 beta with random signs.
    """
    if kind == "cluster":
        r = rng.uniform(-1, 1, n)
        tiny = rng.random(n) < 0.3
        r[tiny] = rng.choice([-1, 1], tiny.sum()) * 10.0 ** rng.uniform(-8, -2, tiny.sum())
        far = rng.random(n) < 0.05
        r[far] = -100 + rng.uniform(0, 4 * beta, far.sum())
        return r
    magnitude = 10.0 ** rng.uniform(-6, np.log10(8 * beta), n)
    return rng.choice([-1.0, 1.0], n) * magnitude


def filled_softmax(rewards: np.ndarray, capacity: int, beta: float, seed=0) -> SoftmaxReplay:
    rewards = np.atleast_2d(rewards)  # (members, adds)
    buf = SoftmaxReplay(capacity, 2, 1, members=rewards.shape[0], seed=seed, beta=beta)
    for t in range(rewards.shape[1]):
        buf.add(*transition(rewards.shape[0], rewards[:, t]))
    return buf


def sampled_counts(buf: SoftmaxReplay, draws: int = DRAWS) -> np.ndarray:
    idx, weights = buf.sample_indices(draws)
    assert weights is None
    return np.bincount(idx[0], minlength=buf.capacity)


# -- the distribution ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cluster", "magnitudes"])
@pytest.mark.parametrize("beta", [0.05, 1.0, 10.0])
@pytest.mark.parametrize("phase", ["filling", "wrapped", "window"])
def test_sampled_indices_follow_the_softmax_of_reward_deviations(kind, beta, phase):
    capacity = 400
    adds = {"filling": 250, "wrapped": 1000, "window": 1000}[phase]
    rng = np.random.default_rng(zlib.crc32(f"{kind} {beta} {phase}".encode()))
    buf = filled_softmax(spread_rewards(rng, adds, beta, kind), capacity, beta)
    if phase == "window":
        buf.set_window(150)
    buf.check_invariants()
    slots = buf.active_slots(0)
    assert len(slots) == {"filling": 250, "wrapped": 400, "window": 150}[phase]
    counts = sampled_counts(buf)
    assert counts.sum() == DRAWS and counts[np.setdiff1d(np.arange(capacity), slots)].sum() == 0
    stored = buf.rewards[0, slots]
    probs = reference_probabilities(stored, beta)
    np.testing.assert_allclose(buf.probabilities()[0, slots], probs, rtol=1e-9, atol=1e-300)
    statistic, critical = chi_square_test(counts[slots], probs)
    assert statistic < critical, (statistic, critical)
    # Power: the same counts reject a slightly different temperature, and uniform sampling.
    for wrong in (reference_probabilities(stored, beta * 1.2), np.full(len(slots), 1 / len(slots))):
        wrong_statistic, wrong_critical = chi_square_test(counts[slots], wrong)
        assert wrong_statistic > wrong_critical, (wrong_statistic, wrong_critical)


def test_mean_reward_is_the_mean_over_the_stored_transitions_or_the_window():
    rng = np.random.default_rng(3)
    rewards = rng.uniform(-16, 0, (2, 90)).astype(np.float32)
    buf = filled_softmax(rewards, 50, 1.0)
    np.testing.assert_allclose(buf.mean_reward(), rewards[:, -50:].mean(axis=1), rtol=1e-6)
    buf.set_window(20)
    np.testing.assert_allclose(buf.mean_reward(), rewards[:, -20:].mean(axis=1), rtol=1e-6)
    buf.add(*transition(2, [5.0, -5.0]))
    window = np.concatenate([rewards[:, -19:], [[5.0], [-5.0]]], axis=1)
    np.testing.assert_allclose(buf.mean_reward(), window.mean(axis=1), rtol=1e-6)
    idx = buf.sample_indices(500)[0]
    for k in (0, 1):
        assert set(idx[k]) <= set(buf.active_slots(k))


def test_extreme_rewards_and_a_tiny_beta_stay_finite_and_exact():
    rewards = np.zeros(200)
    rewards[17], rewards[101] = 1e4, -1e4  # mu = 0: both extremes weigh exp(1e6), equally
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        buf = filled_softmax(rewards, 150, beta=0.01)  # wrapped: slot 17 now holds 0
        buf.add(*transition(1, [1e4]))
        counts = sampled_counts(buf, 20_000)
        probs = buf.probabilities()[0]
    assert np.all(np.isfinite(probs)) and probs.sum() == pytest.approx(1.0)
    # Stored now: -1e4 at slot 101, 1e4 at slot 50, zeros elsewhere: mu = 0, so the two
    # extremes hold all the mass (the rest weighs exp(-1e6) each), split evenly.
    assert counts[[50, 101]].sum() == 20_000
    assert abs(counts[50] - 10_000) < 4 * np.sqrt(5_000)
    huge = filled_softmax(np.array([3e38, -3e38, 1.0, 0.0]), 4, beta=1e-30)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        idx, _ = huge.sample_indices(1000)
    assert set(idx.ravel()) <= {0, 1}


def test_non_finite_rewards_and_bad_beta_are_rejected():
    for beta in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="beta"):
            SoftmaxReplay(10, 2, 1, beta=beta)
    buf = SoftmaxReplay(10, 2, 1)
    with pytest.raises(ValueError, match="finite"):
        buf.add(*transition(1, [np.nan]))
    with pytest.raises(ValueError, match="empty"):
        buf.sample_indices(4)


# -- members, state --------------------------------------------------------------------------


def test_a_members_draws_depend_only_on_its_own_seed_and_rewards():
    rng = np.random.default_rng(5)
    mine = spread_rewards(rng, 300, 1.0, "cluster")
    others = [spread_rewards(rng, 300, 1.0, "magnitudes") for _ in range(4)]
    alone = filled_softmax(mine[None], 200, 1.0, seed=[7])
    ensemble_a = filled_softmax(np.stack([others[0], mine, others[1]]), 200, 1.0, seed=[1, 7, 2])
    ensemble_b = filled_softmax(np.stack([others[2], mine, others[3]]), 200, 1.0, seed=[3, 7, 4])
    for _ in range(3):
        expected = alone.sample_indices(64)[0][0]
        np.testing.assert_array_equal(ensemble_a.sample_indices(64)[0][1], expected)
        np.testing.assert_array_equal(ensemble_b.sample_indices(64)[0][1], expected)


def test_a_restored_buffer_continues_sampling_identically():
    rng = np.random.default_rng(9)
    rewards = np.stack([spread_rewards(rng, 700, 0.05, kind) for kind in ("cluster", "magnitudes")])
    buf = filled_softmax(rewards[:, :300], 256, 0.05, seed=11)
    buf.set_window(200)
    buf.sample_indices(32)
    restored = SoftmaxReplay(256, 2, 1, members=2, seed=99, beta=0.05)
    restored.load_state_dict(copy.deepcopy(buf.state_dict()))
    restored.check_invariants()
    for t in range(300, 700):  # enough adds to relocate bins and re-lay the pools
        for b in (buf, restored):
            b.add(*transition(2, rewards[:, t]))
        if t % 7 == 0:
            np.testing.assert_array_equal(buf.sample(16).indices, restored.sample(16).indices)
    restored.check_invariants()


def test_reindex_after_writing_the_storage_directly_matches_adding():
    rng = np.random.default_rng(2)
    rewards = spread_rewards(rng, 500, 1.0, "cluster").astype(np.float32)
    added = filled_softmax(rewards, 300, 1.0)
    written = SoftmaxReplay(300, 2, 1, beta=1.0)
    written.rewards[0] = np.roll(rewards[-300:], 500 % 300)
    written.pos, written.size = 500 % 300, 300
    written.reindex()
    written.check_invariants()
    np.testing.assert_allclose(written.probabilities(), added.probabilities(), rtol=1e-12)


# -- property: any interleaving keeps the index consistent -----------------------------------

reward_values = st.one_of(
    st.sampled_from([0.0, -100.0, 1e-7, -1e-7, 0.5, 1e4, -1e4]),
    st.floats(-150.0, 150.0, allow_nan=False, width=32),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(reward_values, min_size=2, max_size=2)),
        st.tuples(st.just("sample"), st.integers(1, 40)),
        st.tuples(st.just("window"), st.one_of(st.none(), st.integers(1, 30))),
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 24), beta=st.sampled_from([0.01, 0.05, 1.0, 10.0]), ops=operations)
def test_any_interleaving_of_adds_samples_and_windows_keeps_the_bins_consistent(
    capacity, beta, ops
):
    buf = SoftmaxReplay(capacity, 2, 1, members=2, seed=0, beta=beta)
    window = capacity
    for op, arg in ops:
        if op == "add":
            buf.add(*transition(2, arg))
        elif op == "window":
            buf.set_window(arg)
            window = capacity if arg is None else min(arg, capacity)
        elif buf.active.all():
            idx, _ = buf.sample_indices(arg)
            assert idx.shape == (2, arg)
            assert all(np.isin(idx[k], buf.active_slots(k)).all() for k in (0, 1))
        buf.check_invariants()
        assert (buf.active == min(buf.size, window)).all()


def test_cli_trains_with_replay_softmax(tmp_path, capsys, built_trainers):
    import json
    import sqlite3

    argv = ["train", "--replay", "softmax", "--episodes", "2", "--quiet", "--seeds", "2"]
    argv += ["--set", "agent.hidden=[16,16]", "--set", "env.max_episode_steps=30"]
    argv += ["--set", "replay.softmax.beta=0.05", "--out", str(tmp_path / "run")]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert (tmp_path / "run" / "summary.json").is_file()
    # Each member's row in the store records softmax replay at the beta asked for.
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as conn:
        rows = conn.execute("SELECT seed, config_json FROM runs ORDER BY seed").fetchall()
    assert [seed for seed, _ in rows] == [0, 1]
    for _, text in rows:
        replay = json.loads(text)["replay"]
        assert replay["kind"] == "softmax" and replay["softmax"]["beta"] == 0.05
    # ... and the members trained on a softmax buffer at that temperature (default: 1).
    (trainer,) = built_trainers
    assert type(trainer.buffer) is SoftmaxReplay
    assert trainer.buffer.beta == 0.05
    bad = ["train", "--replay", "softmax", "--set", "replay.softmax.beta=0"]
    rc, _, err = run_cli([*bad, "--out", str(tmp_path / "bad")], capsys)
    assert rc == 2
    assert "replay.softmax.beta" in err
