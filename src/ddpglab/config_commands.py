"""``ddpglab presets [NAME]``: the shipped configurations, one line each or one in full.

So that a user sees what a preset will run before training it: its env, algorithm, budget
and replay kind, and with a NAME the YAML file exactly as shipped (comments and all).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``presets`` subcommand."""
    presets = commands.add_parser(
        "presets",
        help="list the shipped presets (env, algorithm, budget, replay), or show one's YAML",
        description="Without NAME: one line per preset (name, env, algorithm, budget, replay "
        "kind). With NAME: that preset's YAML as shipped, to copy and edit for --config.",
    )
    presets.add_argument("name", nargs="?", metavar="NAME", help="a preset to show in full")
    presets.set_defaults(run=cmd_presets)


def algorithm(agent: Any) -> str:
    """ "TD3" when all three of its options are on, "DDPG" when none is, else DDPG and the
    TD3 parts it uses."""
    parts = [
        name
        for name, on in (
            ("twin critics", agent.twin_critics),
            ("target smoothing", agent.target_noise > 0),
            ("delayed actor", agent.policy_delay > 1),
        )
        if on
    ]
    if len(parts) == 3:
        return "TD3"
    return "DDPG" + (f" + {', '.join(parts)}" if parts else "")


def preset_line(name: str) -> str:
    """One preset in one line: name, env, algorithm, budget per member, replay kind."""
    from ddpglab.config import load_config

    config = load_config(name)
    train = config.train
    budget = f"{train.episodes} episodes" if train.episodes else f"{train.steps} steps"
    return (
        f"{name}: {config.env.id}, {algorithm(config.agent)}, {budget}, {config.replay.kind} replay"
    )


def cmd_presets(args: argparse.Namespace) -> int:
    from ddpglab.config import preset_names, preset_text

    if args.name is not None:
        print(preset_text(args.name), end="")
        return 0
    for name in preset_names():
        print(preset_line(name))
    return 0
