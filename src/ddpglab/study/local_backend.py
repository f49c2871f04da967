"""The local backend: each job in a fresh worker process of this machine, one pipe per job.

A job's messages come over its own pipe. When the pipe reaches end of file, every message
the worker sent has been read, and the job has ended; how its process ended then says why,
if the job did not.
"""

from __future__ import annotations

import multiprocessing
import signal
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from ddpglab.study.driver import Message
from ddpglab.study.worker import JobTask, run_job


def worker_context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes that start fast.

    A fork server (where the OS has one) imports torch and the trainer once, then forks
    each worker from that clean, single-threaded process; elsewhere workers are spawned.
    Neither copies the driver's state (its open store, its threads) as a plain fork would.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ddpglab.study.worker", "ddpglab.training.loop"])
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


def _recv(reader: Connection) -> Message | None:
    """The next message on ``reader``; None once the worker's end is closed."""
    try:
        return reader.recv()
    except (EOFError, OSError):  # OSError: a message cut off by the worker's death
        return None


class LocalBackend:
    """Jobs as local worker processes; a job's key is the reading end of its pipe."""

    def __init__(self) -> None:
        self._ctx: multiprocessing.context.BaseContext | None = None
        self._jobs: dict[Connection, BaseProcess] = {}

    def connect(self, workers: int | None, threads: int | None) -> int | None:
        """Nothing to join: jobs share this machine's cores (None says so)."""
        return None

    def close(self) -> None:
        """Nothing is left open once every job has ended."""

    def launch(self, task: JobTask) -> Connection:
        """Start the job's worker process."""
        if self._ctx is None:
            self._ctx = worker_context()
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(target=run_job, args=(task, writer), daemon=True)
        process.start()
        writer.close()  # the worker's end: EOF here once the worker is gone
        self._jobs[reader] = process
        return reader

    def poll(self, timeout: float) -> list[tuple[Connection, Message | None]]:
        """One message from each job that has one (None: the job ended), waiting at most
        ``timeout`` seconds for the first."""
        return [(reader, _recv(reader)) for reader in wait(list(self._jobs), timeout=timeout)]

    def finish(self, key: Connection) -> str:
        """Forget an ended job; returns how its process ended."""
        process = self._jobs.pop(key)
        process.join(timeout=30)  # its pipe is closed: it is exiting
        if process.is_alive():
            process.kill()
            process.join()
        key.close()
        return death_reason(process.exitcode)

    def stop(self, keys: list[Connection]) -> list[tuple[Connection, Message]]:
        """Terminate the jobs' workers; returns the messages they sent that were not read."""
        processes = [self._jobs[key] for key in keys]
        for process in processes:
            process.terminate()  # a worker saves its state on SIGTERM, then stops
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        left = []
        for reader in keys:
            while reader.poll() and (message := _recv(reader)) is not None:
                left.append((reader, message))
        return left
