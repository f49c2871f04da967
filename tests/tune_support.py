"""Helpers of the tune tests: a tiny search spec and the one-line refusal check."""

from __future__ import annotations

from pathlib import Path

import yaml

TINY = {
    "name": "tiny",
    "base": {
        "preset": "pendulum",
        "set": {
            "agent.hidden": [16, 16],
            "agent.batch_size": 8,
            "agent.learning_starts": 0,
            "replay.kind": "softmax",
            "replay.capacity": 500,
            "env.max_episode_steps": 20,
            "train.eval_every": 0,
            "train.eval_episodes": 1,
            "train.checkpoint_every": 0,
        },
    },
    "objective": {"seeds": 2, "last": 1, "report_every": 1},
    "trials": 3,
    "episodes": 2,
    "population": 2,
    "space": {
        "replay.softmax.beta": {"prior": "lognormal", "mu": 0.0, "sigma": 1.0},
        "agent.actor_lr": {"prior": "loguniform", "low": 1e-4, "high": 1e-2},
        "replay.capacity": {"prior": "categorical", "choices": [200, 500]},
    },
}


def write_spec(folder: Path, **changes) -> Path:
    path = folder / "search.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def assert_one_line_refusal(rc: int, err: str, *mentions: str) -> None:
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("ddpglab") and "error" in lines[0], err
    for text in mentions:
        assert text in lines[0], err
