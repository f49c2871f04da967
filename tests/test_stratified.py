"""Stratified replay: the dynamic threshold, episode classification, batch composition."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from cli_support import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from ddpglab.replay import make_buffer
from ddpglab.replay.stratified import dynamic_threshold, stratum_sizes


def add_episode(buf, rewards, member_rewards=None):
    """Add one episode of len(rewards) steps to every member (same rewards unless given)."""
    k = buf.members
    for t, r in enumerate(rewards):
        last = t == len(rewards) - 1
        rew = np.full(k, r, np.float32) if member_rewards is None else member_rewards[:, t]
        obs = np.full((k, 2), buf.episodes_finished[0] * 1000 + t, np.float32)
        buf.add(obs, np.zeros((k, 1), np.float32), rew, obs + 1, np.zeros(k, bool),
                np.full(k, last))  # fmt: skip


def test_threshold_is_mean_plus_lambda_population_std():
    returns = [1.0, 2.0, 3.0, 4.0]
    std = np.sqrt(np.mean((np.array(returns) - 2.5) ** 2))  # population std: 1.1180...
    assert dynamic_threshold(returns, 0.5) == pytest.approx(2.5 + 0.5 * std)
    assert dynamic_threshold(returns, -0.5) == pytest.approx(2.5 - 0.5 * std)
    assert dynamic_threshold([7.0], 0.5) == 7.0


@pytest.mark.parametrize("threshold_std", [0.5, -0.5])
def test_episodes_go_to_good_or_bad_by_the_rolling_threshold(threshold_std):
    buf = make_buffer("stratified", 100, 2, 1, 1, 0, threshold_std=threshold_std,
                      window_episodes=3)  # fmt: skip
    returns = [5.0, 1.0, 9.0, 4.0, 6.0]
    seen: list[float] = []
    for g in returns:
        add_episode(buf, [g / 2, g / 2])
        seen.append(g)
        window = seen[-3:]  # the window of 3 includes the episode itself
        t = np.mean(window) + threshold_std * np.std(window)
        assert buf.last_episode_threshold[0] == pytest.approx(t)
        assert bool(buf.last_episode_good[0]) == (g > t)
    good = sum(g > np.mean(returns[max(0, i - 2) : i + 1]) + threshold_std
               * np.std(returns[max(0, i - 2) : i + 1]) for i, g in enumerate(returns))  # fmt: skip
    assert buf.fifo_size[0, 0] == 2 * good
    assert buf.fifo_size[0, 1] == 2 * (len(returns) - good)


def test_the_default_window_holds_fifty_returns():
    buf = make_buffer("stratified", 1000, 2, 1, 1, 0, threshold_std=0.0)
    for g in range(60):
        add_episode(buf, [float(g)])
    assert len(buf.recent_returns[0]) == 50
    assert buf.last_episode_threshold[0] == pytest.approx(np.mean(np.arange(10, 60)))


def test_a_moved_episode_keeps_its_transitions_in_order():
    buf = make_buffer("stratified", 8, 2, 1, 1, 0, threshold_std=-10.0)
    add_episode(buf, [1.0, 2.0, 3.0])  # the first episode is its own threshold: bad
    add_episode(buf, [4.0, 5.0, 6.0, 7.0, 8.0])  # good from here on (lambda = -10)
    add_episode(buf, [9.0, 10.0, 11.0, 12.0])  # 9 good transitions into a FIFO of 8
    assert list(buf.fifo_size[0]) == [8, 3]
    good = slice(8, 16)
    oldest_first = np.roll(buf.rewards[0, good], -buf.fifo_pos[0, 0])
    np.testing.assert_array_equal(oldest_first, [5, 6, 7, 8, 9, 10, 11, 12])
    np.testing.assert_array_equal(buf.rewards[0, 16:19], [1, 2, 3])


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 256),
    sizes=st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500)).filter(
        lambda s: sum(s) > 0
    ),
    good_ratio=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
)
def test_stratum_sizes_follow_the_rule(batch, sizes, good_ratio):
    current, good, bad = sizes
    n_cur, n_good, n_bad = stratum_sizes(batch, current, good, bad, good_ratio)
    assert n_cur + n_good + n_bad == batch
    assert min(n_cur, n_good, n_bad) >= 0
    if good == 0 and bad == 0:
        assert n_cur == batch
        return
    assert n_cur == batch * current // (current + good + bad)
    rest = batch - n_cur
    if good and bad:
        assert (n_good, n_bad) == (
            int(np.floor(rest * good_ratio)),
            rest - int(np.floor(rest * good_ratio)),
        )
    if good == 0:
        assert n_good == 0  # a dry stratum passes its share on
    if bad == 0:
        assert n_bad == 0


def test_a_batch_draws_each_stratum_from_its_own_slots():
    buf = make_buffer("stratified", 50, 2, 1, 2, 0, threshold_std=0.0, good_ratio=0.7)
    for g in [0.0, 10.0, 0.0, 10.0]:  # alternate bad and good episodes of 5 steps
        add_episode(buf, [g] * 5)
    for _ in range(4):  # an unfinished episode: the current stratum
        obs = np.full((2, 2), -1.0, np.float32)
        buf.add(obs, np.zeros((2, 1), np.float32), np.full(2, 0.5, np.float32), obs,
                np.zeros(2, bool), np.zeros(2, bool))  # fmt: skip
    batch = buf.sample(64)
    for k in range(2):
        idx = batch.indices[k]
        good, bad = buf.fifo_size[k]
        n_cur, n_good, n_bad = stratum_sizes(64, 4, int(good), int(bad), 0.7)
        assert np.sum(idx < 50) == n_cur
        assert np.sum((idx >= 50) & (idx < 100)) == n_good
        assert np.sum(idx >= 100) == n_bad
        np.testing.assert_array_equal(batch.rewards[k, :n_cur].numpy(), 0.5)  # current episode
        assert np.all(batch.rewards[k, n_cur : n_cur + n_good].numpy() == 10.0)
    assert len(buf) == 4 + 20  # the current episode plus four finished ones of 5 steps


def test_state_dict_round_trip_continues_identically():
    buf = make_buffer("stratified", 20, 2, 1, 2, 0, window_episodes=4)
    for g in [1.0, 3.0, 2.0, 5.0, 0.0]:
        add_episode(buf, [g, g, g])
    restored = make_buffer("stratified", 20, 2, 1, 2, 9, window_episodes=4)
    restored.load_state_dict(buf.state_dict())
    np.testing.assert_array_equal(buf.sample(16).indices, restored.sample(16).indices)
    add_episode(buf, [4.0])
    add_episode(restored, [4.0])
    assert restored.last_episode_threshold[0] == buf.last_episode_threshold[0]


def test_training_records_each_episodes_threshold_in_the_store(tmp_path, capsys):
    argv = ["train", "--replay", "stratified", "--episodes", "4", "--quiet", "--seeds", "2"]
    argv += ["--set", "agent.hidden=[16,16]", "--set", "env.max_episode_steps=30"]
    argv += ["--set", "replay.stratified.threshold_std=-0.5", "--out", str(tmp_path / "run")]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as db:
        rows = db.execute("SELECT run_id, return, threshold FROM episodes ORDER BY run_id, episode")
        rows = rows.fetchall()
    assert len(rows) == 8
    for run_id in {r[0] for r in rows}:
        returns = [r[1] for r in rows if r[0] == run_id]
        thresholds = [r[2] for r in rows if r[0] == run_id]
        for i, t in enumerate(thresholds):
            window = returns[: i + 1]
            assert t == pytest.approx(np.mean(window) - 0.5 * np.std(window), rel=1e-9)


def test_uniform_runs_store_no_threshold(tiny_config, tmp_path):
    from ddpglab.run_folder import train

    train(tiny_config(**{"train.episodes": 1}), out=tmp_path)
    with sqlite3.connect(tmp_path / "results.sqlite") as db:
        assert db.execute("SELECT threshold FROM episodes").fetchall() == [(None,)]
