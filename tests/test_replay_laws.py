"""Every strategy's stated law, ``probabilities()``, is the law its draws follow.

Parametrised over the registry, so a strategy added later is held to it too: each row of
the law sums to 1, puts nothing where nothing may be drawn, and a chi-square test of many
drawn minibatches accepts it, before and after the ring wraps, with a window, and with
CER's newest transition mixed in. The power of the test: the same draws refute a plausible
wrong law (uniform over everything stored). The brute-force derivation of each new
strategy's law is in its own test file (test_lap, test_geometric, test_ere).
"""

from __future__ import annotations

import numpy as np
import pytest
from law_support import add_transitions, draw_counts, fits, rejects
from replay_support import KINDS

from ddpglab.replay import make_buffer

#: Parameters that make each law clearly non-uniform on a buffer of 120 (others: defaults).
PARAMS = {
    "prioritized": {"alpha": 0.7},
    "softmax": {"beta": 0.5},
    "lap": {"alpha": 0.4, "min_priority": 1.0},
    "geometric": {"p": 0.02},
    "ere": {"eta0": 0.99, "c_min": 16},
}
CAPACITY, BATCH, BATCHES = 120, 64, 300


def filled(kind: str, adds: int, window=None, combined: bool = False):
    buf = make_buffer(
        kind, CAPACITY, 1, 1, members=2, seed=[3, 4], combined=combined, **PARAMS.get(kind, {})
    )
    add_transitions(buf, adds)
    if buf.needs_priorities:  # TD errors over three orders of magnitude, around 1
        rng = np.random.default_rng(0)
        slots = np.tile(np.arange(len(buf)), (2, 1))
        buf.update_priorities(slots, 10.0 ** rng.uniform(-1.5, 1.5, size=slots.shape))
    if buf.follows_progress:
        buf.set_progress(np.array([0.3, 0.6]))
    if window is not None:
        buf.set_window(np.array(window))
    return buf


def uniform_over_stored(buf) -> np.ndarray:
    """The wrong law the tests must refute: every stored ring slot alike, (capacity,)."""
    law = np.zeros(buf.capacity * buf.slots_per_capacity)
    law[: len(buf) if buf.slots_per_capacity == 1 else buf.size] = 1.0
    return law / law.sum()


CASES = {
    "before-wrap": dict(adds=90),
    "after-wrap": dict(adds=277),
    "after-wrap-window": dict(adds=277, window=[40, 25]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_draws_follow_the_stated_law(kind, case):
    buf = filled(kind, **CASES[case])
    law = buf.probabilities(BATCH)
    assert law.shape == (2, CAPACITY * buf.slots_per_capacity)
    assert law.dtype == np.float64
    np.testing.assert_allclose(law.sum(axis=1), 1.0, rtol=1e-12)
    assert (law >= 0).all()
    if buf.slots_per_capacity == 1:  # nothing outside the window (or never written)
        mask = buf.window_mask()
        assert not any(law[k, ~mask[k]].any() for k in range(2))
    counts = draw_counts(buf, BATCH, BATCHES)
    for k in range(2):
        assert fits(counts[k], law[k]), f"member {k}"
    strategy_is_uniform = kind == "uniform" and "window" not in case
    if not strategy_is_uniform:
        assert all(rejects(counts[k], uniform_over_stored(buf)) for k in range(2))


@pytest.mark.parametrize("kind", KINDS)
def test_with_cer_the_newest_transition_joins_the_law(kind):
    buf = filled(kind, adds=277, combined=True)
    law = buf.probabilities(BATCH)
    np.testing.assert_allclose(law.sum(axis=1), 1.0, rtol=1e-12)
    newest = buf.newest_slot()
    assert (law[:, newest] >= 1 / BATCH).all()
    np.testing.assert_allclose(
        law,
        buf.sampling_law(BATCH - 1) * (BATCH - 1) / BATCH + np.eye(law.shape[1])[newest] / BATCH,
    )
    counts = draw_counts(buf, BATCH, BATCHES)
    for k in range(2):
        assert counts[k, newest] >= BATCHES
        assert fits(counts[k], law[k]), f"member {k}"
        # the law without CER's share on the newest transition is refuted
        assert rejects(counts[k], buf.sampling_law(BATCH)[k])


@pytest.mark.parametrize("kind", KINDS)
def test_the_law_of_one_draw_needs_no_batch_size_where_draws_are_alike(kind):
    buf = filled(kind, adds=50)
    if kind == "stratified":  # whole draws per stratum: the law depends on B
        with pytest.raises(ValueError, match="batch size"):
            buf.probabilities()
    else:
        np.testing.assert_array_equal(buf.probabilities(), buf.probabilities(BATCH))
