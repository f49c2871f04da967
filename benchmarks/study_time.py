"""A whole study's wall time, extrapolated from a timed subset of it.

The selected variants run as the study runs them (all of a variant's seeds as one ensemble
job, ``--workers`` processes of ``--threads`` torch threads), twice: for E1 and for E2
episodes per seed. Each job's wall time (from the store: first start to last finish of its
runs) is fit as t(E) = a + b E, where a holds what does not grow with the budget (start-up,
env creation, the final evaluation) and b the cost of one episode of every member. The full
study's jobs, t(full) = a + b episodes each, are then handed out to the workers in the
runner's order, each job to the first free worker; the time the last one ends is the
estimate. A variant left out of ``--variants`` takes the fit of a timed variant with the
same replay kind and capacity, or else the same kind.

    python benchmarks/study_time.py studies/pendulum-2023.yaml [--episodes 4,8]
        [--variants NAME,...] [--workers 2] [--threads 1]

What it leaves out, with its sign: periodic evaluations (the subsets have none before the
final one; Pendulum's 10 evaluations of 5 episodes cost about as many actor forwards as
1/4 of the training steps have, each far cheaper than an update), and the cost of sampling
from a fuller buffer (prioritized replay's tree is deeper).
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path


def job_walls(out: Path) -> dict[str, float]:
    """Per variant: seconds from the first start to the last finish of its runs."""
    with closing(sqlite3.connect(out / "results.sqlite")) as db:
        rows = db.execute(
            "SELECT variant, MIN(started_at), MAX(finished_at) FROM runs "
            "WHERE status = 'done' GROUP BY variant"
        ).fetchall()
    return {variant: finished - started for variant, started, finished in rows}


def makespan(job_seconds: list[float], workers: int) -> float:
    """When the last job ends if each, in order, goes to the first free worker."""
    free_at = [0.0] * workers
    for seconds in job_seconds:
        heapq.heappush(free_at, heapq.heappop(free_at) + seconds)
    return max(free_at)


def main() -> None:
    from ddpglab.study.runner import run_study
    from ddpglab.study.spec import load_spec
    from ddpglab.study.variants import resolve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--episodes", default="4,8", help="the two subset budgets E1,E2")
    parser.add_argument("--variants", help="variants to time (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    spec = load_spec(args.spec)
    full = resolve(spec, args.spec.parent)
    chosen = args.variants.split(",") if args.variants else [v.name for v in full.variants]
    unknown = sorted(set(chosen) - {v.name for v in full.variants})
    if unknown:
        parser.error(f"no variant named {', '.join(unknown)} in {args.spec}")
    e1, e2 = (int(e) for e in args.episodes.split(","))
    walls: dict[int, dict[str, float]] = {}
    for episodes in (e1, e2):
        study = resolve(
            spec.model_copy(update={"episodes": episodes, "steps": None}), args.spec.parent
        )
        study = dataclasses.replace(study, variants=[v for v in study.variants if v.name in chosen])
        with tempfile.TemporaryDirectory() as folder:
            run_study(
                study,
                Path(folder) / "study",
                workers=args.workers,
                seeds_per_job=len(study.seeds),
                torch_threads=args.threads,
            )
            walls[episodes] = job_walls(Path(folder) / "study")

    fits = {}
    for name in chosen:
        per_episode = (walls[e2][name] - walls[e1][name]) / (e2 - e1)
        fits[name] = (walls[e1][name] - per_episode * e1, per_episode)
    kind = {v.name: v.config.replay.kind for v in full.variants}
    kind_and_capacity = {v.name: (kind[v.name], v.config.replay.capacity) for v in full.variants}
    by_kind = {kind[name]: fits[name] for name in chosen}
    by_kind_and_capacity = {kind_and_capacity[name]: fits[name] for name in chosen}
    budget = full.budget
    rows, seconds = [], []
    for variant in full.variants:
        fixed, per_episode = (
            fits.get(variant.name)
            or by_kind_and_capacity.get(kind_and_capacity[variant.name])
            or by_kind[kind[variant.name]]
        )
        job = fixed + per_episode * budget
        seconds.append(job)
        rows.append(
            {
                "variant": variant.name,
                "timed": variant.name in fits,
                "fixed_s": round(fixed, 1),
                "per_episode_s": round(per_episode, 3),
                "full_job_min": round(job / 60, 1),
            }
        )
    for row in rows:
        print(json.dumps(row))
    total = makespan(seconds, args.workers)
    print(
        f"\n{len(full.variants)} jobs of {len(full.seeds)} seeds x {budget} episodes on "
        f"{args.workers} workers x {args.threads} thread(s): {total / 3600:.2f} h "
        f"(fit from E = {e1} and {e2} episodes)"
    )


if __name__ == "__main__":
    main()
