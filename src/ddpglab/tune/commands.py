"""``ddpglab tune SPEC --out DIR``: run or resume an evolutionary hyperparameter search."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ddpglab.cli_common import add_backend_options, positive_int


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the ``tune`` subcommand."""
    tune = commands.add_parser(
        "tune",
        help="hyperparameter search (Optuna; genetic by default) over a search spec; "
        "rerun to resume",
        description="Search the spec's space: each trial trains the objective's seeds as "
        "members of one run and scores the mean of their last-k episode returns. Writes "
        "DIR/optuna.sqlite3, best.yaml, trials.csv, trials.md, history.png, importance.png.",
    )
    tune.add_argument(
        "spec", type=Path, help="search spec (YAML), e.g. studies/tune-softmax-beta.yaml"
    )
    tune.add_argument("--out", type=Path, required=True, metavar="DIR", help="search folder")
    tune.add_argument(
        "--trials", type=positive_int, metavar="N", help="finished trials wanted in all"
    )
    tune.add_argument("--episodes", type=positive_int, metavar="N", help="episodes per trial")
    tune.add_argument(
        "--workers", type=positive_int, metavar="N", help="trials at once (default: one per core)"
    )
    tune.add_argument(
        "--threads",
        type=positive_int,
        metavar="T",
        help="torch threads per trial (default: cores // workers, at least 1)",
    )
    add_backend_options(tune, "trials")
    tune.set_defaults(run=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    """Run the search; exit status 1 if it holds no complete trial."""
    from ddpglab.config import ConfigError
    from ddpglab.tune.search import run_search
    from ddpglab.tune.spec import load_search

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError("tune needs optuna: pip install 'ddpglab[tune]'") from None
    search = load_search(args.spec, trials=args.trials, episodes=args.episodes)
    progress = TrialProgress()

    def on_trial(trial, outcome) -> None:
        params = ", ".join(
            f"{k} {_short(v)}" for k, v in trial.user_attrs.get("config_params", {}).items()
        )
        if outcome.state == "complete":
            what = f"value {outcome.value:.2f}"
        elif outcome.state == "pruned":
            what = f"pruned at episode {outcome.episode} (score {outcome.value:.2f})"
        else:
            what = f"failed: {outcome.error}"
        print(f"trial {trial.number}: {what} ({params}) {progress.trial_ended()}", flush=True)

    result = run_search(
        search,
        args.out,
        workers=args.workers,
        torch_threads=args.threads,
        backend=args.backend,
        address=args.address,
        on_trial=on_trial,
        on_start=progress.start,
    )
    finished = result.complete + result.pruned + result.failed
    share = result.pruned / finished if finished else 0.0
    print(
        f"search {search.spec.name}: {finished} trials ({result.complete} complete, "
        f"{result.pruned} pruned = {share:.0%}, {result.failed} failed); "
        f"{result.ran} run now in {result.wall_s:.1f} s"
        + (f"; {result.interrupted} interrupted, run again" if result.interrupted else "")
    )
    if result.best_value is not None:
        params = ", ".join(f"{k} = {_short(v)}" for k, v in result.best_params.items())
        print(f"best: {result.best_value:.2f} with {params}")
    print("wrote " + ", ".join(str(p) for p in result.files))
    return 0 if result.complete else 1


class TrialProgress:
    """Where a search stands after each trial: trials finished of those wanted, the time
    this invocation has run, and the time left at its pace so far."""

    def __init__(self) -> None:
        self.finished = self.wanted = 0
        self.ran = 0
        self.started = time.perf_counter()

    def start(self, finished: int, remaining: int) -> None:
        """The search holds ``finished`` trials and runs ``remaining`` more now."""
        self.finished, self.wanted = finished, finished + remaining
        self.started = time.perf_counter()

    def trial_ended(self) -> str:
        """``[5/20, 1.2 min, eta 3.6 min]`` after one more trial ended."""
        self.finished += 1
        self.ran += 1
        elapsed = time.perf_counter() - self.started
        left = max(0, self.wanted - self.finished)
        text = f"[{self.finished}/{self.wanted}, {_duration(elapsed)}"
        if left:
            text += f", eta {_duration(elapsed / self.ran * left)}"
        return text + "]"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
