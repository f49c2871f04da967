"""Jobs: which groups of seeds train together, in how many worker processes, on how many
threads each."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ddpglab.study.variants import Study, Variant


@dataclass(frozen=True)
class Job:
    """A group of one variant's seeds, trained as the members of one ensemble."""

    variant: Variant
    seeds: tuple[int, ...]
    run_ids: tuple[int, ...] | None = None  # the runs it continues from a saved state


@dataclass(frozen=True)
class Plan:
    """The jobs to run and how: ``workers`` processes of ``torch_threads`` threads each."""

    jobs: list[Job]
    workers: int
    torch_threads: int
    seeds_per_job: int


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_seeds_per_job(pending: dict[str, list[int]], workers: int) -> int:
    """Seeds per job when the user does not choose.

    All of a variant's seeds in one job while there are at least as many variants as
    workers (one batched ensemble update is the cheapest way to train many seeds);
    otherwise each variant's seeds split into ceil(workers / variants) groups, so that
    every worker has a job.
    """
    sizes = [len(seeds) for seeds in pending.values() if seeds]
    if not sizes:
        return 1
    most = max(sizes)
    if workers <= len(sizes):
        return most
    return math.ceil(most / math.ceil(workers / len(sizes)))


def plan_jobs(
    study: Study,
    pending: dict[str, list[int]],
    workers: int | None = None,
    seeds_per_job: int | None = None,
    cores: int | None = None,
    torch_threads: int | None = None,
    resumed: Sequence[Job] = (),
) -> Plan:
    """Group each variant's pending seeds into jobs, in the study's variant order.

    Args:
        study: the resolved study.
        pending: variant name -> the seeds still to run.
        workers: worker processes (default: the number of cores), capped at the job count.
        seeds_per_job: members per ensemble (default: :func:`default_seeds_per_job`).
        cores: cores to share among workers (default: :func:`available_cores`).
        torch_threads: threads per worker (default: ``max(1, cores // workers)``, so that
            workers x threads = cores).
        resumed: jobs that continue from a saved state, with their seed groups; they run
            first (``pending`` holds none of their seeds).
    """
    cores = cores or available_cores()
    wanted = workers or cores
    size = seeds_per_job or default_seeds_per_job(pending, wanted)
    jobs = list(resumed) + [
        Job(variant, tuple(seeds[i : i + size]))
        for variant in study.variants
        for seeds in [pending.get(variant.name, [])]
        for i in range(0, len(seeds), size)
    ]
    workers = max(1, min(wanted, len(jobs)))
    return Plan(jobs, workers, torch_threads or max(1, cores // workers), size)
