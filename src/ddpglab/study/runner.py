"""Run a study: jobs in parallel (local worker processes, or Ray tasks), one writer of the
results store.

The study folder holds ``results.sqlite`` (with the canonical spec and its hash in the
``study`` table), ``spec.yaml`` (the canonical spec: rerunning it resumes),
``runs/<variant>/checkpoints/``, the jobs' saved states ``runs/<variant>/state-*.npz``
while they run, and, after ``ddpglab study``, ``report/``. Re-running a study skips the
(variant, seed) pairs whose run is done, continues the jobs that saved a state, and runs
every other pair again from scratch (see :mod:`ddpglab.study.resume`).
"""

from __future__ import annotations

import shutil
import time
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddpglab.config import ConfigError
from ddpglab.run_control import folder_lock, handle_stop_signals
from ddpglab.state_files import write_text_atomic
from ddpglab.store import ResultsStore, is_empty_store, read_study
from ddpglab.study.display import StudyProgress
from ddpglab.study.driver import Backend, Driver, RunInfo
from ddpglab.study.plan import Plan, plan_jobs
from ddpglab.study.resume import resume_state, state_path_for
from ddpglab.study.spec import StudySpec, parse_spec
from ddpglab.study.variants import Study, canonical_json, load_study, resolve
from ddpglab.study.worker import JobTask
from ddpglab.tensorboard import LOG_DIR, TensorBoardStore, require_tensorboard

STORE = "results.sqlite"
#: Where jobs can run: ``local`` worker processes, or ``ray`` tasks (extra: ray).
BACKENDS = ("local", "ray")
#: What a study writes in its folder; ``--overwrite`` removes exactly these.
STUDY_ARTIFACTS = (
    STORE,
    f"{STORE}-wal",
    f"{STORE}-shm",
    "spec.yaml",
    "errors.log",
    "runs",
    "report",
    "tensorboard",
)


@dataclass
class StudyResult:
    """What one invocation of a study did."""

    name: str
    out: Path
    runs: int  # (variant, seed) pairs in the study
    done: int  # runs finished by this invocation
    failed: int  # runs that failed in this invocation
    skipped: int  # runs already done before it
    wall_s: float
    report: Path | None = None
    failures: list[tuple[str, int, str]] = field(default_factory=list)  # variant, seed, error

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.name,
            "out": str(self.out),
            "runs": self.runs,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "wall_s": round(self.wall_s, 2),
            "report": None if self.report is None else str(self.report),
        }


def _as_study(spec: str | Path | dict[str, Any] | StudySpec | Study) -> Study:
    if isinstance(spec, Study):
        return spec
    if isinstance(spec, dict):
        spec = parse_spec(spec)
    if isinstance(spec, StudySpec):
        return resolve(spec)  # base.config, if any, is relative to the working folder
    return load_study(spec)


def check_out_dir(out: Path, study: Study, overwrite: bool) -> None:
    """Refuse a folder that holds another study (or a train run) unless ``overwrite``."""
    try:  # even looking at the path can fail: a name longer than the file system allows
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} exists and is not a folder")
        if overwrite or not (out / STORE).exists():
            return
    except OSError as err:
        raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None
    held = read_study(out / STORE)
    if held is None and is_empty_store(out / STORE):
        return  # a study killed as it created its store: nothing to keep
    if held is None:
        raise ConfigError(f"--out {out} holds results that are not a study's; pass --overwrite")
    if held["spec_hash"] != study.spec_hash:
        raise ConfigError(
            f"--out {out} holds study '{held['name']}' with a different spec "
            f"(hash {held['spec_hash'][:12]}, this one {study.spec_hash[:12]}); "
            "pass --overwrite to discard it, or choose another --out"
        )


def check_resources(study: Study, plan: Plan) -> None:
    """Every variant's env can be made and each job's replay fits in memory (the device is
    not checked here: a job may run on another machine, whose trainer checks it)."""
    from ddpglab.machine import env_dims, preflight

    dims: dict[str, tuple[int, int]] = {}
    for job in plan.jobs:
        cfg = job.variant.config
        key = cfg.env.model_dump_json()  # the env, its kwargs and its action bounds
        try:
            if key not in dims:
                dims[key] = env_dims(cfg.env)
            preflight(cfg, len(job.seeds), dims[key], check_device=False)
        except ConfigError as err:
            raise ConfigError(f"study variant '{job.variant.name}': {err}") from None


def _clear(out: Path) -> None:
    for name in STUDY_ARTIFACTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _locked(out: Path) -> AbstractContextManager[None]:
    """One study process per folder: a second one would be a second writer."""
    return folder_lock(out, f"another study is running in {out}")


def register(store: ResultsStore, plan: Plan, out: Path) -> list[tuple[JobTask, RunInfo]]:
    """Register every new planned run as pending; one worker task per job (a job that
    continues from a saved state keeps its runs)."""
    tasks = []
    root = out.absolute()  # a Ray task does not run in the driver's working folder
    for job in plan.jobs:
        variant = job.variant
        if job.run_ids is not None:
            run_ids = dict(zip(job.seeds, job.run_ids, strict=True))
        else:
            run_ids = {}
            for seed in job.seeds:
                config = variant.config_for([seed], plan.torch_threads).model_dump(mode="json")
                env_id = variant.config.env.id
                run_ids[seed] = store.add_run(env_id, seed, config, variant.name, status="pending")
        rel_dir = f"runs/{variant.name}"
        task = JobTask(
            config=variant.config_for(list(job.seeds), plan.torch_threads).model_dump(mode="json"),
            run_ids=run_ids,
            out_dir=str(root / rel_dir),
            rel_dir=rel_dir,
            state_path=str(state_path_for(root, variant.name, job.seeds)),
            resume=job.run_ids is not None,
        )
        tasks.append((task, RunInfo(variant.name, run_ids)))
    return tasks


def make_backend(backend: str, address: str | None) -> Backend:
    """The backend named ``backend``; ConfigError for a bad choice or a missing extra."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if address is not None and backend != "ray":
        raise ConfigError("--address needs --backend ray")
    if backend == "ray":
        from ddpglab.study.ray_backend import RayBackend

        return RayBackend(address)
    from ddpglab.study.local_backend import LocalBackend

    return LocalBackend()


def run_study(
    spec: str | Path | dict[str, Any] | StudySpec | Study,
    out: str | Path,
    workers: int | None = None,
    seeds_per_job: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    torch_threads: int | None = None,
    tensorboard: bool = False,
    backend: str = "local",
    address: str | None = None,
) -> StudyResult:
    """Run (or resume) a study into the folder ``out``; the Python API of ``ddpglab study``.

    The report is not written here (a study sits below the report layer):
    :func:`ddpglab.study.commands.run_and_report` runs the study, then writes ``out/report/``.

    Args:
        spec: a spec file, a spec as a mapping, a parsed :class:`StudySpec` or a resolved
            :class:`Study`.
        out: the study folder; a folder holding a different study is refused.
        workers: worker processes (default: one per core, at most one per job).
        seeds_per_job: seeds trained together in one process (default: see
            :func:`~ddpglab.study.plan.default_seeds_per_job`).
        overwrite: discard what ``out`` holds (study files only) and start afresh.
        progress: show the live progress bar (only when stderr is a terminal).
        torch_threads: torch threads per worker (default: cores // workers, at least 1).
        tensorboard: also write each member's scalars to ``out/tensorboard/<variant>/seed<s>``
            (needs the ``tensorboard`` extra).
        backend: ``local`` (worker processes) or ``ray`` (Ray tasks; needs the ``ray``
            extra). With ``ray``, ``workers`` counts the jobs running at once (default: the
            cluster's CPUs) and each task asks for ``torch_threads`` CPUs.
        address: the Ray cluster to join (``auto``, or ``HOST:PORT``); None starts Ray on
            this machine with workers x threads CPUs. Only with ``backend="ray"``.

    Workers are fresh processes that import the caller's main module, so a script that
    calls this needs the ``if __name__ == "__main__":`` guard.

    Raises:
        ConfigError: bad input, before anything is written.
        KeyboardInterrupt: after stopping the workers and marking their runs failed.
    """
    start = time.perf_counter()
    executor = make_backend(backend, address)
    study, out = _as_study(spec), Path(out)
    all_seeds = {v.name: list(study.seeds) for v in study.variants}
    check_out_dir(out, study, overwrite)
    check_resources(study, plan_jobs(study, all_seeds, workers, seeds_per_job))
    if tensorboard:
        require_tensorboard()
    cores = executor.connect(workers, torch_threads)
    with closing(executor):
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None
        with _locked(out):
            check_out_dir(out, study, overwrite)  # again: another study may have ended meanwhile
            if overwrite:
                _clear(out)
            write_text_atomic(out / "spec.yaml", study.to_yaml())
            with ResultsStore(out / STORE) as store:
                if store.study() is None:
                    store.set_study(study.name, canonical_json(study.canonical), study.spec_hash)
                pending, skipped, resumed = resume_state(store, study, out)
                plan = plan_jobs(
                    study,
                    pending,
                    workers,
                    seeds_per_job,
                    cores=cores,
                    torch_threads=torch_threads,
                    resumed=resumed,
                )
                tasks = register(store, plan, out)
                n_runs = sum(len(task.run_ids) for task, _ in tasks)
                unit = "env steps" if study.by_steps else "episodes"
                total = n_runs * study.budget
                display = StudyProgress(study.name, len(tasks), total, unit, progress)
                writer = TensorBoardStore(store, out / LOG_DIR) if tensorboard else store
                driver = Driver(
                    writer, out, executor, plan.workers, study.budget, study.by_steps, display
                )
                try:
                    if tasks:
                        with display, handle_stop_signals(driver.request_stop):
                            driver.run(tasks)
                finally:
                    if tensorboard:
                        writer.close_writers()
                result = _result(study, out, store, [t[1] for t in tasks], skipped)
    result.wall_s = time.perf_counter() - start
    return result


def _result(
    study: Study, out: Path, store: ResultsStore, runs: list[RunInfo], skipped: int
) -> StudyResult:
    ours = {run_id for info in runs for run_id in info.run_ids.values()}
    rows = [r for r in store.runs() if r["run_id"] in ours]
    failures = [(r["variant"], r["seed"], r["error"] or "") for r in rows if r["status"] != "done"]
    return StudyResult(
        name=study.name,
        out=out,
        runs=len(study.variants) * len(study.seeds),
        done=len(rows) - len(failures),
        failed=len(failures),
        skipped=skipped,
        wall_s=0.0,
        failures=failures,
    )
