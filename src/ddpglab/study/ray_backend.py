"""The Ray backend: each job a Ray task, on a local Ray instance or on a cluster.

A task trains its job with :func:`~ddpglab.study.worker.execute_job`, whose messages go,
tagged with the job's key, into one :class:`ray.util.queue.Queue` (an actor on the
driver's node) that the driver drains; each ``put`` returns once the queue holds the
message, so when a task's result is ready every message it sent is in the queue. The
driver stays the only writer of the store. Ray is imported only when this backend is used.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import sys
import time
from typing import Any

from ddpglab.config import ConfigError
from ddpglab.study.driver import Message
from ddpglab.study.plan import available_cores
from ddpglab.study.worker import JobTask, execute_job

#: How long a task may take to stop after ``ray.cancel`` (the Trainer saves its state at
#: the end of a step) before its worker is killed.
STOP_GRACE_S = 10.0
#: How often the driver looks for messages and ended tasks while there are none.
POLL_S = 0.05
#: How long to try reaching a cluster's head before refusing its address.
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> Any:
    """The ``ray`` module, or ConfigError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray, which is not installed: pip install 'ddpglab[ray]'"
        ) from None
    return ray


def init_local_ray(num_cpus: int) -> None:
    """Start a quiet Ray instance of this process with ``num_cpus`` CPUs (a new one even
    where a cluster runs on this machine: joining one takes ``--address``).

    Its workers get this process's ``sys.path``, as local worker processes do, so that an
    env id ``module:EnvId`` that this process can import resolves in a task too.
    """
    ray = import_ray()
    path = os.pathsep.join(entry or os.getcwd() for entry in sys.path)
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )


def join_cluster(address: str) -> None:
    """Join the Ray cluster at ``address`` ('auto' or HOST:PORT), or refuse in one line."""
    ray = import_ray()
    problem = None if address == "auto" else unreachable(address)
    if problem is not None:  # else Ray retries for minutes
        raise ConfigError(f"--address {address}: {problem}")
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as err:  # ConnectionError, or ValueError for a malformed address
        detail = _first_line(f"{type(err).__name__}: {err}")
        raise ConfigError(
            f"--address {address}: cannot join a Ray cluster: {detail} (a cluster "
            "with token authentication also needs RAY_AUTH_MODE=token and its token)"
        ) from None


def failure_reason(ray: Any, err: BaseException) -> str:
    """Why a job's runs fail when its task ended in ``err`` without reporting its end."""
    exceptions = ray.exceptions
    if isinstance(err, exceptions.TaskCancelledError):
        return "WorkerDied: the job's Ray task was cancelled"
    if isinstance(err, exceptions.WorkerCrashedError):
        return "WorkerDied: the Ray worker process died before finishing its runs"
    if isinstance(err, exceptions.RayTaskError):
        cause = err.cause if isinstance(err.cause, BaseException) else err
        return _first_line(f"{type(cause).__name__}: {cause}")
    return _first_line(f"WorkerDied: {type(err).__name__}: {err}")


def unreachable(address: str) -> str | None:
    """Why nothing answers at ``HOST:PORT`` (a Ray head's GCS port), or None if it does."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 address: [::1]:6379
    if not colon or not host or not port.isdigit():
        return "expected 'auto' or HOST:PORT (the head's address, port 6379 by default)"
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        return f"nothing answers there ({err.strerror or err}); is `ray start --head` running?"
    return None


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


class _QueueSender:
    """A task's end of the driver's queue: each message tagged with the job's key."""

    def __init__(self, queue: Any, key: int):
        self.queue, self.key = queue, key

    def send(self, message: Message) -> None:
        """Put the message in the queue; OSError once the queue is gone with the driver."""
        from ray.exceptions import RayError

        try:
            self.queue.put((self.key, message))
        except RayError as err:
            raise OSError(f"the study driver's queue is gone: {err}") from err


def train_task(task: JobTask, key: int, queue: Any) -> None:
    """The Ray task: train one job, its messages into ``queue``."""
    execute_job(task, _QueueSender(queue, key))


class RayBackend:
    """Jobs as Ray tasks of ``num_cpus`` = their torch threads; a job's key is an int."""

    def __init__(self, address: str | None = None):
        self.ray = import_ray()
        self.address = address
        self._owns_ray = False  # this backend joined or started Ray: it leaves it
        self._queue: Any = None
        self._train: Any = None
        self._keys = itertools.count()
        self._running: dict[Any, int] = {}  # ObjectRef -> key
        self._refs: dict[int, Any] = {}  # key -> ObjectRef

    def connect(self, workers: int | None, threads: int | None) -> int:
        """Join the cluster at ``address``, or start Ray here with ``workers x threads``
        CPUs (Ray already started in this process is used as it is); returns the
        cluster's CPUs."""
        ray = self.ray
        if not ray.is_initialized():
            if self.address is None:
                cores = available_cores()
                wanted = workers or cores
                init_local_ray(wanted * (threads or max(1, cores // wanted)))
            else:
                self._join_cluster()
            self._owns_ray = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            self.close()
            raise ConfigError("the Ray cluster has no CPUs for study jobs")
        self._queue = self._make_queue()
        self._train = ray.remote(max_retries=0)(train_task)
        return cpus

    def _join_cluster(self) -> None:
        join_cluster(self.address)

    def _make_queue(self) -> Any:
        """The message queue, as an actor on this node that holds no CPU."""
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = self.ray.get_runtime_context().get_node_id()
        strategy = NodeAffinitySchedulingStrategy(node_id=here, soft=True)
        return Queue(actor_options={"num_cpus": 0, "scheduling_strategy": strategy})

    def close(self) -> None:
        """Remove the queue; leave Ray if this backend joined or started it (a cluster
        goes on, a local instance stops)."""
        if self._queue is not None:
            self._queue.shutdown(force=True)
            self._queue = None
        if self._owns_ray:
            self.ray.shutdown()
            self._owns_ray = False

    def launch(self, task: JobTask) -> int:
        """Submit the job's task, with its torch threads as its CPUs."""
        key = next(self._keys)
        threads = task.config["train"].get("torch_threads") or 1
        ref = self._train.options(num_cpus=threads).remote(task, key, self._queue)
        self._running[ref], self._refs[key] = key, ref
        return key

    def poll(self, timeout: float) -> list[tuple[int, Message | None]]:
        """The messages in the queue, then ``(key, None)`` for each task found ended
        before they were taken; looks again every ``POLL_S`` for at most ``timeout`` s
        while there is neither.

        The queue is only ever read without blocking: a blocking read cut short by Ctrl-C
        would go on in the queue's actor and take a message nobody applies.
        """
        deadline = time.monotonic() + timeout
        while True:
            ended = self._ended()
            items = self._drain()
            if items or ended or time.monotonic() >= deadline:
                return [*items, *((self._running.pop(ref), None) for ref in ended)]
            time.sleep(POLL_S)

    def _ended(self) -> list[Any]:
        refs = list(self._running)
        if not refs:
            return []
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
        return ready

    def _drain(self) -> list[tuple[int, Message]]:
        size = self._queue.qsize()
        return self._queue.get_nowait_batch(size) if size else []

    def finish(self, key: int) -> str:
        """Forget an ended job; returns why, if its task failed, else a generic reason."""
        ref = self._refs.pop(key)
        self._running.pop(ref, None)
        try:
            self.ray.get(ref, timeout=STOP_GRACE_S)
        except Exception as err:
            return failure_reason(self.ray, err)
        return "WorkerDied: the job's Ray task ended without reporting its end"

    def stop(self, keys: list[int]) -> list[tuple[int, Message]]:
        """Cancel the tasks (a Trainer saves its state, then stops), kill those that do not
        end within ``STOP_GRACE_S``; returns the messages not taken yet."""
        refs = [self._refs[key] for key in keys]
        if refs:
            for ref in refs:
                # KeyboardInterrupt (SIGINT) in the task. Not recursive: that would cancel
                # the queue put the task may be waiting on, and it would fail before saving.
                self.ray.cancel(ref, recursive=False)
            _, left = self.ray.wait(refs, num_returns=len(refs), timeout=STOP_GRACE_S)
            for ref in left:
                self.ray.cancel(ref, force=True)
            if left:
                self.ray.wait(left, num_returns=len(left), timeout=STOP_GRACE_S)
        return self._drain()
