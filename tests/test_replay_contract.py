"""The contract every replay strategy keeps, checked for every registered strategy.

A strategy found by the registry (a new module in ``ddpglab.replay``, or an entry point)
is parametrised into each test here with no edit: its state round trip, each member's
independence, n-step returns, the shrinking window, the device it stores on, NaN isolation
and training end to end. Exact resume after a kill, over the same registry, is in
tests/test_resume.py (its kill harness lives there). What is particular to one strategy
(its law, by chi-square) stays in that strategy's test file.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from cli_support import run_cli
from replay_support import (
    ACT_DIM,
    GAMMA,
    KINDS,
    OBS_DIM,
    RING_KINDS,
    Model,
    add_numbered,
    add_steps,
)
from test_numerical_faults import ENV_ID as POISONED_ENV_ID
from test_numerical_faults import POISON_AT

from ddpglab.config import load_config
from ddpglab.replay import make_buffer, strategies
from ddpglab.replay.window import WindowSchedule
from ddpglab.state_files import load_state, save_state
from ddpglab.training import Trainer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
every_kind = pytest.mark.parametrize("kind", KINDS)


def buffer(kind: str, capacity: int, members: int = 1, seed=0):
    return make_buffer(kind, capacity, OBS_DIM, ACT_DIM, members=members, seed=seed)


# -- state round trip ---------------------------------------------------------------------------


@every_kind
def test_state_dict_round_trip_continues_sampling_identically(kind):
    buf = buffer(kind, 30, members=2, seed=[5, 6])
    add_numbered(buf, 45, members=2, truncate_every=7)
    buf.sample(8)  # advance the generators: the state must capture where they stand
    saved = pickle.loads(pickle.dumps(buf.state_dict()))

    restored = buffer(kind, 30, members=2, seed=[0, 0 + 99])
    restored.load_state_dict(saved)
    assert len(restored) == len(buf)
    assert restored.pos == buf.pos
    np.testing.assert_array_equal(restored.episode_return, buf.episode_return)
    np.testing.assert_array_equal(restored.episode_length, buf.episode_length)
    np.testing.assert_array_equal(restored.episodes_finished, buf.episodes_finished)
    for _ in range(3):
        a, b = buf.sample(16), restored.sample(16)
        np.testing.assert_array_equal(a.indices, b.indices)
        for field in ("obs", "actions", "rewards", "next_obs", "terminated"):
            assert torch.equal(getattr(a, field), getattr(b, field))
    # Both keep writing at the same place.
    add_numbered(buf, 1, start=100, members=2)
    add_numbered(restored, 1, start=100, members=2)
    np.testing.assert_array_equal(buf.rewards, restored.rewards)


@every_kind
def test_replay_states_hold_host_arrays_and_restore_the_same_samples(tmp_path, kind):
    def filled():
        buf = make_buffer(kind, 8, obs_dim=2, act_dim=1, members=2, seed=[3, 4])
        rng = np.random.default_rng(0)
        for t in range(13):
            ended = np.array([t % 4 == 3, t % 5 == 4])
            buf.add(
                rng.normal(size=(2, 2)).astype(np.float32),
                rng.uniform(-1, 1, size=(2, 1)).astype(np.float32),
                rng.normal(size=2).astype(np.float32),
                rng.normal(size=(2, 2)).astype(np.float32),
                np.zeros(2, dtype=bool),
                ended,
            )
        return buf

    original = filled()
    state = original.state_dict()
    for parts in state["slots"].values():
        assert all(isinstance(part, np.ndarray) for part in parts)
    save_state(tmp_path / "buffer.npz", state)
    restored = make_buffer(kind, 8, obs_dim=2, act_dim=1, members=2, seed=[9, 9])
    restored.load_state_dict(load_state(tmp_path / "buffer.npz"))
    torch.testing.assert_close(restored.transitions, original.transitions, rtol=0, atol=0)
    expected, got = original.sample(32), restored.sample(32)
    for name in ("obs", "actions", "rewards", "next_obs", "terminated"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), rtol=0, atol=0)


# -- members ------------------------------------------------------------------------------------


@every_kind
def test_each_member_samples_from_its_own_ring(kind):
    buf = buffer(kind, 50, members=3)
    add_numbered(buf, 40, members=3)
    b = buf.sample(64)
    for k in range(3):
        values = b.rewards[k].numpy()
        assert np.all((values >= 1000 * k) & (values < 1000 * k + 40))


@every_kind
def test_members_draw_different_indices_from_their_own_seeds(kind):
    together = buffer(kind, 50, members=3, seed=[1, 2, 3])
    alone = buffer(kind, 50, members=1, seed=[3])
    add_numbered(together, 40, members=3)
    add_numbered(alone, 40, members=1, first_member=2)  # what member 2 of `together` got
    for _ in range(3):
        t, a = together.sample(16).indices, alone.sample(16).indices
        np.testing.assert_array_equal(t[2], a[0])
        assert not np.array_equal(t[0], t[1])


@every_kind
def test_an_int_seed_gives_member_k_seed_plus_k(kind):
    a = buffer(kind, 50, members=2, seed=10)
    b = buffer(kind, 50, members=2, seed=[10, 11])
    add_numbered(a, 30, members=2)
    add_numbered(b, 30, members=2)
    np.testing.assert_array_equal(a.sample(8).indices, b.sample(8).indices)


# -- the shrinking window -----------------------------------------------------------------------


@every_kind
def test_set_progress_moves_each_members_window_along_the_schedule(kind):
    buf = make_buffer(kind, 100, 2, 1, 2, 0, window=WindowSchedule("linear", 80, 20))
    np.testing.assert_array_equal(buf.window, [80, 80])
    buf.set_progress(np.array([0.5, 1.0]))
    np.testing.assert_array_equal(buf.window, [50, 20])


@pytest.mark.parametrize("kind", RING_KINDS)
def test_samples_come_from_each_members_most_recent_window_and_reach_all_of_it(kind):
    buf = make_buffer(kind, 50, 2, 1, 2, 0)
    model = Model(2)
    add_steps(buf, model, [["", ""]] * 137)  # wrapped: the window straddles the ring's end
    buf.set_window(np.array([7, 30]))
    idx = buf.sample(4000).obs[..., 0].numpy()
    for k, window in enumerate((7, 30)):
        np.testing.assert_array_equal(np.unique(idx[k]), np.arange(137 - window, 137))


# -- n-step returns -----------------------------------------------------------------------------


@every_kind
def test_n_step_transitions_match_a_hand_rolled_sum_across_terminal_and_truncation(kind):
    buf = make_buffer(kind, 40, 2, 1, 2, 0, gamma=GAMMA, n_step=3)
    model = Model(2)
    # member 0: an episode that terminates, one truncated by the time limit, one going on;
    # member 1: episodes of 2 steps, alternately truncated and terminated
    ends = [[""] * 4 + ["term"], [""] * 3 + ["trunc"], [""] * 2]
    member0 = [f for episode in ends for f in episode]
    member1 = ["", "trunc", "", "term"] * 2 + ["", "trunc", ""]
    add_steps(buf, model, [list(pair) for pair in zip(member0, member1, strict=True)])
    batch = buf.sample(500)
    for k in range(2):
        for i in range(500):
            t = int(batch.obs[k, i, 0])
            total, steps, terminated, marker = model.n_step(k, t, 3)
            assert batch.rewards[k, i].item() == pytest.approx(total, rel=1e-6)
            assert batch.discounts[k, i].item() == pytest.approx(GAMMA**steps, rel=1e-6)
            assert batch.terminated[k, i].item() == terminated
            assert batch.next_obs[k, i, 0].item() == marker


# -- the device ---------------------------------------------------------------------------------


@every_kind
def test_transitions_live_on_the_device_and_sampling_scalars_on_the_host(kind):
    buf = make_buffer(kind, 10, obs_dim=3, act_dim=2, members=2, seed=[0, 1], device="cpu")
    for t in range(4):
        obs = np.full((2, 3), t, np.float32)
        act = np.full((2, 2), -t, np.float32)
        flags = np.zeros(2, dtype=bool)
        buf.add(obs, act, np.full(2, t, np.float32), obs + 1, flags, flags)
    assert isinstance(buf.transitions, torch.Tensor)
    assert buf.transitions.device == torch.device("cpu")
    # obs, actions and next_obs are views of the one tensor a batch is gathered from
    for view in (buf.obs, buf.actions, buf.next_obs):
        assert view.untyped_storage().data_ptr() == buf.transitions.untyped_storage().data_ptr()
    assert isinstance(buf.rewards, np.ndarray) and isinstance(buf.episode_end, np.ndarray)
    batch = buf.sample(50)
    t = batch.rewards  # the reward of slot t is t, so every field can be checked against it
    np.testing.assert_array_equal(batch.obs.numpy(), np.repeat(t[..., None].numpy(), 3, -1))
    np.testing.assert_array_equal(batch.actions.numpy(), -np.repeat(t[..., None].numpy(), 2, -1))
    np.testing.assert_array_equal(batch.next_obs.numpy(), batch.obs.numpy() + 1)
    np.testing.assert_array_equal(batch.indices, t.numpy())


def device_config(device: str, kind: str):
    return load_config(
        "pendulum",
        overrides={
            "agent.hidden": [32, 32],
            "agent.batch_size": 16,
            "agent.learning_starts": 100,
            "replay.kind": kind,
            "replay.capacity": 2000,
            "train.seeds": [0, 1],
            "train.episodes": 2,
            "train.eval_every": 0,
            "train.eval_episodes": 1,
            "train.torch_threads": 1,
            "train.device": device,
        },
    )


@cuda
@every_kind
def test_training_on_the_gpu_keeps_everything_there_and_resumes_on_the_cpu(tmp_path, kind):
    trainer = Trainer(device_config("cuda", kind), out_dir=tmp_path / "gpu")
    trainer.run()
    agent = trainer.agent
    params = [*agent.actor.parameters(), *agent.critic.parameters()]
    assert all(p.device.type == "cuda" for p in params)
    assert trainer.buffer.transitions.device.type == "cuda"
    trainer.save_state()
    state = load_state(tmp_path / "gpu" / "state.npz")
    cpu = Trainer(device_config("cpu", kind), out_dir=tmp_path / "cpu")
    cpu.agent.load_state_dict(state["agent"])
    cpu.buffer.load_state_dict(state["buffer"])
    for name in ("actor", "critic", "actor_target", "critic_target"):
        on_gpu, on_cpu = getattr(agent, name).state_dict(), getattr(cpu.agent, name).state_dict()
        for key, value in on_gpu.items():
            torch.testing.assert_close(on_cpu[key], value.cpu(), rtol=0, atol=0)
    torch.testing.assert_close(
        cpu.buffer.transitions, trainer.buffer.transitions.cpu(), rtol=0, atol=0
    )


# -- numerical faults ---------------------------------------------------------------------------


@every_kind
def test_a_poisoned_reward_stops_only_its_member(tiny_config, kind):
    setup = {"env.id": POISONED_ENV_ID, "replay.kind": kind, "train.episodes": 4}
    clean = Trainer(tiny_config(**setup, **{"train.seeds": [0, 2]})).run()
    trainer = Trainer(tiny_config(**setup, **{"train.seeds": [0, 1, 2]}))
    summary = trainer.run()
    poisoned = summary.members[1]
    assert poisoned.error == f"member 1 (seed 1): reward is nan at env step {POISON_AT}"
    assert poisoned.episodes == 0  # the episode it was poisoned in is not recorded
    for ours, alone in zip((summary.members[0], summary.members[2]), clean.members, strict=True):
        assert ours.error is None
        assert ours.returns == alone.returns  # the others never noticed
    assert all(torch.isfinite(p).all() for p in trainer.agent.critic.parameters())


# -- training end to end ------------------------------------------------------------------------


@every_kind
def test_every_strategy_trains_with_n_step_returns_and_a_shrinking_window(
    kind, tmp_path, capsys, built_trainers
):
    argv = ["train", "--replay", kind, "--episodes", "2", "--seeds", "2", "--quiet"]
    argv += ["--set", "agent.hidden=[16,16]", "--set", "env.max_episode_steps=40"]
    argv += ["--set", "replay.n_step=3", "--set", "replay.window.schedule=exponential"]
    argv += ["--set", "replay.window.start=60", "--set", "replay.window.end=20"]
    rc, _, err = run_cli([*argv, "--out", str(tmp_path / kind)], capsys)
    assert rc == 0, err
    assert (tmp_path / kind / "summary.json").is_file()
    recorded = load_config(None, tmp_path / kind / "config.yaml").replay
    assert (recorded.kind, recorded.n_step) == (kind, 3)
    assert recorded.window is not None
    assert (recorded.window.schedule, recorded.window.start, recorded.window.end) == (
        "exponential",
        60,
        20,
    )
    # The buffer trained on is that strategy, summing 3 rewards, its window shrunk to the end.
    (trainer,) = built_trainers
    buf = trainer.buffer
    assert type(buf) is strategies()[kind]
    assert buf.n_step == 3
    assert (buf.window == 20).all()
    # A batch bootstraps gamma^k steps ahead, k <= 3 (fewer only at an episode's end):
    # with one-step transitions every discount would be gamma.
    gamma = trainer.config.agent.gamma
    discounts = buf.sample(64).discounts.numpy()
    powers = np.log(discounts) / np.log(gamma)
    np.testing.assert_allclose(powers, np.round(powers), atol=1e-3)
    assert set(np.round(powers).astype(int).ravel()) <= {1, 2, 3}
    assert (np.round(powers) == 3).mean() > 0.5
