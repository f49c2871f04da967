"""Prioritized replay: sum trees, the sampling distribution, importance weights, training."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from ddpglab.replay import make_buffer
from ddpglab.replay.prioritized import PrioritizedReplay, importance_weights, priority
from ddpglab.replay.sumtree import SumTrees


def chi_square_critical(df: int, z: float = 3.09) -> float:
    """Upper quantile of chi^2(df) at normal score z (3.09: p = 0.001), Wilson-Hilferty."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3


def chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = counts.sum() * probs
    return float(((counts - expected) ** 2 / expected).sum())


def filled_buffer(capacity: int, adds: int, members: int = 1, seed: int = 0):
    buf = make_buffer("prioritized", capacity, 2, 1, members, seed, alpha=0.7, eps=1e-6)
    for t in range(adds):
        k = np.ones((members, 1), dtype=np.float32)
        zeros = np.zeros(members, dtype=bool)
        buf.add(k * t, k, np.full(members, t, np.float32), k * t, zeros, zeros)
    return buf


# -- sum trees ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 1100),  # up to three levels of 32 children
    # Priorities are 0 (unwritten) or at least eps^alpha: no subnormal leaves to round away.
    writes=st.lists(
        st.tuples(st.integers(0, 1099), st.one_of(st.just(0.0), st.floats(1e-6, 1e3))),
        min_size=1,
        max_size=60,
    ),
)
def test_sum_tree_total_and_prefix_search_match_brute_force(capacity, writes):
    trees = SumTrees(members=1, capacity=capacity)
    leaves = np.zeros(capacity)
    for i, v in writes:
        i %= capacity
        trees.set(np.array([[i]]), np.array([[v]]))
        leaves[i] = v
    assert trees.total()[0] == pytest.approx(leaves.sum(), rel=1e-12, abs=1e-9)
    for i in {0, capacity // 3, capacity - 1, capacity}:
        prefix = trees.prefix_sum(np.array([[i]]))[0, 0]
        assert prefix == pytest.approx(leaves[:i].sum(), rel=1e-12, abs=1e-9)
    if leaves.sum() == 0:
        return
    cumulative = np.cumsum(leaves)
    prefixes = np.linspace(0, leaves.sum(), 25, endpoint=False)[None, :]
    found = trees.find(prefixes)[0]
    expected = np.searchsorted(cumulative, prefixes[0], side="right")
    np.testing.assert_array_equal(found, expected)
    assert np.all(leaves[found] > 0)


def test_a_batch_that_repeats_an_index_leaves_a_consistent_tree():
    """Sampling with replacement repeats indices; the last value written wins, sums agree."""
    trees = SumTrees(members=2, capacity=8)
    trees.set(np.array([[2, 5, 2], [1, 1, 7]]), np.array([[1.0, 3.0, 4.0], [2.0, 6.0, 0.5]]))
    np.testing.assert_array_equal(trees.leaves(np.array([[2, 5], [1, 7]])), [[4, 3], [6, 0.5]])
    np.testing.assert_array_equal(trees.total(), [7.0, 6.5])


@settings(max_examples=30, deadline=None)
@given(
    capacity=st.integers(1, 300),
    steps=st.lists(
        st.tuples(
            st.booleans(),  # a column write (a new transition) or a batch write (priorities)
            st.lists(st.integers(0, 299), min_size=3, max_size=3),
            st.lists(st.floats(1e-6, 1e3), min_size=3, max_size=3),
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_incremental_sums_match_a_tree_rebuilt_from_the_leaves(capacity, steps):
    """Three members, column and batch writes mixed: every node stays the sum of its
    children up to rounding, and rebuild() makes it so exactly."""
    trees = SumTrees(members=3, capacity=capacity)
    for column, slots, values in steps:
        if column:
            trees.set_column(slots[0] % capacity, np.array(values))
        else:
            trees.set(np.array(slots)[:, None] % capacity, np.array(values)[:, None])
    incremental = trees.tree.copy()
    trees.rebuild()
    leaf = trees.leaf_offset
    exact = trees.tree
    np.testing.assert_array_equal(exact[:, leaf:], incremental[:, leaf:])
    for node in range(1, leaf):
        np.testing.assert_array_equal(exact[:, node], exact[:, 2 * node] + exact[:, 2 * node + 1])
    np.testing.assert_allclose(incremental[:, 1:], exact[:, 1:], rtol=1e-12, atol=1e-9)


def test_sum_trees_of_members_are_separate():
    trees = SumTrees(members=2, capacity=4)
    trees.set(np.array([[1], [3]]), np.array([[5.0], [7.0]]))
    np.testing.assert_array_equal(trees.total(), [5.0, 7.0])
    np.testing.assert_array_equal(trees.find(np.array([[0.0], [0.0]]))[:, 0], [1, 3])


# -- the distribution -----------------------------------------------------------------------


def test_priority_and_importance_weights_follow_their_formulas():
    delta = np.array([[-2.0, 0.0, 0.5]])
    np.testing.assert_allclose(priority(delta, 0.6, 0.01), (np.abs(delta) + 0.01) ** 0.6)
    probs = np.array([[0.5, 0.25, 0.25]])
    w = importance_weights(probs, size=4, beta=0.5)
    raw = (4 * probs) ** -0.5
    np.testing.assert_allclose(w, raw / raw.max())
    assert w.max() == 1.0


@pytest.mark.parametrize("adds", [300, 517], ids=["partly-filled", "after-wraparound"])
def test_sampled_indices_follow_p_i_over_sum_p(adds):
    """Priorities over six orders of magnitude; a wrong distribution fails the chi^2 test."""
    capacity = 400
    buf = filled_buffer(capacity, adds)
    rng = np.random.default_rng(1)
    idx = np.arange(len(buf))[None, :]
    delta = 10.0 ** rng.uniform(-3, 3, size=idx.shape)
    buf.update_priorities(idx, delta)
    p = (np.abs(delta[0]) + buf.eps) ** buf.alpha
    probs = p / p.sum()
    counts = np.zeros(len(buf))
    for _ in range(400):
        sampled, _ = buf.sample_indices(256)
        counts += np.bincount(sampled[0], minlength=len(buf))
    # Pool rare indices into one cell so every expected count is large enough.
    order = np.argsort(probs)
    rare = order[np.cumsum(probs[order]) * counts.sum() < 50]
    common = np.setdiff1d(np.arange(len(buf)), rare)
    cells_counts = np.append(counts[common], counts[rare].sum())
    cells_probs = np.append(probs[common], probs[rare].sum())
    stat = chi_square(cells_counts, cells_probs)
    assert stat < chi_square_critical(len(cells_counts) - 1)
    # The same counts against uniform sampling must be rejected: the test has power.
    uniform = np.full(len(buf), 1 / len(buf))
    assert chi_square(counts, uniform) > chi_square_critical(len(buf) - 1)


class SquaredErrorReplay(PrioritizedReplay):
    """A priority rule of its own: p_i = delta_i^2 + eps."""

    def priority(self, td_errors):
        return td_errors**2 + self.eps


def test_a_subclass_that_overrides_the_priority_rule_samples_by_its_own_law():
    buf = SquaredErrorReplay(200, 2, 1, members=1, seed=4, alpha=0.7, eps=1e-6)
    for t in range(200):
        k = np.ones((1, 1), dtype=np.float32)
        zeros = np.zeros(1, dtype=bool)
        buf.add(k * t, k, np.full(1, t, np.float32), k * t, zeros, zeros)
    idx = np.arange(200)[None, :]
    delta = np.random.default_rng(2).uniform(0.1, 3.0, size=idx.shape)
    buf.update_priorities(idx, delta)
    counts = np.zeros(200)
    for _ in range(200):
        counts += np.bincount(buf.sample_indices(256)[0][0], minlength=200)
    squared = delta[0] ** 2 + buf.eps
    assert chi_square(counts, squared / squared.sum()) < chi_square_critical(199)
    # the parent's rule, (|delta| + eps)^alpha, is rejected: the override changed the law
    p = (delta[0] + buf.eps) ** buf.alpha
    assert chi_square(counts, p / p.sum()) > chi_square_critical(199)
    np.testing.assert_allclose(buf.trees.leaves(idx)[0], squared)


def test_new_transitions_enter_at_the_largest_priority_so_far():
    buf = filled_buffer(capacity=16, adds=4)
    buf.update_priorities(np.array([[0, 1]]), np.array([[3.0, 0.1]]))
    buf.add(*(np.zeros((1, d), np.float32) for d in (2, 1)), np.zeros(1, np.float32),
            np.zeros((1, 2), np.float32), np.zeros(1, bool), np.zeros(1, bool))  # fmt: skip
    top = priority(np.array(3.0), buf.alpha, buf.eps)
    assert buf.trees.leaves(np.array([[4]]))[0, 0] == pytest.approx(top)


def test_weights_in_a_batch_are_the_normalised_importance_weights():
    buf = filled_buffer(capacity=64, adds=64)
    buf.update_priorities(np.arange(64)[None, :], np.linspace(0.01, 5, 64)[None, :])
    buf.set_progress(np.array([0.5]))
    batch = buf.sample(32)
    total = buf.trees.total()[0]
    probs = buf.trees.leaves(batch.indices)[0] / total
    expected = (64 * probs) ** -(0.4 + 0.6 * 0.5)
    np.testing.assert_allclose(batch.weights[0].numpy(), expected / expected.max(), rtol=1e-5)


def test_beta_anneals_from_beta0_to_one_per_member():
    buf = make_buffer("prioritized", 8, 1, 1, members=2, seed=0, beta0=0.4)
    buf.set_progress(np.array([0.0, 0.5]))
    np.testing.assert_allclose(buf.beta[:, 0], [0.4, 0.7])
    buf.set_progress(np.array([1.0, 2.0]))
    np.testing.assert_allclose(buf.beta[:, 0], [1.0, 1.0])


def test_state_dict_round_trip_continues_sampling_identically():
    buf = filled_buffer(capacity=32, adds=40, members=2)
    buf.update_priorities(np.tile(np.arange(8), (2, 1)), np.ones((2, 8)) * 4.0)
    restored = make_buffer("prioritized", 32, 2, 1, 2, seed=99, alpha=0.7, eps=1e-6)
    restored.load_state_dict(buf.state_dict())
    a, b = buf.sample(16), restored.sample(16)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights.numpy(), b.weights.numpy())


# -- training -------------------------------------------------------------------------------


def test_training_with_prioritized_replay_updates_priorities(tiny_config):
    from ddpglab.training import Trainer

    trainer = Trainer(tiny_config(**{"replay.kind": "prioritized", "train.episodes": 2}))
    summary = trainer.run()
    assert all(np.isfinite(m.returns).all() for m in summary.members)
    leaves = trainer.buffer.trees.leaves(np.arange(len(trainer.buffer))[None, :])
    assert len(np.unique(leaves)) > 10, "TD errors must have replaced the initial priority"
    assert trainer.buffer.beta[0, 0] == pytest.approx(1.0)


def test_cli_trains_with_replay_prioritized(tmp_path, capsys, built_trainers):
    from ddpglab.config import load_config

    argv = ["train", "--replay", "prioritized", "--episodes", "2", "--quiet"]
    argv += ["--set", "agent.hidden=[16,16]", "--set", "env.max_episode_steps=30"]
    argv += ["--set", "replay.prioritized.alpha=0.5", "--set", "replay.prioritized.beta0=0.3"]
    argv += ["--set", "replay.prioritized.eps=0.001", "--out", str(tmp_path / "run")]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert (tmp_path / "run" / "summary.json").is_file()
    # The run records the replay it was asked for, with its options (not the defaults).
    recorded = load_config(None, tmp_path / "run" / "config.yaml").replay
    assert recorded.kind == "prioritized"
    assert (recorded.prioritized.alpha, recorded.prioritized.beta0) == (0.5, 0.3)
    assert recorded.prioritized.eps == 0.001
    # ... and trained with it: a prioritized buffer holding those options, beta annealed to 1.
    (trainer,) = built_trainers
    buf = trainer.buffer
    assert type(buf) is PrioritizedReplay
    assert (buf.alpha, buf.beta0, buf.eps) == (0.5, 0.3, 0.001)
    assert buf.beta[0, 0] == pytest.approx(1.0)
    rc, _, err = run_cli(["train", "--replay", "nope", "--out", str(tmp_path / "bad")], capsys)
    assert rc == 2
    assert "replay.kind" in err
