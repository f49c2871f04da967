"""The worker: trains one job and reports every store write to the driver.

The driver is the only writer of ``results.sqlite``. A worker hands its
:class:`~ddpglab.training.loop.Trainer` a :class:`StoreProxy` whose methods send each write as a
``(method, args)`` message the driver applies in arrival order: over a pipe from a local
worker process (:func:`run_job`), through a Ray queue from a Ray task
(:mod:`ddpglab.study.ray_backend`); :func:`execute_job` is the part both share.
"""

from __future__ import annotations

import contextlib
import signal
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import PurePosixPath
from typing import Any, Protocol

from ddpglab.store import EpisodeRow, ReplayStatsRow


@dataclass(frozen=True)
class JobTask:
    """What a worker needs: the job's config (as a mapping) and its pre-registered runs."""

    config: dict[str, Any]
    run_ids: dict[int, int]  # seed -> run_id, registered by the driver
    out_dir: str  # the variant's folder, DIR/runs/<variant>
    rel_dir: str  # the same folder relative to the study folder
    state_path: str  # where the job saves its full training state
    resume: bool = False  # continue from the state at state_path


class Sender(Protocol):
    """Where a job's messages go: a pipe's end, or anything with the same ``send``."""

    def send(self, message: tuple[str, tuple[Any, ...]]) -> None:
        """Deliver one message; raise OSError when the driver can no longer be reached."""


class StoreProxy:
    """The :class:`~ddpglab.store.ResultsStore` methods a Trainer calls, sent to the driver."""

    def __init__(self, conn: Sender, run_ids: dict[int, int], rel_dir: str):
        self.conn = conn
        self.run_ids = run_ids
        self.rel_dir = PurePosixPath(rel_dir)

    def _send(self, method: str, *args: Any) -> None:
        self.conn.send((method, args))

    def add_run(self, env_id: str, seed: int, config: dict[str, Any], variant: str = "") -> int:
        run_id = self.run_ids[seed]
        self._send("start_run", run_id, config)
        return run_id

    def rewind_run(self, run_id: int, episodes: int, env_steps: int) -> None:
        self._send("rewind_run", run_id, episodes, env_steps)

    def add_episodes(
        self, rows: list[EpisodeRow], replay_stats: Sequence[ReplayStatsRow] = ()
    ) -> None:
        self._send("add_episodes", list(rows), list(replay_stats))

    def add_eval(self, run_id: int, episode: int, env_steps: int, returns: list[float]) -> None:
        self._send("add_eval", run_id, episode, env_steps, [float(r) for r in returns])

    def add_checkpoint(self, run_id: int, episode: int, env_steps: int, path: str) -> None:
        # The Trainer gives the path relative to the variant's folder; the store keeps
        # paths relative to the study folder.
        self._send("add_checkpoint", run_id, episode, env_steps, str(self.rel_dir / path))

    def finish_run(self, run_id: int, status: str = "done", error: str | None = None) -> None:
        self._send("finish_run", run_id, status, error)


def run_job(task: JobTask, conn: Connection) -> None:
    """Process entry point: train the job, then send ``job_done`` or ``job_error``."""
    # Ctrl-C reaches the whole process group; the driver alone decides how workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        execute_job(task, conn)
    finally:
        conn.close()


def execute_job(task: JobTask, conn: Sender) -> None:
    """Train the job, sending its store writes to ``conn``, then ``job_done`` or ``job_error``.

    Signals are left as they are: SIGINT or SIGTERM, where handled, stops the Trainer at
    the end of a step with its state saved (the job then ends with ``job_error``).
    """
    try:
        from ddpglab.config import Config
        from ddpglab.training import Trainer

        config = Config.model_validate(task.config)
        proxy = StoreProxy(conn, task.run_ids, task.rel_dir)
        trainer = Trainer(
            config,
            task.out_dir,
            store=proxy,  # type: ignore[arg-type]
            state_path=task.state_path,
        )
        if task.resume and trainer.resume():
            trainer.rewind_store()
        trainer.run()
        conn.send(("job_done", ()))
    except BaseException as err:  # everything is reported to the driver, nothing lost
        reason = f"{type(err).__name__}: {err}".strip()
        with contextlib.suppress(OSError):  # the driver is gone: nobody is left to tell
            conn.send(("job_error", (reason, traceback.format_exc())))
