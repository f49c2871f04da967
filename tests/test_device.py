"""The device option: names are checked at the edge, a missing GPU is refused before anything
is written. That every strategy stores transitions as tensors on the training device while
the sampling rules' scalars stay on the host, and that states move between devices, is in
tests/test_replay_contract.py.
"""

from __future__ import annotations

import pytest
import torch
from cli_support import FAST, assert_refused, run_cli

from ddpglab.config import ConfigError
from ddpglab.machine import training_device


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
