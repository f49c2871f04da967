"""The device option: names are checked at the edge, a missing GPU is refused before anything
is written, stored transitions live as tensors on the training device while the sampling
rules' scalars stay on the host, and states move between devices.

CI has no GPU: the tests marked ``cuda`` run only where torch sees one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_support import FAST, assert_refused, run_cli

from ddpglab.config import ConfigError, load_config
from ddpglab.machine import training_device
from ddpglab.replay import make_buffer
from ddpglab.state_files import load_state, save_state
from ddpglab.training import Trainer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "CPU", ""])
def test_unknown_device_names_are_refused(tmp_path, capsys, name):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", "--device", name, "--out", str(out), *FAST], capsys)
    assert_refused(rc, err, out, "train.device", "expected cpu, cuda or cuda:N")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_gpu_the_machine_lacks_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", "--device", "cuda", "--out", str(out), *FAST], capsys)
    assert_refused(rc, err, out, "train.device cuda", "no CUDA GPU")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        training_device("cuda:1")


def test_transitions_live_on_the_device_and_sampling_scalars_on_the_host():
    buf = make_buffer("uniform", 10, obs_dim=3, act_dim=2, members=2, seed=[0, 1], device="cpu")
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


def test_replay_states_hold_host_arrays_and_restore_the_same_samples(tmp_path):
    def filled():
        buf = make_buffer("stratified", 8, obs_dim=2, act_dim=1, members=2, seed=[3, 4])
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
    restored = make_buffer("stratified", 8, obs_dim=2, act_dim=1, members=2, seed=[9, 9])
    restored.load_state_dict(load_state(tmp_path / "buffer.npz"))
    torch.testing.assert_close(restored.transitions, original.transitions, rtol=0, atol=0)
    expected, got = original.sample(32), restored.sample(32)
    for name in ("obs", "actions", "rewards", "next_obs", "terminated"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name), rtol=0, atol=0)


def tiny_config(device: str, kind: str):
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
@pytest.mark.parametrize("kind", ["uniform", "prioritized", "stratified", "softmax"])
def test_training_on_the_gpu_keeps_everything_there_and_resumes_on_the_cpu(tmp_path, kind):
    trainer = Trainer(tiny_config("cuda", kind), out_dir=tmp_path / "gpu")
    trainer.run()
    agent = trainer.agent
    params = [*agent.actor.parameters(), *agent.critic.parameters()]
    assert all(p.device.type == "cuda" for p in params)
    assert trainer.buffer.transitions.device.type == "cuda"
    trainer.save_state()
    state = load_state(tmp_path / "gpu" / "state.npz")
    cpu = Trainer(tiny_config("cpu", kind), out_dir=tmp_path / "cpu")
    cpu.agent.load_state_dict(state["agent"])
    cpu.buffer.load_state_dict(state["buffer"])
    for name in ("actor", "critic", "actor_target", "critic_target"):
        on_gpu, on_cpu = getattr(agent, name).state_dict(), getattr(cpu.agent, name).state_dict()
        for key, value in on_gpu.items():
            torch.testing.assert_close(on_cpu[key], value.cpu(), rtol=0, atol=0)
    torch.testing.assert_close(
        cpu.buffer.transitions, trainer.buffer.transitions.cpu(), rtol=0, atol=0
    )
