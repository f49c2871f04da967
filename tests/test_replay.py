"""Uniform replay: ring storage per member, sampling, episode bookkeeping.

What every strategy shares (state round trip, member independence) is in
tests/test_replay_contract.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_support import ACT_DIM, OBS_DIM, add_numbered

from ddpglab.replay import Batch, make_buffer
from ddpglab.replay.uniform import UniformReplay


def uniform(capacity: int, members: int = 1, seed=0):
    return make_buffer("uniform", capacity, OBS_DIM, ACT_DIM, members=members, seed=seed)


def test_make_buffer_builds_the_uniform_strategy():
    assert isinstance(uniform(10), UniformReplay)


def test_make_buffer_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="nope"):
        make_buffer("nope", 10, OBS_DIM, ACT_DIM)


def test_empty_buffer_has_length_zero():
    assert len(uniform(10, members=2)) == 0


# -- ring storage --------------------------------------------------------------------------


def test_wraparound_overwrites_the_oldest_transitions():
    capacity, extra = 5, 3
    buf = uniform(capacity)
    add_numbered(buf, capacity + extra)
    assert len(buf) == capacity
    assert buf.pos == extra
    # Slots 0..2 hold steps 5..7 (overwritten), slots 3..4 still hold steps 3..4.
    np.testing.assert_array_equal(buf.rewards[0], [5, 6, 7, 3, 4])
    np.testing.assert_array_equal(buf.obs[0, :, 0], [5, 6, 7, 3, 4])
    np.testing.assert_array_equal(buf.actions[0, :, 1], [5, 6, 7, 3, 4])
    np.testing.assert_array_equal(buf.next_obs[0, :, 2], [5.5, 6.5, 7.5, 3.5, 4.5])


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 12), n=st.integers(0, 40), members=st.integers(1, 3))
def test_ring_holds_exactly_the_last_capacity_transitions(capacity, n, members):
    buf = uniform(capacity, members=members)
    add_numbered(buf, n, start=1, members=members)
    size = min(n, capacity)
    assert len(buf) == size
    assert buf.pos == n % capacity
    for k in range(members):
        stored = sorted(buf.rewards[k, :size].tolist())
        assert stored == [1000.0 * k + t for t in range(max(1, n + 1 - capacity), n + 1)]
    # Each transition's fields stay together in one slot.
    rewards = buf.rewards[:, :size]
    np.testing.assert_array_equal(buf.obs[:, :size, 0], rewards)
    np.testing.assert_array_equal(buf.actions[:, :size, 0], rewards)
    np.testing.assert_array_equal(buf.next_obs[:, :size, 0], rewards + 0.5)


# -- sampling --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(capacity=st.integers(1, 50), n=st.integers(1, 120), batch=st.integers(1, 64))
def test_sampled_indices_never_point_at_unwritten_slots(capacity, n, batch):
    buf = uniform(capacity, members=2)
    add_numbered(buf, n, start=1, members=2)  # no written value is 0, the fill of a free slot
    sample = buf.sample(batch)
    assert sample.indices.shape == (2, batch)
    assert sample.indices.min() >= 0
    assert sample.indices.max() < len(buf)
    # Every sampled reward is one that was added (a zero slot would be unwritten).
    for k in range(2):
        written = set(range(1000 * k + max(1, n + 1 - capacity), 1000 * k + n + 1))
        assert set(sample.rewards[k].tolist()) <= written


def test_sampling_a_partly_filled_buffer_reaches_every_written_slot_and_no_other():
    buf = uniform(100)
    add_numbered(buf, 10)
    idx = buf.sample(5000).indices
    assert set(np.unique(idx).tolist()) == set(range(10))
    # Uniform: each of the 10 slots gets about 1/10 of the draws.
    counts = np.bincount(idx[0], minlength=10)
    assert counts.min() > 400
    assert counts.max() < 600


def test_batch_fields_are_shaped_members_by_batch():
    members, batch = 3, 7
    buf = uniform(20, members=members)
    add_numbered(buf, 15, members=members)
    b = buf.sample(batch)
    assert isinstance(b, Batch)
    assert b.obs.shape == (members, batch, OBS_DIM)
    assert b.actions.shape == (members, batch, ACT_DIM)
    assert b.rewards.shape == (members, batch)
    assert b.next_obs.shape == (members, batch, OBS_DIM)
    assert b.terminated.shape == (members, batch)
    assert b.indices.shape == (members, batch)
    assert b.weights.shape == (members, batch)
    for t in (b.obs, b.actions, b.rewards, b.next_obs, b.terminated, b.weights):
        assert isinstance(t, torch.Tensor)
        assert t.dtype == torch.float32


def test_uniform_importance_weights_are_ones():
    buf = uniform(20, members=2)
    add_numbered(buf, 15, members=2)
    for batch in (4, 9):
        assert torch.equal(buf.sample(batch).weights, torch.ones(2, batch))


def test_sampled_fields_belong_to_the_sampled_slot():
    buf = uniform(20, members=2)
    add_numbered(buf, 30, members=2)
    b = buf.sample(32)
    k = np.arange(2)[:, None]
    np.testing.assert_array_equal(b.rewards.numpy(), buf.rewards[k, b.indices])
    np.testing.assert_array_equal(b.obs[..., 0].numpy(), b.rewards.numpy())
    np.testing.assert_array_equal(b.actions[..., 0].numpy(), b.rewards.numpy())
    np.testing.assert_array_equal(b.next_obs[..., 0].numpy(), b.rewards.numpy() + 0.5)


def test_wrong_number_of_seeds_is_refused():
    with pytest.raises(ValueError, match="seeds"):
        uniform(10, members=3, seed=[1, 2])


# -- terminated vs truncated ------------------------------------------------------------------


def test_truncation_is_stored_as_not_terminated_so_the_target_bootstraps():
    buf = uniform(10, members=2)
    one = np.ones((2, OBS_DIM), dtype=np.float32)
    act = np.zeros((2, ACT_DIM), dtype=np.float32)
    rew = np.ones(2, dtype=np.float32)
    # Member 0 hits a time limit, member 1 reaches a terminal state.
    buf.add(one, act, rew, one, np.array([False, True]), np.array([True, False]))
    np.testing.assert_array_equal(buf.terminated[:, 0], [0.0, 1.0])
    b = buf.sample(4)
    np.testing.assert_array_equal(b.terminated.numpy(), [[0.0] * 4, [1.0] * 4])


# -- episode bookkeeping ------------------------------------------------------------------------


class RecordingReplay(UniformReplay):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ended = []

    def end_episodes(self, members, returns):
        self.ended.append((members.tolist(), returns.tolist()))


def test_episode_return_accumulates_and_resets_on_terminated_or_truncated():
    buf = RecordingReplay(20, OBS_DIM, ACT_DIM, members=3)
    obs = np.zeros((3, OBS_DIM), dtype=np.float32)
    act = np.zeros((3, ACT_DIM), dtype=np.float32)
    no = np.zeros(3, dtype=bool)
    buf.add(obs, act, np.array([1.0, 2.0, 3.0]), obs, no, no)
    buf.add(obs, act, np.array([1.0, 2.0, 3.0]), obs, no, no)
    np.testing.assert_array_equal(buf.episode_return, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(buf.episode_length, [2, 2, 2])
    assert buf.ended == []

    # Member 0 terminates, member 1 is truncated, member 2 goes on.
    buf.add(
        obs,
        act,
        np.array([0.5, 0.5, 0.5]),
        obs,
        np.array([1, 0, 0], bool),
        np.array([0, 1, 0], bool),
    )
    assert buf.ended == [([0, 1], [2.5, 4.5])]
    np.testing.assert_array_equal(buf.episode_return, [0.0, 0.0, 6.5])
    np.testing.assert_array_equal(buf.episode_length, [0, 0, 3])
    np.testing.assert_array_equal(buf.episodes_finished, [1, 1, 0])

    buf.add(obs, act, np.array([1.0, 1.0, 1.0]), obs, no, no)
    np.testing.assert_array_equal(buf.episode_return, [1.0, 1.0, 7.5])
