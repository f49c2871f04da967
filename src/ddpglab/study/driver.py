"""The driver: hands jobs to a backend, applies their messages to the store, notices ends.

A backend (:class:`Backend`: local worker processes, or Ray tasks) launches each job and
delivers its messages, ``(method, args)``: a store write, applied in its own transaction
as it arrives, or the job's end (``job_done``, ``job_error``). Once the backend reports
that a job has ended, every message it sent has been applied; its runs that are not
finished then are marked failed, with the job's error or how the job ended.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ddpglab.store import ResultsStore
from ddpglab.study.display import StudyProgress
from ddpglab.study.worker import JobTask

STORE_CALLS = frozenset(
    {"start_run", "rewind_run", "add_episodes", "add_eval", "add_checkpoint", "finish_run"}
)

Message = tuple[str, tuple[Any, ...]]


class Backend(Protocol):
    """Where jobs run. Each launched job is known by a key; ``poll`` gives its messages in
    the order it sent them, then ``(key, None)`` once it has ended and sent everything."""

    def connect(self, workers: int | None, threads: int | None) -> int | None:
        """Get ready to run jobs; returns the cores to plan with (None: this machine's)."""

    def close(self) -> None:
        """Release what ``connect`` set up."""

    def launch(self, task: JobTask) -> Hashable:
        """Start a job; returns its key."""

    def poll(self, timeout: float) -> list[tuple[Hashable, Message | None]]:
        """Messages that arrived (None: the job ended), waiting at most ``timeout`` seconds."""

    def finish(self, key: Hashable) -> str:
        """Forget an ended job; returns why its runs fail if the job did not say."""

    def stop(self, keys: list[Hashable]) -> list[tuple[Hashable, Message]]:
        """Stop these jobs; returns what they sent that ``poll`` did not give yet."""


@dataclass(frozen=True)
class RunInfo:
    """A job's variant and its runs (seed -> run_id)."""

    variant: str
    run_ids: dict[int, int]


@dataclass
class _Live:
    """A started job."""

    info: RunInfo
    error: tuple[str, str] | None = None  # (reason, traceback) from the worker


class Driver:
    """Runs jobs on ``backend``, at most ``workers`` at a time; the only writer of ``store``."""

    def __init__(
        self,
        store: ResultsStore,
        out: Path,
        backend: Backend,
        workers: int,
        budget: int,
        by_steps: bool,
        display: StudyProgress,
    ):
        self.store, self.out, self.backend, self.workers = store, out, backend, workers
        self.budget, self.by_steps, self.display = budget, by_steps, display
        self.status: dict[int, str] = {}  # run_id -> latest status
        self.units: dict[int, int] = {}  # run_id -> progress units counted
        self.stop_signal: int | None = None  # SIGINT or SIGTERM received

    def request_stop(self, signum: int) -> None:
        """Stop as after Ctrl-C, once the messages read so far are stored (a signal
        handler's target: raising at an arbitrary point could lose a message already read
        from its pipe, and a worker's saved state would then count episodes never stored)."""
        self.stop_signal = signum

    def run(self, tasks: list[tuple[JobTask, RunInfo]]) -> None:
        """Run every task; on Ctrl-C, :meth:`request_stop` or any error here, stop the jobs,
        mark their unfinished runs failed, and re-raise (KeyboardInterrupt for a stop)."""
        queue = deque(tasks)
        live: dict[Hashable, _Live] = {}
        try:
            while queue or live:
                while queue and len(live) < self.workers:
                    task, info = queue.popleft()
                    live[self.backend.launch(task)] = _Live(info)
                    for run_id in info.run_ids.values():
                        self.status[run_id], self.units[run_id] = "pending", 0
                for key, message in self.backend.poll(timeout=1.0):
                    if message is None:
                        self._end(live.pop(key), self.backend.finish(key))
                    else:
                        self._apply(live[key], message)
                if self.stop_signal is not None:
                    raise KeyboardInterrupt(f"stopped by {signal.Signals(self.stop_signal).name}")
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt):
                reason = "KeyboardInterrupt: study interrupted"
            else:
                reason = f"StudyStopped: the driver failed: {type(err).__name__}: {err}"
            self._stop(live, reason)
            raise

    def _apply(self, job: _Live, message: Message) -> None:
        """Apply one message of ``job``: a store write, or the error that ended it."""
        method, args = message
        if method in STORE_CALLS:
            getattr(self.store, method)(*args)
            self._track(method, args)
        elif method == "job_error":
            job.error = tuple(args)

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
                self._count(row.run_id, row.env_steps if self.by_steps else row.episode)

    def _count(self, run_id: int, units: int) -> None:
        gained = max(0, min(units, self.budget) - self.units[run_id])
        self.units[run_id] += gained
        self.display.advance(gained)

    def _end(self, job: _Live, reason: str) -> None:
        """The job has ended: its unfinished runs fail, with its own error if it sent one,
        else with ``reason`` (how it ended)."""
        if job.error is not None:
            reason = job.error[0]
            self._log_error(job)
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

    def _stop(self, live: dict[Hashable, _Live], reason: str) -> None:
        """Stop the jobs, keep the whole episodes they sent, fail their runs."""
        running = {
            run_id
            for job in live.values()
            for run_id in job.info.run_ids.values()
            if self.status[run_id] not in ("done", "failed")
        }
        for key, message in self.backend.stop(list(live)):
            self._apply(live[key], message)
        for key, job in live.items():
            self.backend.finish(key)
            # A worker's view of being stopped is not the reason: the runs it was training
            # fail with the driver's reason (a member stopped earlier by a NaN keeps its own).
            job.error = None
            for run_id in running & set(job.info.run_ids.values()):
                if self.status[run_id] == "failed":
                    self.status[run_id] = "running"
            self._end(job, reason)
