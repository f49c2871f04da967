"""``ddpglab study SPEC --out DIR``: run or resume a study from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddpglab.cli_common import add_backend_options, parse_seeds, positive_int

if TYPE_CHECKING:
    from ddpglab.study.runner import StudyResult
    from ddpglab.study.spec import BaseSpec, StudySpec
    from ddpglab.study.variants import Study


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand."""
    study = commands.add_parser(
        "study",
        help="run a study (variants x seeds) in parallel worker processes; rerun to resume",
        description="Run the variants x seeds of a study spec into DIR/results.sqlite. "
        "Rerunning the same command resumes: done runs are kept, the others run again.",
    )
    study.add_argument("spec", type=Path, help="study spec (YAML), e.g. studies/smoke.yaml")
    study.add_argument("--out", type=Path, required=True, metavar="DIR", help="study folder")
    study.add_argument(
        "--seeds",
        type=parse_seeds,
        metavar="N|LIST",
        help="replace the spec's seeds: N (seeds 0..N-1) or a list 1,2,3",
    )
    budget = study.add_mutually_exclusive_group()
    budget.add_argument(
        "--episodes", type=positive_int, metavar="N", help="replace the spec's budget"
    )
    budget.add_argument(
        "--steps", type=positive_int, metavar="N", help="replace the spec's budget, in env steps"
    )
    study.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value of the spec's base config, e.g. --set train.precision=bf16 "
        "(repeatable; a variant's own set still wins)",
    )
    study.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker processes, or Ray tasks at once (default: one per core, or per CPU of "
        "the Ray cluster)",
    )
    study.add_argument(
        "--seeds-per-job",
        type=positive_int,
        metavar="K",
        help="seeds trained together in one process (default: all of a variant's seeds "
        "while variants >= workers, else split so that every worker has a job)",
    )
    study.add_argument(
        "--threads",
        type=positive_int,
        metavar="T",
        help="torch threads per worker (default: cores // workers, at least 1)",
    )
    study.add_argument(
        "--overwrite", action="store_true", help="discard the study files in --out and restart"
    )
    study.add_argument("--no-report", action="store_true", help="do not write DIR/report/")
    study.add_argument(
        "--quiet", action="store_true", help="no progress bar; one JSON summary line at the end"
    )
    study.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write each member's scalars to DIR/tensorboard/ (extra: tensorboard)",
    )
    add_backend_options(study, "jobs")
    study.set_defaults(run=cmd_study)


def cmd_study(args: argparse.Namespace) -> int:
    """Run the study; exit status 1 if any of its runs failed."""
    from ddpglab.study.spec import load_spec
    from ddpglab.study.variants import resolve

    spec = load_spec(args.spec)
    changes: dict = {}
    if args.overrides:
        changes["base"] = with_base_overrides(spec, args.overrides)
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    if args.episodes is not None:
        changes.update(episodes=args.episodes, steps=None)
    if args.steps is not None:
        changes.update(steps=args.steps, episodes=None)
    # The study stored in DIR records the changed spec, so the same command resumes it.
    study = resolve(spec.model_copy(update=changes), args.spec.parent)
    result = run_and_report(
        study,
        args.out,
        report=not args.no_report,
        workers=args.workers,
        seeds_per_job=args.seeds_per_job,
        overwrite=args.overwrite,
        progress=not args.quiet,
        torch_threads=args.threads,
        tensorboard=args.tensorboard,
        backend=args.backend,
        address=args.address,
    )
    if args.quiet:
        print(json.dumps(result.to_dict()))
    else:
        _print_summary(result)
    return 1 if result.failed else 0


def with_base_overrides(spec: StudySpec, overrides: list[str]) -> BaseSpec:
    """The spec's base with ``--set KEY=VALUE`` overrides merged into its ``set`` (checked as
    a spec's own keys are)."""
    from pydantic import ValidationError

    from ddpglab.config import parse_override
    from ddpglab.study.spec import BaseSpec, spec_error

    base = spec.base.model_dump()
    base["set"] = {**base["set"], **dict(parse_override(item) for item in overrides)}
    try:
        return BaseSpec.model_validate(base)
    except ValidationError as err:
        raise spec_error("--set", err) from None


def run_and_report(
    spec: str | Path | dict[str, Any] | StudySpec | Study,
    out: str | Path,
    report: bool = True,
    **options: Any,
) -> StudyResult:
    """:func:`~ddpglab.study.runner.run_study` (``options`` are its keywords), then, with
    ``report``, ``out/report/``: what ``ddpglab study`` does. The report comes after the
    study, from this command layer, because the study runner sits below the report."""
    from ddpglab.study.runner import run_study

    result = run_study(spec, out, **options)
    if report:
        result.report = write_report_if_available(Path(out))
    return result


def write_report_if_available(out: Path) -> Path | None:
    """``write_report(out)`` from the report package; a failure there is a warning only,
    since ``ddpglab report`` regenerates everything from the store."""
    try:
        from ddpglab.report.study_report import write_report
    except ImportError:
        return None
    try:
        return write_report(out)
    except Exception as err:  # the study's results are safe in the store either way
        print(f"ddpglab: warning: report not written: {type(err).__name__}: {err}", file=sys.stderr)
        return None


def _print_summary(result) -> None:
    print(
        f"study {result.name}: {result.runs} runs; {result.done} done now, "
        f"{result.skipped} already done, {result.failed} failed ({result.wall_s:.1f} s)"
    )
    print(f"results: {result.out / 'results.sqlite'}")
    if result.report is not None:
        print(f"report: {result.report}")
    for variant, seed, error in result.failures[:10]:
        print(f"failed: {variant} seed {seed}: {error}")
    if len(result.failures) > 10:
        print(f"... and {len(result.failures) - 10} more failed runs")
    if result.failures:
        print(f"tracebacks: {result.out / 'errors.log'}; rerun the same command to retry them")
