"""Trials as Ray tasks: each reserves ``threads`` CPUs; futures like a process pool's.

Ray is started, joined and its failures explained as for ``ddpglab study --backend ray``
(:mod:`ddpglab.study.ray_backend`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ddpglab.study.ray_backend import failure_reason, import_ray, init_local_ray, join_cluster


class RayPool:
    """Runs ``fn(task)`` as a Ray task; joins ``address`` or starts a local Ray instance."""

    def __init__(self, workers: int, threads: int, address: str | None):
        self.ray = import_ray()
        self.owns_ray = not self.ray.is_initialized()
        if self.owns_ray:
            if address is None:
                init_local_ray(workers * threads)
            else:
                join_cluster(address)
        self.threads = threads
        self._remote: dict[Callable, Any] = {}

    def submit(self, fn: Callable, task: Any) -> Future:
        if fn not in self._remote:
            self._remote[fn] = self.ray.remote(num_cpus=self.threads, max_retries=0)(fn)
        return self._remote[fn].remote(task).future()

    def reason(self, err: BaseException) -> str:
        """Why a trial's task ended in ``err`` instead of an outcome."""
        return failure_reason(self.ray, err)

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.owns_ray:
            self.ray.shutdown()
