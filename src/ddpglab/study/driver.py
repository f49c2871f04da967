"""The driver: starts worker processes, applies their messages to the store, notices deaths.

Each worker has its own pipe. Messages are ``(method, args)``: a store write, applied in
its own transaction as it arrives, or the job's end (``job_done``, ``job_error``). When
a worker's pipe reaches end of file, every message it sent has been read; its runs that
are not finished then are marked failed, with the job's error or how the process died.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from ddpglab.store import ResultsStore
from ddpglab.study.display import StudyProgress
from ddpglab.study.worker import JobTask, run_job

STORE_CALLS = frozenset(
    {"start_run", "rewind_run", "add_episodes", "add_eval", "add_checkpoint", "finish_run"}
)


@dataclass(frozen=True)
class RunInfo:
    """A job's variant and its runs (seed -> run_id)."""

    variant: str
    run_ids: dict[int, int]


@dataclass
class _Live:
    """A started job."""

    info: RunInfo
    process: BaseProcess
    error: tuple[str, str] | None = None  # (reason, traceback) from the worker


def worker_context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes that start fast.

    A fork server (where the OS has one) imports torch and the trainer once, then forks
    each worker from that clean, single-threaded process; elsewhere workers are spawned.
    Neither copies the driver's state (its open store, its threads) as a plain fork would.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ddpglab.study.worker", "ddpglab.trainer"])
    return ctx


def death_reason(exitcode: int | None) -> str:
    """How a worker process ended without reporting its job's end."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"WorkerDied: worker process killed by {name}"
    return f"WorkerDied: worker process exited with status {exitcode} before finishing its runs"


class Driver:
    """Runs jobs in at most ``workers`` processes; the only writer of ``store``."""

    def __init__(
        self,
        store: ResultsStore,
        out: Path,
        workers: int,
        budget: int,
        by_steps: bool,
        display: StudyProgress,
    ):
        self.store, self.out, self.workers = store, out, workers
        self.budget, self.by_steps, self.display = budget, by_steps, display
        self.status: dict[int, str] = {}  # run_id -> latest status
        self.units: dict[int, int] = {}  # run_id -> progress units counted

    def run(self, tasks: list[tuple[JobTask, RunInfo]]) -> None:
        """Run every task; on Ctrl-C (or any error here) stop the workers, mark their
        unfinished runs failed, and re-raise."""
        ctx = worker_context()
        queue = deque(tasks)
        live: dict[Connection, _Live] = {}
        try:
            while queue or live:
                while queue and len(live) < self.workers:
                    task, info = queue.popleft()
                    reader, writer = ctx.Pipe(duplex=False)
                    process = ctx.Process(target=run_job, args=(task, writer), daemon=True)
                    process.start()
                    writer.close()  # the worker's end: EOF here once the worker is gone
                    live[reader] = _Live(info, process)
                    for run_id in info.run_ids.values():
                        self.status[run_id], self.units[run_id] = "pending", 0
                for reader in wait(list(live), timeout=1.0):
                    if not self._receive(reader, live[reader]):
                        self._end(live.pop(reader))
                        reader.close()
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt):
                reason = "KeyboardInterrupt: study interrupted"
            else:
                reason = f"StudyStopped: the driver failed: {type(err).__name__}: {err}"
            self._stop(live, reason)
            raise

    def _receive(self, reader: Connection, job: _Live) -> bool:
        """Apply one message; False once the worker's pipe is closed."""
        try:
            method, args = reader.recv()
        except (EOFError, OSError):  # OSError: a message cut off by the worker's death
            return False
        if method in STORE_CALLS:
            getattr(self.store, method)(*args)
            self._track(method, args)
        elif method == "job_error":
            job.error = tuple(args)
        return True

    def _track(self, method: str, args: tuple[Any, ...]) -> None:
        if method == "start_run":
            self.status[args[0]] = "running"
        elif method == "rewind_run":  # a job continues from its saved state
            self.status[args[0]] = "running"
            self._count(args[0], args[2] if self.by_steps else args[1])
        elif method == "finish_run":
            self.status[args[0]] = args[1]
            self._count(args[0], self.budget)  # the rest of a failed run will not come
        elif method == "add_episodes":
            for row in args[0]:
                run_id, episode, env_steps = row[0], row[1], row[4]
                self._count(run_id, env_steps if self.by_steps else episode)

    def _count(self, run_id: int, units: int) -> None:
        gained = max(0, min(units, self.budget) - self.units[run_id])
        self.units[run_id] += gained
        self.display.advance(gained)

    def _end(self, job: _Live, reason: str | None = None) -> None:
        """The worker is gone: its unfinished runs fail, with the best reason known."""
        job.process.join(timeout=30)  # its pipe is closed: it is exiting
        if job.process.is_alive():
            job.process.kill()
            job.process.join()
        if job.error is not None:
            reason = job.error[0]
            self._log_error(job)
        reason = reason or death_reason(job.process.exitcode)
        unfinished = [
            r for r in job.info.run_ids.values() if self.status[r] not in ("done", "failed")
        ]
        for run_id in unfinished:
            self.store.finish_run(run_id, "failed", reason)
            self._track("finish_run", (run_id, "failed"))
        failed = any(self.status[r] == "failed" for r in job.info.run_ids.values())
        self.display.job_finished(failed)

    def _log_error(self, job: _Live) -> None:
        """The worker's traceback, for whoever wonders why a run failed."""
        seeds = ",".join(str(s) for s in job.info.run_ids)
        when = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.out / "errors.log", "a", encoding="utf-8") as log:
            log.write(f"== {when} variant {job.info.variant} seeds {seeds}\n{job.error[1]}\n")

    def _stop(self, live: dict[Connection, _Live], reason: str) -> None:
        """Terminate the workers, keep the whole episodes they sent, fail their runs."""
        running = {
            run_id
            for job in live.values()
            for run_id in job.info.run_ids.values()
            if self.status[run_id] not in ("done", "failed")
        }
        for job in live.values():
            job.process.terminate()  # a worker saves its state on SIGTERM, then stops
        for job in live.values():
            job.process.join(timeout=10)
            if job.process.is_alive():
                job.process.kill()
        for reader, job in live.items():
            while reader.poll() and self._receive(reader, job):
                pass
            # A worker's view of being stopped is not the reason: the runs it was training
            # fail with the driver's reason (a member stopped earlier by a NaN keeps its own).
            job.error = None
            for run_id in running & set(job.info.run_ids.values()):
                if self.status[run_id] == "failed":
                    self.status[run_id] = "running"
            self._end(job, reason)
            reader.close()
