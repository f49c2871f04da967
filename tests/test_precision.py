"""``train.precision: bf16``: the update's matrix products in bfloat16, everything else fp32.

What must hold in bf16 as in fp32: runs are deterministic on one machine, a seed trains to
the same bits alone and in a group, a resumed run equals an uninterrupted one, and saved
states and actor files are fp32. And bf16 must really be in effect: the products see
bfloat16 inputs, and the results differ from fp32's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_support import TINY_RUN, run_cli
from test_continue import episode_rows
from test_member_independence import GROUPS, TD3, what_the_seed_gives
from torch.utils._python_dispatch import TorchDispatchMode

from ddpglab.actor_file import read_actor_file
from ddpglab.agent import DDPGAgent
from ddpglab.config import load_config
from ddpglab.replay import Batch
from ddpglab.run_folder import train
from ddpglab.state_files import load_state
from ddpglab.training import STATE_FILE

BF16 = {"train.precision": "bf16"}
SHORT = {
    **TINY_RUN,
    "env.max_episode_steps": 40,
    "agent.learning_starts": 30,
    "train.seeds": [0, 1],
    "train.episodes": 4,
    "train.checkpoint_every": 0,
}


class ProductDtypes(TorchDispatchMode):
    """Records the input dtypes of every batched matrix product torch runs."""

    PRODUCTS = {"bmm", "baddbmm"}

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in self.PRODUCTS:
            self.seen |= {a.dtype for a in args if isinstance(a, torch.Tensor)}
        return func(*args, **(kwargs or {}))


def agent_and_batch(precision: str) -> tuple[DDPGAgent, Batch]:
    """A 3-member TD3 agent at ``precision`` and a random minibatch of 16 for it."""
    config = load_config(None, overrides={"agent.hidden": [32, 32], "agent.twin_critics": True})
    agent = DDPGAgent(3, 1, config.agent, [0, 1, 2], precision=precision)
    gen = torch.Generator().manual_seed(0)
    members, size = 3, 16
    batch = Batch(
        obs=torch.randn(members, size, 3, generator=gen),
        actions=torch.rand(members, size, 1, generator=gen) * 2 - 1,
        rewards=torch.randn(members, size, generator=gen),
        next_obs=torch.randn(members, size, 3, generator=gen),
        terminated=torch.zeros(members, size),
        indices=np.zeros((members, size), dtype=np.int64),
        weights=torch.ones(members, size),
        discounts=torch.full((members, size), 0.99),
    )
    return agent, batch


@pytest.mark.parametrize(
    ("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)]
)
def test_the_update_runs_its_products_at_the_precision_and_reports_in_fp32(precision, dtype):
    agent, batch = agent_and_batch(precision)
    with ProductDtypes() as products:
        stats = agent.update(batch)
    assert products.seen == {dtype}
    assert all(t.dtype == torch.float32 for t in stats)
    for p in [*agent.actor_params, *agent.critic_params, *agent._target_params]:
        assert p.dtype == torch.float32
    for state in [*agent.actor_opt.state.values(), *agent.critic_opt.state.values()]:
        assert state["exp_avg"].dtype == torch.float32


def test_acting_stays_fp32_under_bf16():
    agent, _ = agent_and_batch("bf16")
    with ProductDtypes() as products:
        agent.act(np.zeros((3, 3), dtype=np.float32))
    assert products.seen == {torch.float32}


def same_bits(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["returns"] != b["returns"] or a["evaluations"] != b["evaluations"]:
        return False
    return all(
        torch.equal(a["networks"][net][name], b["networks"][net][name])
        for net in a["networks"]
        for name in a["networks"][net]
    )


def test_a_seed_trains_to_the_same_bits_in_bf16_alone_and_in_a_group():
    # TD3 runs every product DDPG does, and the twin critics' and smoothing's besides.
    bf16 = {**TD3, **BF16}
    alone = what_the_seed_gives(GROUPS["alone"], bf16)
    grouped = what_the_seed_gives(GROUPS["group of 8"], bf16)
    assert same_bits(grouped, alone), "bf16: the seed trained differently in a group of 8"
    again = what_the_seed_gives(GROUPS["alone"], bf16)
    assert same_bits(again, alone), "bf16 is not deterministic"
    fp32 = what_the_seed_gives(GROUPS["alone"], TD3)
    assert not same_bits(fp32, alone), "bf16 trained to fp32's bits: it was not in effect"


def test_a_continued_bf16_run_equals_one_trained_to_the_larger_budget(tmp_path):
    reference = tmp_path / "reference"
    train(load_config(None, overrides={**SHORT, **BF16, "train.episodes": 6}), reference)
    out = tmp_path / "continued"
    first = load_config(None, overrides={**SHORT, **BF16, "train.keep_state": True})
    train(first, out)
    longer = load_config(None, overrides={**SHORT, **BF16, "train.keep_state": True})
    longer = longer.model_copy(update={"train": longer.train.model_copy(update={"episodes": 6})})
    train(longer, out, resume=True)
    assert episode_rows(out) == episode_rows(reference)


def test_a_bf16_run_saves_fp32_states_and_actors(tmp_path: Path):
    config = load_config(None, overrides={**SHORT, **BF16, "train.keep_state": True})
    train(config, tmp_path)
    state = load_state(tmp_path / STATE_FILE)
    floats = [t for t in _tensors(state) if t.is_floating_point()]
    assert floats, "the state holds no tensors"
    assert {t.dtype for t in floats} == {torch.float32}
    actor_files = sorted((tmp_path / "checkpoints").rglob("*.pt"))
    assert actor_files
    for path in actor_files:
        actor = read_actor_file(path)
        assert {t.dtype for t in _tensors(actor)} == {torch.float32}


def _tensors(tree: Any) -> list[torch.Tensor]:
    """Every tensor in a nest of dicts, lists and tuples."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _tensors(v)]
    if isinstance(tree, list | tuple):
        return [t for v in tree for t in _tensors(v)]
    return []


@pytest.mark.parametrize("value", ["fp16", "bfloat16", "64"])
def test_an_unknown_precision_is_refused_with_one_line(tmp_path, capsys, value):
    out = tmp_path / "run"
    rc, _, err = run_cli(
        ["train", "--out", str(out), "--set", f"train.precision={value}", "--quiet"], capsys
    )
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "train.precision" in err, err
    assert not out.exists()
