"""A trainer's full state, to resume from exactly, and the stop signals that save it.

The state holds everything the loop needs to continue as if it never stopped: networks and
optimisers, replay contents and strategy state, noise, every RNG, each env's episode so far
and the counters. It is written by :func:`ddpglab.state_files.save_state` (atomically) every
``train.state_every`` episodes and when SIGINT or SIGTERM stops the run.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ddpglab.config import ConfigError, budget_grew, same_run_config
from ddpglab.seeding import rng_states, set_rng_states
from ddpglab.summary import MemberSummary

STATE_FILE = "state.npz"
STATE_FORMAT = 1


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training, after the full state was saved."""

    def __init__(self, signum: int, state_path: Path | None):
        self.signum, self.state_path = signum, state_path
        super().__init__(f"stopped by {signal.Signals(signum).name}")


def full_state(trainer: Any) -> dict[str, Any]:
    """Everything a :class:`~ddpglab.training.loop.Trainer` needs to continue exactly."""
    recorder = trainer.recorder
    return {
        "format": STATE_FORMAT,
        "config": trainer.config.model_dump(mode="json"),
        "step": trainer.step,
        "wall_s": time.perf_counter() - trainer.started_at,
        "run_ids": recorder.run_ids,
        "members": [asdict(m) for m in trainer.members],
        "active": trainer.active,
        "failed": trainer.failed,
        "env_steps": trainer.env_steps,
        "evaluated_at": recorder.evaluated_at,
        "checkpointed_at": recorder.checkpointed_at,
        "state_saved_at": trainer.state_saved_at,
        "learning": trainer.learning.state_dict(),
        "values": trainer.values.state_dict(),
        "agent": trainer.agent.state_dict(),
        "buffer": trainer.buffer.state_dict(),
        "noise": trainer.noise.state_dict(),
        "random_actions": rng_states(trainer.random_action_rngs),
        "envs": trainer.envs.state_dict(),
        "eval_envs": trainer.evaluator.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }


def restore_full_state(trainer: Any, state: dict[str, Any]) -> None:
    """Continue from :func:`full_state`, on a Trainer freshly made with the same config,
    or with a larger budget of the same kind: then the state is a finished run's kept final
    state, and every member that did not fail trains on to the new budget.

    Raises:
        ConfigError: the state belongs to another config or to another ddpglab format.
    """
    if state.get("format") != STATE_FORMAT:
        raise ConfigError(f"saved state has format {state.get('format')}, not {STATE_FORMAT}")
    current = trainer.config.model_dump(mode="json")
    if not same_run_config(state["config"], current, budget_may_grow=True):
        raise ConfigError("saved state belongs to a different config")
    recorder = trainer.recorder
    trainer.step, trainer.wall_before = int(state["step"]), float(state["wall_s"])
    recorder.run_ids = list(state["run_ids"])
    trainer.members = [MemberSummary(**m) for m in state["members"]]
    trainer.active[...] = state["active"]
    trainer.failed[...] = state["failed"]
    trainer.env_steps[...] = state["env_steps"]
    recorder.evaluated_at[...] = state["evaluated_at"]
    recorder.checkpointed_at[...] = state["checkpointed_at"]
    trainer.state_saved_at = int(state["state_saved_at"])
    trainer.learning.load_state_dict(state["learning"])
    if "values" in state:  # states saved before per-episode values have none
        trainer.values.load_state_dict(state["values"])
    trainer.agent.load_state_dict(state["agent"])
    trainer.buffer.load_state_dict(state["buffer"])
    trainer.noise.load_state_dict(state["noise"])
    set_rng_states(trainer.random_action_rngs, state["random_actions"])
    trainer.envs.load_state_dict(state["envs"])
    trainer.evaluator.load_state_dict(state["eval_envs"])
    torch.set_rng_state(state["torch_rng"])
    if budget_grew(state["config"], current):
        trainer.active[...] = ~trainer.failed
        if trainer.buffer.follows_progress:
            print(
                "ddpglab: note: the replay schedules follow the share of the budget spent; "
                "they go on from where the new budget puts them, so this run differs from "
                "one trained to the new budget from the start",
                file=sys.stderr,
            )


def state_save_due(every: int, members: list[MemberSummary], saved_at: int) -> int | None:
    """Whether a state save is due every ``every`` episodes per member, on average over
    members, after the save at ``saved_at`` mean episodes: the new ``saved_at`` if so."""
    if not every:
        return None
    episodes = sum(m.episodes for m in members) // len(members)
    if episodes >= saved_at + every:
        return episodes - episodes % every
    return None
