"""The device option: names are checked at the edge, a missing GPU is refused before anything
is written. That every strategy stores transitions as tensors on the training device while
the sampling rules' scalars stay on the host, and that states move between devices, is in
tests/test_replay_contract.py. On a GPU, the losses are looked at every 100 updates, not after
each (a look waits for the device), and still name what fails a member.
"""

from __future__ import annotations

import math

import pytest
import torch
from cli_support import FAST, assert_refused, run_cli

from ddpglab.config import ConfigError
from ddpglab.machine import training_device
from ddpglab.training import Trainer


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_on_a_gpu_the_losses_are_looked_at_every_100_updates_with_the_same_messages(
    tiny_config,
):
    def blown_up_run(**overrides):
        config = tiny_config(**{"train.device": "cuda", "train.seeds": [0, 1], **overrides})
        trainer = Trainer(config)
        with torch.no_grad():
            trainer.agent.critic.weights[0][1].fill_(math.inf)
        return trainer, trainer.run()

    trainer, summary = blown_up_run()
    assert trainer.update_watch.every == 100 and trainer.update_watch.values.is_cuda
    _, each_update = blown_up_run(**{"train.finite_check_every": 1})
    assert summary.members[1].error == each_update.members[1].error is not None
    assert summary.members[0].error is None
