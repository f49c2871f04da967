"""The search driver: asks Optuna for trials, runs them in parallel workers, tells outcomes.

The search lives in ``DIR/optuna.sqlite3`` (Optuna's own storage: resumable, and
readable with Optuna's tools, e.g. ``optuna-dashboard``). The driver alone creates and
finishes trials; workers only report intermediate scores (see :mod:`ddpglab.tune.trial`).
Rerunning the same command continues the search until it holds ``trials`` finished
trials; trials cut short by an interruption are failed and queued again with the same
parameters. One search process at a time holds ``DIR/.lock``; a second is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddpglab.config import ConfigError
from ddpglab.run_control import folder_lock
from ddpglab.tune.spec import Search
from ddpglab.tune.trial import TrialOutcome, TrialTask, make_pruner, run_trial

STORAGE = "optuna.sqlite3"
SPEC_ATTR = "ddpglab_search"  # the canonical search spec, stored with the Optuna study


@dataclass
class SearchResult:
    """What the search holds after this invocation."""

    out: Path
    complete: int
    pruned: int
    failed: int  # by an error; see :func:`counted`
    interrupted: int  # cut short by a stop and queued again: not counted, not failed
    ran: int  # trials finished by this invocation
    best_value: float | None
    best_params: dict[str, Any]
    wall_s: float
    files: list[Path]


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / STORAGE).resolve()}"


def make_sampler(search: Search, trials_before: int = 0) -> Any:
    """The spec's sampler: by default Optuna's genetic NSGA-II, whose parents are chosen by
    binary tournament (with one objective it is a plain genetic algorithm).

    Seeded with ``seed + trials_before``: a search resumed after n trials must not draw the
    first trials' parameters again, as a sampler restarted on the spec's seed would.
    """
    import optuna

    spec = search.spec
    seed = spec.seed + trials_before
    if spec.sampler == "genetic":
        return optuna.samplers.NSGAIISampler(population_size=spec.population, seed=seed)
    if spec.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def check_out(out: Path) -> None:
    """Refuse an ``out`` that exists and is not a folder (before anything is written)."""
    try:  # even looking at the path can fail: a name longer than the file system allows
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a folder")
    except OSError as err:
        raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None


def make_out(out: Path) -> None:
    """Create the search folder; a path that cannot be one is a ConfigError."""
    check_out(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None


@contextmanager
def locked_out(out: Path) -> Iterator[None]:
    """Create ``out`` and hold ``out/.lock`` while inside: one search process per folder
    (a second would fail the first's running trials as interrupted)."""
    make_out(out)
    with ExitStack() as stack:
        try:
            stack.enter_context(folder_lock(out, f"another tune is running in {out}"))
        except OSError as err:  # the lock file cannot be written: a read-only folder
            raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None
        yield


def open_search(search: Search, out: Path) -> Any:
    """Create the Optuna study in ``out``, or reopen it if it holds this same search."""
    import optuna

    url = storage_url(out)
    name = search.spec.name
    canonical = {k: v for k, v in search.canonical().items() if k != "trials"}
    if (out / STORAGE).exists():
        try:
            names = optuna.get_all_study_names(url)
        except Exception as err:  # a file that is not an Optuna storage
            raise ConfigError(f"{out / STORAGE} is not an Optuna storage: {err}") from None
        others = [n for n in names if n != name]
        if others:
            raise ConfigError(f"{out} holds another search ('{others[0]}'); use another --out")
    make_out(out)
    study = optuna.create_study(
        study_name=name,
        storage=url,
        sampler=make_sampler(search),
        pruner=make_pruner(search.spec.pruner == "median"),
        direction="maximize",
        load_if_exists=True,
    )
    saved = study.user_attrs.get(SPEC_ATTR)
    if saved is None:
        study.set_user_attr(SPEC_ATTR, canonical)
    elif saved != canonical:
        raise ConfigError(
            f"{out} holds search '{name}' with other settings; use another --out "
            "(only --trials may change on resume)"
        )
    if study.trials:  # resumed: continue past the draws the earlier trials took
        study.sampler = make_sampler(search, trials_before=len(study.trials))
    return study


def counted(study: Any) -> int:
    """Finished trials: complete, pruned, or failed by an error (not by an interruption)."""
    from optuna.trial import TrialState

    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))
        for t in study.trials
    )


def requeue_interrupted(study: Any) -> int:
    """Fail the trials a stopped search left running, and queue their parameters again."""
    import optuna
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for frozen in stale:
        interrupt(study, optuna.trial.Trial(study, frozen._trial_id))
    return len(stale)


def interrupt(study: Any, trial: Any) -> None:
    from optuna.trial import TrialState

    params = dict(trial.params)
    trial.set_user_attr("interrupted", True)
    study.tell(trial, state=TrialState.FAIL)
    study.enqueue_trial(params, skip_if_exists=False)


def tell(study: Any, trial: Any, outcome: TrialOutcome) -> None:
    """Record a trial's outcome; a pruned trial keeps its last intermediate score."""
    from optuna.trial import TrialState

    if outcome.state == "complete":
        study.tell(trial, outcome.value)
    elif outcome.state == "pruned":
        trial.set_user_attr("pruned_at", outcome.episode)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        trial.set_user_attr("error", outcome.error or "unknown error")
        study.tell(trial, state=TrialState.FAIL)


def run_search(
    search: Search,
    out: str | Path,
    workers: int | None = None,
    torch_threads: int | None = None,
    backend: str = "local",
    address: str | None = None,
    on_trial: Callable[[Any, TrialOutcome], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Run trials until the search holds ``search.spec.trials`` finished ones, then write
    best.yaml, trials.csv, trials.md, history.png and importance.png into ``out``.

    ``on_trial(trial, outcome)`` is called as each trial ends, ``on_start(finished,
    remaining)`` once before the first: the trials finished earlier and those to run now.

    The whole search holds ``out/.lock`` (see :func:`locked_out`): a second search on the
    same folder is refused before it touches the storage.
    """
    import optuna

    from ddpglab.tune.outputs import write_outputs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = Path(out)
    start = time.perf_counter()
    if address is not None and backend != "ray":
        raise ConfigError("--address needs --backend ray")
    with locked_out(out):
        study = open_search(search, out)
        requeue_interrupted(study)
        workers = workers or os.cpu_count() or 1
        threads = torch_threads or max(1, (os.cpu_count() or 1) // workers)
        remaining = max(0, search.spec.trials - counted(study))
        if on_start is not None:
            on_start(counted(study), remaining)
        ran = 0
        with make_pool(backend, workers, threads, address) as pool:
            pending: dict[Future, Any] = {}
            launched = 0
            try:
                while launched < remaining or pending:
                    while launched < remaining and len(pending) < workers:
                        launched += 1
                        trial, task = _ask(study, search, out, threads)
                        if task is None:  # the sampled combination is not a valid config
                            ran += 1
                            failed = TrialOutcome("failed", error=trial.user_attrs["error"])
                            _report(on_trial, trial, failed)
                            continue
                        pending[pool.submit(run_trial, task)] = trial
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        trial = pending.pop(future)
                        outcome = _outcome(future, pool)
                        tell(study, trial, outcome)
                        ran += 1
                        _report(on_trial, trial, outcome)
            except BaseException:
                for future, trial in pending.items():
                    future.cancel()
                    interrupt(study, trial)
                raise
        files = write_outputs(study, search, out)
        states = [t.state.name for t in study.trials]
        best = _best(study)
        return SearchResult(
            out=out,
            complete=states.count("COMPLETE"),
            pruned=states.count("PRUNED"),
            failed=counted(study) - states.count("COMPLETE") - states.count("PRUNED"),
            interrupted=sum(bool(t.user_attrs.get("interrupted")) for t in study.trials),
            ran=ran,
            best_value=None if best is None else best.value,
            best_params={} if best is None else dict(best.user_attrs.get("config_params", {})),
            wall_s=time.perf_counter() - start,
            files=files,
        )


def _ask(study: Any, search: Search, out: Path, threads: int) -> tuple[Any, TrialTask | None]:
    """A new trial, its parameters drawn from their priors, and the task that runs it."""
    from optuna.trial import TrialState

    trial = study.ask()
    params = {key: prior.suggest(trial, key) for key, prior in search.spec.space.items()}
    trial.set_user_attr("config_params", params)  # as the config reads them
    try:
        config = search.config(params, threads)
    except ConfigError as err:
        trial.set_user_attr("error", str(err))
        study.tell(trial, state=TrialState.FAIL)
        return trial, None
    objective = search.spec.objective
    task = TrialTask(
        storage=storage_url(out),
        study_name=search.spec.name,
        trial_id=trial._trial_id,
        config=config.model_dump(mode="json"),
        last=objective.last,
        report_every=objective.report_every,
        prune_after=search.prune_after,
        prune=search.spec.pruner == "median",
        episodes=search.episodes,
    )
    return trial, task


def _outcome(future: Future, pool: Any) -> TrialOutcome:
    try:
        return future.result()
    except Exception as err:  # a worker that died: run_trial itself never raises
        return TrialOutcome("failed", error=pool.reason(err))


def _report(on_trial: Callable | None, trial: Any, outcome: TrialOutcome) -> None:
    if on_trial is not None:
        on_trial(trial, outcome)


def _best(study: Any) -> Any:
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: t.value) if complete else None


class _LocalPool:
    """Worker processes for trials; a pool broken by a dying worker is replaced."""

    def __init__(self, workers: int):
        from ddpglab.study.local_backend import worker_context

        self.workers, self.context = workers, worker_context()
        self.pool = ProcessPoolExecutor(workers, mp_context=self.context)

    def submit(self, fn: Callable, task: TrialTask) -> Future:
        try:
            return self.pool.submit(fn, task)
        except BrokenProcessPool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = ProcessPoolExecutor(self.workers, mp_context=self.context)
            return self.pool.submit(fn, task)

    def reason(self, err: BaseException) -> str:
        """Why a trial's worker ended in ``err`` instead of an outcome."""
        if isinstance(err, BrokenProcessPool):
            return "WorkerDied: the trial's worker process died"
        return f"{type(err).__name__}: {err}".strip()

    def __enter__(self) -> _LocalPool:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is not None:  # stopped: running trials end now (their workers ignore SIGINT)
            for process in list(self.pool._processes.values()):
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)


def make_pool(backend: str, workers: int, threads: int, address: str | None) -> Any:
    """Where trials run: local worker processes, or Ray tasks of ``threads`` CPUs each."""
    if backend == "ray":
        from ddpglab.tune.ray_pool import RayPool

        return RayPool(workers, threads, address)
    return _LocalPool(workers)
