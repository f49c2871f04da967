"""``ddpglab theory check`` and ``ddpglab theory lqr``.

``check`` runs every exact check (:mod:`ddpglab.theory.checks`) and prints one row each;
``lqr`` trains DDPG on ``ddpglab/LQR-v0`` and compares each seed's gain with the Riccati
optimum (:mod:`ddpglab.theory.lqr_ddpg`). Both exit 0 only if everything passes, 1 if
something does not, and 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ddpglab.cli_common import Parser, parse_seeds, positive_int
from ddpglab.config import ConfigError

EXIT_FAILED = 1


def add_parsers(commands) -> None:
    """Add ``theory`` with its ``check`` and ``lqr`` subcommands to ``ddpglab``'s subparsers."""
    theory = commands.add_parser(
        "theory",
        help="the policy gradient theorems checked numerically; DDPG against the LQR optimum",
    )
    sub = theory.add_subparsers(
        dest="theory_command", metavar="{check,lqr}", required=True, parser_class=Parser
    )

    check = sub.add_parser(
        "check",
        help="run every exact check (tabular gradient theorems, LQR) and print a table",
    )
    check.add_argument("--json", action="store_true", help="print the rows as JSON instead")
    check.set_defaults(run=cmd_check)

    lqr = sub.add_parser(
        "lqr",
        help="train DDPG on ddpglab/LQR-v0 and compare each seed's gain K with Riccati's K*",
    )
    lqr.add_argument(
        "--seeds", type=parse_seeds, default=[0], help="N members (seeds 0..N-1) or 1,2,3"
    )
    lqr.add_argument("--episodes", type=positive_int, help="episodes per member (preset: 200)")
    lqr.add_argument("--preset", default="lqr", help="config preset (default lqr)")
    lqr.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set agent.actor_lr=1e-3 (repeatable)",
    )
    lqr.add_argument(
        "--eval-episodes", type=positive_int, default=20, help="episodes per return (20)"
    )
    lqr.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    lqr.set_defaults(run=cmd_lqr)


def _console():
    from rich.console import Console

    console = Console()
    # Piped output keeps whole rows rather than rich's 80-column default.
    return console if console.is_terminal else Console(width=130)


def cmd_check(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ddpglab.theory.checks import run_checks

    rows = run_checks()
    if args.json:
        print(json.dumps([{**asdict(r), "passed": r.passed} for r in rows], indent=2))
    else:
        table = Table(title="ddpglab theory check: exact quantities, two ways")
        for name in ("metric", "method", "max abs error", "rel error", "tolerance", "pass"):
            table.add_column(name, justify="left" if name in ("metric", "method") else "right")
        for r in rows:
            table.add_row(
                r.metric,
                r.method,
                f"{r.max_abs_error:.2e}",
                f"{r.rel_error:.2e}",
                f"{r.tolerance:.0e}",
                "yes" if r.passed else "NO",
            )
        console = _console()
        console.print(table)
        failed = sum(not r.passed for r in rows)
        console.print(f"{len(rows) - failed} of {len(rows)} checks pass")
    return 0 if all(r.passed for r in rows) else EXIT_FAILED


def _lqr_config(args: argparse.Namespace):
    from ddpglab.config import load_config, parse_override

    overrides: dict[str, Any] = dict(parse_override(item) for item in args.overrides)
    overrides["train.seeds"] = args.seeds
    if args.episodes is not None:
        overrides.update({"train.episodes": args.episodes, "train.steps": None})
    return load_config(args.preset, overrides=overrides)


def cmd_lqr(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ddpglab.theory.lqr_ddpg import (
        GAIN_TOLERANCE,
        RETURN_TOLERANCE,
        check_lqr_config,
        run_lqr_experiment,
    )

    config = _lqr_config(args)
    check_lqr_config(config)
    if args.json is not None and args.json.is_dir():
        raise ConfigError(f"--json {args.json} is a folder; give a file path")
    result = run_lqr_experiment(config, eval_episodes=args.eval_episodes)

    k_star = ", ".join(f"{v:.4f}" for row in result.optimal_gain for v in row)
    table = Table(
        title=f"DDPG vs Riccati on ddpglab/LQR-v0, gamma = {result.gamma:g}: K* = [{k_star}]"
    )
    columns = ("seed", "learned K", "|K - K*| / |K*|", "J(K) / J(K*) - 1", "return")
    for name in (*columns, "return of K*", "shortfall", "pass"):
        table.add_column(name, justify="right")
    for m in result.members:
        gain = ", ".join(f"{v:.4f}" for row in m.gain for v in row)
        table.add_row(
            str(m.seed),
            f"[{gain}]",
            f"{100 * m.gain_error:.2f}%",
            f"{100 * m.cost_gap:.3f}%",
            f"{m.eval_return:.4f}",
            f"{m.optimal_return:.4f}",
            f"{100 * m.return_shortfall:.2f}%",
            "yes" if m.passed else "NO",
        )
    console = _console()
    console.print(table)
    passed = sum(m.passed for m in result.members)
    console.print(
        f"{passed} of {len(result.members)} seeds within {100 * GAIN_TOLERANCE:g}% of K* and "
        f"{100 * RETURN_TOLERANCE:g}% of its return ({result.eval_episodes} evaluation "
        f"episodes, the same for K and K*); {result.wall_s:.1f} s"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(result), indent=2))
    return 0 if result.passed else EXIT_FAILED
