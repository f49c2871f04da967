"""One trial, run in a worker: train its seeds as members of one run, report, maybe prune.

The worker reopens the search's Optuna storage and reports the trial's intermediate score
every ``report_every`` episodes; the pruner compares it with the other trials' scores at
the same episode and may stop the trial there. The driver alone asks for trials and
tells their outcome.
"""

from __future__ import annotations

import math
import signal
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ddpglab.store import EpisodeRow, ReplayStatsRow

MIN_PEERS = 3  # completed trials with a score at the step before any pruning


def objective_value(returns: list[list[float]], last: int) -> float:
    """J = 1/S sum_s mean(R_s[-k:]): the mean over seeds s of each seed's last-k returns."""
    return sum(sum(r[-last:]) / len(r[-last:]) for r in returns) / len(returns)


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs to run one trial."""

    storage: str  # Optuna storage URL of the search
    study_name: str
    trial_id: int
    config: dict[str, Any]  # the trial's validated config, as a mapping
    last: int
    report_every: int
    prune_after: int  # no pruning before this episode
    prune: bool
    episodes: int  # the trial's budget: at the last score it is complete, never pruned


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial ended: complete with its value, pruned at an episode, or failed."""

    state: str  # "complete", "pruned" or "failed"
    value: float | None = None
    episode: int | None = None  # pruned: the episode it was stopped at
    error: str | None = None


class TrialPruned(Exception):
    """Raised inside training when the pruner stops the trial."""


class ScoreReporter:
    """The results-store methods a Trainer calls; it keeps the returns and reports scores."""

    def __init__(self, task: TrialTask, trial: Any, seeds: int):
        self.task, self.trial = task, trial
        self.returns: list[list[float]] = [[] for _ in range(seeds)]
        self.reported = 0  # the latest episode scored
        self.failure: str | None = None

    def add_episodes(
        self, rows: list[EpisodeRow], replay_stats: Sequence[ReplayStatsRow] = ()
    ) -> None:
        """Score the returns; the replay stats (a trial keeps no store) are dropped."""
        for row in rows:  # each row's run id is its member's index (see run_trial)
            self.returns[row.run_id].append(float(row.episode_return))
        episode = min(len(r) for r in self.returns)
        every = self.task.report_every
        if episode // every > self.reported // every:
            self.reported = episode - episode % every
            score = objective_value([r[: self.reported] for r in self.returns], self.task.last)
            self.trial.report(score, self.reported)
            task = self.task
            # median_prune's window, checked here too: no storage read outside it.
            due = task.prune and task.prune_after <= self.reported < task.episodes
            if due and self.trial.should_prune():
                raise TrialPruned(f"pruned at episode {self.reported}")

    def finish_run(self, run_id: int, status: str = "done", error: str | None = None) -> None:
        if status == "failed" and error and self.failure is None:
            self.failure = error

    def add_eval(self, *args: Any) -> None:
        pass

    def add_checkpoint(self, *args: Any) -> None:
        pass


def run_trial(task: TrialTask) -> TrialOutcome:
    """Train the trial's members and score them; never raises (the outcome says why)."""
    # Ctrl-C reaches the whole process group; the driver alone decides how trials stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import optuna

    from ddpglab.config import Config
    from ddpglab.training import Trainer

    try:
        study = optuna.load_study(
            study_name=task.study_name,
            storage=task.storage,
            pruner=make_pruner(task.prune, task.prune_after, task.episodes),
        )
        trial = optuna.trial.Trial(study, task.trial_id)
        config = Config.model_validate(task.config)
        reporter = ScoreReporter(task, trial, len(config.train.seeds))
        trainer = Trainer(config, store=reporter)  # type: ignore[arg-type]
        # Registered runs already: no add_run, and each row's run id is its member's index.
        trainer.recorder.run_ids = list(range(len(config.train.seeds)))
        trainer.run()
    except TrialPruned:
        value = objective_value([r[: reporter.reported] for r in reporter.returns], task.last)
        return TrialOutcome("pruned", value, reporter.reported)
    except Exception as err:  # reported to the driver, which records the trial as failed
        return TrialOutcome("failed", error=f"{type(err).__name__}: {err}".strip())
    if reporter.failure is not None:
        return TrialOutcome("failed", error=reporter.failure)
    value = objective_value(reporter.returns, task.last)
    if not math.isfinite(value):
        return TrialOutcome("failed", error=f"objective is {value}")
    return TrialOutcome("complete", value)


def median_prune(
    step: int,
    score: float,
    peers: Sequence[float],
    prune_after: int = 0,
    episodes: float = math.inf,
    min_peers: int = MIN_PEERS,
) -> bool:
    """The median rule, at a report step t (episodes) with score s_t (the search maximizes):

        prune  iff  prune_after <= t < episodes  and  n_t >= min_peers  and  s_t < median(P_t)

    P_t: the scores at step t of the COMPLETED trials that reported one (NaN ones dropped),
    n_t = |P_t|. Only s_t counts, not the trial's best earlier score (Optuna's MedianPruner
    compares that one, so a trial that collapses after a good start survived it). A NaN
    s_t is below every median. Completed trials only, as Optuna's MedianPruner: a pruned
    trial that reached t was selected for scoring low, which would pull the median down
    (and make it depend on which workers finished first); every completed trial reported
    at every step, so P_t is the same trials at each t and n_t >= 3 means "3 trials are
    complete", the MedianPruner(n_startup_trials=3) this replaces (no warmup, every report).
    """
    if not prune_after <= step < episodes:
        return False
    finite = [p for p in peers if not math.isnan(p)]
    if len(finite) < min_peers:
        return False
    return math.isnan(score) or score < statistics.median(finite)


def _median_pruner(prune_after: int, episodes: float) -> Any:
    """An Optuna pruner that applies :func:`median_prune` at the trial's latest report."""
    import optuna
    from optuna.trial import TrialState

    class MedianAtStepPruner(optuna.pruners.BasePruner):
        def prune(self, study: Any, trial: Any) -> bool:
            step = trial.last_step
            if step is None:
                return False
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            peers = [t.intermediate_values[step] for t in complete if step in t.intermediate_values]
            score = trial.intermediate_values[step]
            return median_prune(step, score, peers, prune_after, episodes)

    return MedianAtStepPruner()


def make_pruner(prune: bool, prune_after: int = 0, episodes: float = math.inf) -> Any:
    """Median pruning (:func:`median_prune`: a score below the median of the completed
    trials' scores at the same episode stops the trial); or none."""
    import optuna

    if not prune:
        return optuna.pruners.NopPruner()
    return _median_pruner(prune_after, episodes)
