"""Shared fixtures: tiny configs that train in well under a second."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from cli_support import TINY_RUN

from ddpglab.config import Config, load_config

# Small networks and short episodes: enough to exercise every code path of the trainer
# (updates start once the buffer holds more than one batch) at a fraction of the cost. The
# CLI tests' tiny-run flags (cli_support.FAST) are the same settings.
TINY: dict[str, Any] = {
    **TINY_RUN,
    "env.max_episode_steps": 50,
    "train.episodes": 3,
    "train.checkpoint_every": 0,
}


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny networks are fastest on one thread, and the test machine is shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_config():
    """Factory: ``tiny_config(**{"train.seeds": [3]})`` -> a validated tiny Pendulum config."""

    def make(**overrides: Any) -> Config:
        return load_config(None, overrides={**TINY, **overrides})

    return make


@pytest.fixture
def built_trainers(monkeypatch):
    """The Trainers built while the test runs (e.g. by the CLI), in order: to look at the
    buffer and agent a command line really trained with."""
    from ddpglab.training import Trainer

    made: list[Trainer] = []
    build = Trainer.__init__

    def recording_init(self, *args, **kwargs):
        build(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Trainer, "__init__", recording_init)
    return made


@pytest.fixture
def stop_before_training(monkeypatch):
    """Training and a study's first write replaced by stand-ins that raise
    fuzz_support.ReachedTraining: the CLI accepted the input (the fuzz tests' seam)."""
    from fuzz_support import patch_the_seam

    patch_the_seam(monkeypatch)
