"""Command line: ``ddpglab train`` here, further commands from the modules in ``COMMAND_MODULES``.

Bad input (unknown env, bad config key or value, an output folder holding another run)
ends with one line on stderr and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import ddpglab
from ddpglab import config_commands
from ddpglab.cli_common import (
    EXIT_USAGE,
    LazyHelp,
    LazyHelpFormatter,
    Parser,
    one_line,
    parse_seeds,
    positive_int,
    seed,
)
from ddpglab.config import (
    BUDGETS,
    Config,
    ConfigError,
    load_config,
    parse_override,
    preset_names,
    to_yaml,
)
from ddpglab.report import commands as report_commands
from ddpglab.run_control import import_holding_sigint
from ddpglab.study import commands as study_commands
from ddpglab.theory import commands as theory_commands
from ddpglab.tune import commands as tune_commands

#: Modules that add subcommands. Each defines ``add_parsers(commands)``, which adds its
#: subparsers with ``set_defaults(run=handler)``, ``handler(args) -> int`` raising
#: ConfigError on bad input. They import heavy dependencies inside the handlers, so that
#: building the parser stays fast.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    config_commands,
    report_commands,
    study_commands,
    theory_commands,
    tune_commands,
)

# The train options that choose the config (refused with --resume, which reuses the run's;
# a budget alone may grow a finished run): argparse destination -> option.
CONFIG_OPTIONS = {
    **{name: f"--{name}" for name in ("preset", "config", "env", "replay", "seed", "seeds")},
    "overrides": "--set",
}
BUDGET_OPTIONS = {name: f"--{name}" for name in BUDGETS}


class VersionAction(argparse.Action):
    """``--version``: the package version and, in a git checkout, the commit (asked of git
    only when the option is given)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        kwargs.setdefault("help", "print the version (and git commit) and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from ddpglab.provenance import git_commit

        commit = git_commit()
        print(f"ddpglab {ddpglab.__version__}" + (f" ({commit})" if commit else ""))
        parser.exit(0)


def replay_kinds_help() -> str:
    """--replay's help with the kinds it accepts (the registry's, which imports torch)."""
    from ddpglab.replay.registry import strategies

    return f"replay sampling strategy (sets replay.kind): {', '.join(strategies())}"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ddpglab", description="DDPG research toolkit")
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = commands.add_parser(
        "train",
        help="train DDPG members (one per seed)",
        description="Train one member per seed. See what a preset runs with `ddpglab presets`, "
        "and the resolved config with --print-config.",
        formatter_class=LazyHelpFormatter,
    )
    train.add_argument(
        "--preset", default=None, help=f"named config: {', '.join(preset_names())} (pendulum)"
    )
    train.add_argument("--config", type=Path, help="YAML config file, merged over the preset")
    train.add_argument("--env", help="gymnasium env id (sets env.id)")
    train.add_argument(
        "--replay", help=LazyHelp("replay sampling strategy (sets replay.kind)", replay_kinds_help)
    )
    seeds = train.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=seed, help="train one member with this seed")
    seeds.add_argument("--seeds", type=parse_seeds, help="N members (seeds 0..N-1) or a list 1,2,3")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--episodes", type=positive_int, help="episodes per member")
    budget.add_argument("--steps", type=positive_int, help="env steps per member")
    train.add_argument(
        "--device",
        help="where networks, optimiser state and stored transitions live: cpu (default), "
        "cuda or cuda:N (sets train.device)",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set agent.tau=0.005 (repeatable)",
    )
    train.add_argument("--out", type=Path, help="output folder (required unless --print-config)")
    train.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as YAML and exit: nothing trained, nothing written",
    )
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar, no summary table")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in --out from its saved state, with its own config; "
        "with a larger --episodes or --steps, train a finished run further (it needs the "
        "state kept by train.keep_state: true)",
    )
    train.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write each member's scalars to OUT/tensorboard/ (extra: tensorboard)",
    )
    train.set_defaults(run=cmd_train)
    for module in COMMAND_MODULES:
        module.add_parsers(commands)
    return parser


def resolve_train_config(args: argparse.Namespace) -> Config:
    """The validated config a ``train`` command line asks for."""
    preset = args.preset if args.preset or args.config else "pendulum"
    overrides: dict[str, Any] = dict(parse_override(item) for item in args.overrides)
    if args.env is not None:
        overrides["env.id"] = args.env
    if args.replay is not None:
        overrides["replay.kind"] = args.replay
    if args.seed is not None:
        overrides["train.seeds"] = [args.seed]
    if args.seeds is not None:
        overrides["train.seeds"] = args.seeds
    if args.device is not None:
        overrides["train.device"] = args.device
    if args.episodes is not None:
        overrides.update({"train.episodes": args.episodes, "train.steps": None})
    if args.steps is not None:
        overrides.update({"train.steps": args.steps, "train.episodes": None})
    return load_config(preset, args.config, overrides)


def resume_train_config(args: argparse.Namespace) -> tuple[Config, bool]:
    """The config of the run in ``--out`` to continue, and whether it has a state to
    continue from (without one, an unfinished run starts over).

    An unfinished run continues with its own config. A finished run continues only to a
    larger budget of the kind it had (``--episodes`` or ``--steps``), from the final state
    that ``train.keep_state`` kept; the new budget is the one change to its config.
    """
    given = [flag for name, flag in CONFIG_OPTIONS.items() if getattr(args, name) not in (None, [])]
    if given:
        raise ConfigError(f"--resume continues the run in --out with its config; drop {given[0]}")
    budget = {name: getattr(args, name) for name in BUDGETS if getattr(args, name) is not None}
    config_file = args.out / "config.yaml"
    finished = (args.out / "summary.json").exists()
    if budget and not finished:
        raise ConfigError(
            "--resume continues the run in --out with its config; drop "
            f"{BUDGET_OPTIONS[next(iter(budget))]} (a budget grows a finished run only)"
        )
    if not config_file.is_file():
        raise ConfigError(f"--resume: no run to resume in {args.out} (no config.yaml)")
    from ddpglab.training.state import STATE_FILE

    has_state = (args.out / STATE_FILE).is_file()
    config = load_config(None, config_file)
    if not finished:
        return config, has_state
    if not budget:
        more = "" if has_state else " and kept no state"
        raise ConfigError(
            f"--resume: the run in {args.out} has finished{more}; "
            "train it further with a larger --episodes or --steps"
            + ("" if has_state else " (that needs train.keep_state: true)")
        )
    return grown_budget_config(args.out, config, budget, has_state), True


def grown_budget_config(
    out: Path, config: Config, budget: dict[str, int], has_state: bool
) -> Config:
    """``config`` with the finished run's budget raised to ``budget`` ({"episodes": N} or
    {"steps": N}); ConfigError unless it is larger, of the same kind, and a state was kept."""
    (kind, wanted), *_ = budget.items()
    had = getattr(config.train, kind)
    if had is None:
        other = next(name for name in BUDGETS if name != kind)
        raise ConfigError(
            f"--resume: the run in {out} has a budget of {getattr(config.train, other)} "
            f"{other}; continue it with a larger --{other}, not --{kind}"
        )
    if wanted <= had:
        raise ConfigError(
            f"--resume: the run in {out} has trained {had} {kind}; "
            f"--{kind} must be larger to continue it, got {wanted}"
        )
    if not has_state:
        raise ConfigError(
            f"--resume: the run in {out} kept no final state (it was trained without "
            "train.keep_state: true), so it cannot be continued"
        )
    return config.model_copy(update={"train": config.train.model_copy(update={kind: wanted})})


def continuing_note(config: Config) -> str:
    """What a continued run says first: its new budget."""
    kind = "episodes" if config.train.episodes else "steps"
    return f"continuing the finished run to {getattr(config.train, kind)} {kind}"


def cmd_train(args: argparse.Namespace) -> int:
    from ddpglab.machine import preflight
    from ddpglab.run_folder import check_out_dir, prepare_out_dir, run_folder_lock, train

    if args.out is None and (args.resume or not args.print_config):
        raise ConfigError("train needs --out DIR (the output folder)")
    if args.print_config:
        config = resume_train_config(args)[0] if args.resume else resolve_train_config(args)
        print(to_yaml(config), end="")
        return 0
    if args.resume:
        config, has_state = resume_train_config(args)
        if not has_state:
            print(f"ddpglab: no saved state in {args.out}; the run starts over", file=sys.stderr)
        elif (args.out / "summary.json").exists():
            print(f"ddpglab: {continuing_note(config)}", file=sys.stderr)
    else:
        config, has_state = resolve_train_config(args), False
    preflight(config)
    if args.tensorboard:
        from ddpglab.tensorboard import require_tensorboard

        require_tensorboard()
    overwrite = args.overwrite or args.resume
    if not has_state:
        check_out_dir(args.out, overwrite)  # a refusal writes nothing, not even the lock
    with run_folder_lock(args.out):
        if not has_state:
            prepare_out_dir(args.out, overwrite)
        summary = train(
            config,
            args.out,
            progress=not args.quiet,
            tensorboard=args.tensorboard,
            resume=has_state,
        )
    if not args.quiet:
        from ddpglab.report.console import print_summary

        print_summary(summary, args.out)
    else:
        print(json.dumps({"out": str(args.out), "wall_s": round(summary.wall_s, 2)}))
    return 1 if any(member.error for member in summary.members) else 0


#: Commands that train or run a policy: torch is imported before they start, with Ctrl-C
#: held back during the import (see :func:`ddpglab.run_control.import_holding_sigint`).
TORCH_COMMANDS = frozenset({"train", "study", "tune", "theory", "enjoy", "animate"})


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command in TORCH_COMMANDS:
            import_holding_sigint("torch")
        return args.run(args)
    except ConfigError as err:
        print(f"ddpglab: error: {one_line(str(err))}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, sqlite3.Error) as err:  # a write failed (disk full, read-only folder);
        # each store write is one transaction and the state file is renamed into place, so
        # what was saved before stays whole
        print(f"ddpglab: error: {one_line(str(err))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        state_path = getattr(err, "state_path", None)  # a TrainingInterrupted saved its state
        if state_path is not None:
            print(f"ddpglab: {err}; state saved, continue with --resume", file=sys.stderr)
            return 128 + err.signum
        print("ddpglab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
