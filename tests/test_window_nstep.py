"""Options every strategy shares: the shrinking window and n-step returns; storage properties.

The tests that run once per registered strategy are in tests/test_replay_contract.py; here
are the schedules, the laws particular to one strategy, and the property tests. These keep
a plain Python model of everything each member added (one list
of transitions per member, in order) and check the buffers against it: what the ring and
the strata hold, which transitions a sample may return, and the n-step sums.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_support import GAMMA, KINDS, Model, add_steps

from ddpglab.replay import make_buffer
from ddpglab.replay.stratified import dynamic_threshold
from ddpglab.replay.window import WindowSchedule, window_size

# -- window schedules -------------------------------------------------------------------------


def test_window_schedules_follow_their_formulas():
    f = np.array([0.0, 0.25, 0.5, 1.0, 1.7])
    np.testing.assert_array_equal(window_size("constant", 300, 300, f), [300] * 5)
    np.testing.assert_array_equal(window_size("linear", 1000, 200, f), [1000, 800, 600, 200, 200])
    # exponential: a constant factor per unit of progress, so the midpoint is the geometric mean
    np.testing.assert_array_equal(
        window_size("exponential", 10000, 100, f), [10000, 3162, 1000, 100, 100]
    )
    assert WindowSchedule("linear", 50, 1)(np.array([0.999])) == [1]


# -- sampling inside the window ---------------------------------------------------------------


def test_prioritized_sampling_in_a_window_follows_p_over_the_windows_sum():
    """P(i) = p_i / sum_{j in W} p_j with importance weights (|W| P(i))^-beta / max."""
    buf = make_buffer("prioritized", 64, 2, 1, 1, 3, alpha=1.0, eps=1e-6)
    model = Model(1)
    add_steps(buf, model, [[""]] * 150)  # pos = 22: a window of 40 wraps past slot 63
    priorities = np.random.default_rng(0).uniform(0.1, 5.0, 64)
    buf.update_priorities(np.arange(64)[None], priorities[None])
    buf.set_window(40)
    window_slots = (22 - 40 + np.arange(40)) % 64
    probs = priorities[window_slots] / priorities[window_slots].sum()
    draws = [buf.sample_indices(64) for _ in range(400)]
    idx = np.concatenate([d[0][0] for d in draws])
    assert np.isin(idx, window_slots).all()
    counts = np.array([(idx == s).sum() for s in window_slots])
    expected = counts.sum() * probs
    statistic = ((counts - expected) ** 2 / expected).sum()
    assert statistic < 72.0  # chi^2(39) at p = 0.001 is 72.1
    uniform = counts.sum() / 40
    assert ((counts - uniform) ** 2 / uniform).sum() > 72.0  # a wrong law is rejected
    idx0, weights = draws[0]
    w = (40 * priorities[idx0[0]] / priorities[window_slots].sum()) ** -buf.beta[0, 0]
    np.testing.assert_allclose(weights[0], w / w.max(), rtol=1e-5)


def test_stratified_window_samples_only_the_most_recent_of_each_fifo():
    buf = make_buffer("stratified", 30, 2, 1, 1, 0, threshold_std=0.0)
    model = Model(1)
    for episode in range(12):  # alternating high and low returns fill both FIFOs
        reward = 1.0 if episode % 2 else -1.0
        add_steps(buf, model, [[""]] * 4 + [["trunc"]], rewards=[[reward]] * 5)
    add_steps(buf, model, [[""]] * 2)
    buf.set_window(6)
    obs = buf.sample(3000).obs[0, :, 0].numpy()
    episodes = model.episodes(0)
    # episode 0 (return -5) is judged alone (t = -5: not above it, bad); after it the
    # rolling mean lies between -5 and +5, so the positive episodes are good
    good = [t for e in episodes if model.steps[0][e[0]][1] > 0 for t in e][-6:]
    bad = [t for e in episodes if model.steps[0][e[0]][1] < 0 for t in e][-6:]
    current = [60, 61]
    assert set(np.unique(obs)) == set(good) | set(bad) | set(current)


# -- n-step returns ---------------------------------------------------------------------------


def test_one_step_batches_discount_by_gamma():
    buf = make_buffer("uniform", 10, 2, 1, 1, 0, gamma=0.97)
    add_steps(buf, Model(1), [[""]] * 5)
    assert (buf.sample(8).discounts == np.float32(0.97)).all()


# -- storage properties -------------------------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.tuples(
                st.sampled_from(["", "", "", "term", "trunc"]),
                st.sampled_from(["", "", "term", "trunc"]),
            ),
        ),
        st.tuples(st.just("sample"), st.integers(1, 16)),
        st.tuples(st.just("window"), st.one_of(st.none(), st.integers(1, 12))),
    ),
    max_size=80,
)


@settings(max_examples=50, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    capacity=st.integers(2, 12),
    n_step=st.integers(1, 4),
    ops=operations,
)
def test_any_interleaving_keeps_sizes_order_and_valid_samples(kind, capacity, n_step, ops):
    buf = make_buffer(kind, capacity, 2, 1, 2, 0, gamma=GAMMA, n_step=n_step)
    model = Model(2)
    window = capacity
    for op, arg in ops:
        if op == "add":
            add_steps(buf, model, [list(arg)])
        elif op == "window":
            buf.set_window(arg)
            window = capacity if arg is None else min(arg, capacity)
        elif len(buf) > 0:
            batch = buf.sample(arg)
            for k in range(2):
                allowed = allowed_counters(buf, model, k, window)
                for i in range(arg):
                    t = int(batch.obs[k, i, 0])
                    assert t in allowed
                    total, steps, terminated, marker = model.n_step(k, t, n_step)
                    assert batch.rewards[k, i].item() == pytest.approx(total, rel=1e-5, abs=1e-6)
                    assert batch.next_obs[k, i, 0].item() == marker
                    assert batch.discounts[k, i].item() == pytest.approx(GAMMA**steps)
        added = len(model.steps[0])
        assert buf.size == min(added, capacity)
        # the ring holds the last `capacity` transitions, the newest just before pos
        ring = buf.obs[:, (buf.pos - buf.size + np.arange(buf.size)) % capacity, 0]
        np.testing.assert_array_equal(ring, np.tile(np.arange(added - buf.size, added), (2, 1)))
        if kind == "stratified":
            check_fifos(buf, model, capacity)


def allowed_counters(buf, model: Model, k: int, window: int) -> set[int]:
    """Counters member k may draw: its window of the ring, or for stratified the current
    episode plus the window of each FIFO."""
    added = len(model.steps[k])
    if buf.__class__.__name__ != "StratifiedReplay":
        return set(range(added - min(window, buf.size), added))
    current = int(min(buf.episode_length[k], buf.capacity))
    allowed = set(range(added - current, added))
    for fifo in (0, 1):
        size = int(min(buf.fifo_size[k, fifo], window))
        slots = (buf.fifo_pos[k, fifo] - size + np.arange(size)) % buf.capacity
        allowed |= set(buf.obs[k, (1 + fifo) * buf.capacity + slots, 0].int().tolist())
    return allowed


def check_fifos(buf, model: Model, capacity: int) -> None:
    """Each FIFO holds, oldest first, the last `capacity` transitions of the episodes the
    rolling threshold sent to it."""
    for k in range(2):
        returns: list[float] = []
        kept: dict[bool, list[int]] = {True: [], False: []}
        for episode in model.episodes(k):
            episode_return = float(sum(np.float64(model.steps[k][t][1]) for t in episode))
            returns = (returns + [episode_return])[-50:]
            good = episode_return > dynamic_threshold(returns, buf.threshold_std)
            kept[good] += episode[-capacity:]
        for fifo, good in ((0, True), (1, False)):
            expected = kept[good][-capacity:]
            size = int(buf.fifo_size[k, fifo])
            assert size == len(expected)
            slots = (buf.fifo_pos[k, fifo] - size + np.arange(size)) % capacity
            held = buf.obs[k, (1 + fifo) * capacity + slots, 0].int().tolist()
            assert held == expected


# -- training ---------------------------------------------------------------------------------


def test_the_trainer_moves_the_window_to_its_end_over_the_budget(tiny_config):
    from ddpglab.training import Trainer

    window = {"replay.window.schedule": "linear", "replay.window.start": 60}
    config = tiny_config(**window, **{"replay.window.end": 20, "replay.capacity": 100})
    trainer = Trainer(config)
    assert (trainer.buffer.window == 60).all()
    trainer.run()
    assert (trainer.buffer.window == 20).all()
