"""``ddpglab report``, ``export``, ``status``, ``animate`` and ``enjoy``: derived from a store.

Each reads ``DIR/results.sqlite`` (a ``ddpglab train --out DIR`` run or a study folder);
bad input ends with one line on stderr and exit status 2, with nothing written.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from ddpglab.cli_common import LazyHelp, LazyHelpFormatter, positive_int
from ddpglab.config import ConfigError


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number: '{text}'") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number: '{text}'")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer: '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0: '{text}'")
    return value


def _score_list(text: str) -> list[str]:
    """An argument type: ``auc`` or ``final,drop``, checked against the report's scores
    (whose module, numpy and all, is imported only when ``--score`` is given)."""
    from ddpglab.report.scores import parse_score_list

    try:
        return parse_score_list(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _contrast(text: str):
    """An argument type: ``A:B`` or ``A1,A2:B1,B2`` (report.contrasts.parse_contrast)."""
    from ddpglab.report.contrasts import parse_contrast

    try:
        return parse_contrast(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--contrast ")) from None


def _scores_help() -> str:
    """--score's help with every score the report knows (scores.SCORES)."""
    from ddpglab.report.scores import SCORES

    names = "; ".join(f"{s.name}: {s.title.lower()}" for s in SCORES.values())
    return (
        f"scores of a seed that table.md and table.csv report, repeatable or a comma list "
        f"({names}; default: all, in this order)"
    )


def _add_run_choice(parser: argparse.ArgumentParser) -> None:
    """``--variant`` and ``--seed``: which run of a study folder."""
    parser.add_argument("--variant", help="variant of the run (default: the first run's)")
    parser.add_argument("--seed", type=int, help="seed of the run (default: the first run's)")


def add_parsers(commands) -> None:
    """Add the report, export and animate subcommands to ``ddpglab``'s subparsers."""
    # Defaults stay None here and are filled in by write_report, whose module (numpy and
    # all) is imported only when the command runs.
    report = commands.add_parser(
        "report",
        help="figures and a statistics table of a run or study folder (writes DIR/report/), "
        "or of several side by side (--out)",
        description="Writes DIR/report/: curves.png and curves_steps.png (by episode and"
        " by env step), final.png, thresholds.png (stratified variants), diagnostics.png"
        " (runs that recorded episode values), table.md and table.csv (per variant, three"
        " scores of a seed: final, auc and drop, see --score; each with mean and IQM over"
        " seeds, 95% bootstrap CIs and P(improvement) over --baseline), from"
        " DIR/results.sqlite alone. With several folders and --out, writes the same files"
        " into --out, each folder a variant named by its folder name or --label.",
        formatter_class=LazyHelpFormatter,
    )
    report.add_argument(
        "dirs", type=Path, nargs="+", metavar="DIR", help="folder holding results.sqlite"
    )
    report.add_argument(
        "--out",
        type=Path,
        metavar="OUT",
        help="compare: write the report of every DIR into OUT (replaced whole)",
    )
    report.add_argument(
        "--label",
        dest="labels",
        action="append",
        metavar="NAME",
        help="compare: the variant name of each DIR, one per DIR in order "
        "(default: the folder names)",
    )
    report.add_argument(
        "--baseline", help="variant to compare against (default: the first uniform-replay one)"
    )
    report.add_argument(
        "--threshold",
        type=_finite_float,
        help="return the rolling mean must exceed (default per env, e.g. -400 for Pendulum-v1)",
    )
    report.add_argument(
        "--last",
        type=positive_int,
        help="a seed's final score: mean return of its last N episodes (50)",
    )
    report.add_argument(
        "--score",
        dest="scores",
        action="append",
        type=_score_list,
        metavar="NAME[,NAME]",
        help=LazyHelp("scores of a seed that the tables report (default: all)", _scores_help),
    )
    report.add_argument(
        "--contrast",
        dest="contrasts",
        action="append",
        type=_contrast,
        metavar="A:B",
        help="also write contrasts.md: variant A against variant B (difference of means and "
        "P(A better), with 95%% CIs, for each score); A1,A2:B1,B2 averages matched pairs; "
        "PART:OTHER (cap1e6:cap1e4) pairs each variant with name part PART with the one that "
        "has OTHER in its place (repeatable)",
    )
    report.add_argument(
        "--interaction",
        dest="interactions",
        action="append",
        nargs=2,
        type=_contrast,
        metavar=("A:B", "C:D"),
        help="also write to contrasts.md how much more A gains over B than C over D (a "
        "sampler against uniform at low volume, and at high), with 95%% CIs (repeatable)",
    )
    report.add_argument(
        "--variants",
        action="append",
        metavar="NAME[,NAME]",
        help="report these variants only (repeatable or a comma list; with several "
        "folders, label/variant)",
    )
    report.add_argument(
        "--colour-by",
        metavar="LABEL",
        help="recency_entropy.png: colour each variant by the part of its name that starts "
        "with LABEL (vol: vol16, vol256), not a colour each",
    )
    report.add_argument(
        "--window",
        type=positive_int,
        help="episodes in the rolling mean of the first crossing and the drop (10)",
    )
    report.add_argument(
        "--bootstrap",
        type=positive_int,
        metavar="N",
        help="bootstrap replicates (10000)",
    )
    report.add_argument(
        "--include-unfinished",
        action="store_true",
        help="count running and failed runs too (default: status 'done' only)",
    )
    report.set_defaults(run=cmd_report)

    export = commands.add_parser(
        "export",
        help="episodes (and replay stats) as csv (the 2023 runs/<env>/<variant>_<seed>/loss.csv"
        " layout) or parquet",
    )
    export.add_argument("dir", type=Path, metavar="DIR", help="folder holding results.sqlite")
    export.add_argument("--format", required=True, choices=("csv", "parquet"))
    export.add_argument(
        "--to",
        type=Path,
        help="csv: folder that receives runs/ (default DIR/export); "
        "parquet: file (default DIR/export/TABLE.parquet)",
    )
    export.add_argument(
        "--table",
        choices=("episodes", "replay_stats"),
        help="parquet: the episodes (default) or each member's sampling law at its episode "
        "ends (expected age, entropy); csv writes both, replay_stats.csv beside loss.csv",
    )
    export.add_argument(
        "--include-unfinished", action="store_true", help="export running and failed runs too"
    )
    export.set_defaults(run=cmd_export)

    status = commands.add_parser(
        "status",
        help="where a run or study folder stands: runs by status, progress towards the"
        " budget, time left at the current rate (safe while it runs)",
    )
    status.add_argument("dir", type=Path, metavar="DIR", help="folder holding results.sqlite")
    status.set_defaults(run=cmd_status)

    animate = commands.add_parser(
        "animate",
        help="play a run's saved actors in training order: animation.gif and animation.mp4",
    )
    animate.add_argument(
        "dir", type=Path, metavar="RUN_OR_STUDY_DIR", help="folder holding results.sqlite"
    )
    _add_run_choice(animate)
    animate.add_argument(
        "--every", type=positive_int, default=1, help="every N-th checkpoint, and the last (1)"
    )
    animate.add_argument("--fps", type=positive_int, help="frames per second (default: the env's)")
    animate.add_argument(
        "--max-steps", type=positive_int, help="steps per episode (default: the run's limit)"
    )
    animate.add_argument(
        "--gif-width",
        type=_non_negative_int,
        default=400,
        help="GIF width in pixels, 0 for the env's own (400); the MP4 keeps the env's size",
    )
    animate.add_argument("--to", type=Path, help="output folder (default: DIR)")
    animate.set_defaults(run=cmd_animate)

    enjoy = commands.add_parser(
        "enjoy",
        help="play a trained actor: one line per episode with its return, then the mean",
        description="Plays deterministic episodes a = mu(s) of a run's latest saved actor "
        "(or the one saved at --episode), or of a checkpoint file.",
    )
    enjoy.add_argument(
        "source",
        type=Path,
        metavar="RUN_DIR|CHECKPOINT",
        help="run or study folder holding results.sqlite, or an actor checkpoint (.pt)",
    )
    enjoy.add_argument("--episodes", type=positive_int, default=1, help="episodes to play (1)")
    enjoy.add_argument(
        "--render",
        choices=("human", "rgb_array", "none"),
        default="human",
        help="human: a window (default); rgb_array: off-screen frames, for headless "
        "machines; none: no rendering, fastest",
    )
    _add_run_choice(enjoy)
    enjoy.add_argument(
        "--episode", type=positive_int, help="the actor saved at this training episode"
    )
    enjoy.add_argument(
        "--reset-seed",
        type=_non_negative_int,
        default=0,
        help="seed of the first reset; later episodes continue the env's stream (0)",
    )
    enjoy.set_defaults(run=cmd_enjoy)


def cmd_report(args: argparse.Namespace) -> int:
    given = {"last": args.last, "window": args.window, "n_boot": args.bootstrap}
    given = {name: value for name, value in given.items() if value is not None}
    if args.scores is not None:
        given["scores"] = [name for names in args.scores for name in names]
    if args.contrasts or args.interactions:
        given["contrasts"] = [*(args.contrasts or []), *map(tuple, args.interactions or [])]
    if args.colour_by is not None:
        given["colour_by"] = args.colour_by
    if args.variants:
        given["variants"] = [n.strip() for names in args.variants for n in names.split(",")]
    if args.out is None:
        if len(args.dirs) > 1 or args.labels:
            raise ConfigError("a report of several folders (or with --label) needs --out DIR")
        from ddpglab.report.study_report import write_report

        folder = write_report(
            args.dirs[0],
            args.baseline,
            args.threshold,
            include_unfinished=args.include_unfinished,
            **given,
        )
    else:
        from ddpglab.report.compare import write_comparison

        folder = write_comparison(
            args.dirs,
            args.out,
            args.labels,
            args.baseline,
            args.threshold,
            include_unfinished=args.include_unfinished,
            **given,
        )
    print((folder / "table.md").read_text(), end="")
    if "contrasts" in given:
        print("\n" + (folder / "contrasts.md").read_text(), end="")
    names = ", ".join(sorted(p.name for p in folder.iterdir()))
    print(f"\nreport written to {folder}/ ({names})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ddpglab.report.export import export

    path = export(args.dir, args.format, args.to, args.include_unfinished, args.table)
    print(f"exported to {path}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ddpglab.report.status import print_status

    print_status(args.dir)
    return 0


def cmd_animate(args: argparse.Namespace) -> int:
    from ddpglab.report.animate import animate

    gif, mp4, segments = animate(
        args.dir,
        variant=args.variant,
        seed=args.seed,
        every=args.every,
        fps=args.fps,
        max_steps=args.max_steps,
        to=args.to,
        gif_width=args.gif_width,
    )
    played = ", ".join(f"episode {s.episode}: {s.ret:.1f}" for s in segments)
    print(f"{len(segments)} checkpoints played ({played})")
    print(f"wrote {gif} and {mp4}")
    return 0


def display_missing() -> bool:
    """Whether this is a Linux machine without a display (no X11 or Wayland to open a
    window on): there ``--render human`` would print an XDG error and play blind, in real
    time. Other systems are taken to have one."""
    return sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def cmd_enjoy(args: argparse.Namespace) -> int:
    from ddpglab.config import ConfigError

    if args.render == "human" and display_missing():
        raise ConfigError(
            "--render human needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set; "
            "use --render none (fastest) or --render rgb_array (off-screen frames)"
        )
    from ddpglab.report.enjoy import episode_returns, find_policy

    policy = find_policy(args.source, args.variant, args.seed, args.episode)
    if args.render == "rgb_array":
        from ddpglab.report.offscreen import prepare_offscreen

        prepare_offscreen(policy.env_id)  # a missing GL library: refused before any output
    playing = episode_returns(policy, args.episodes, args.render, args.reset_seed)
    print(f"{policy.env_id}: {policy.label}", flush=True)  # the env is made: no refusal now
    returns = []
    for i, ret in enumerate(playing):
        returns.append(ret)
        print(f"episode {i + 1} return {ret:.2f}", flush=True)
    std = f", std {statistics.stdev(returns):.2f}" if len(returns) > 1 else ""
    print(f"mean return {statistics.fmean(returns):.2f} over {len(returns)} episodes{std}")
    return 0
