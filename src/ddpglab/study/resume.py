"""Rerunning a study: which runs are done, which jobs continue from a saved state, and
which (variant, seed) pairs start over.

A job's worker saves the full training state of its seed group to
``runs/<variant>/state-<digest>.npz`` (see :func:`state_path_for`) every
``train.state_every`` episodes and when it is stopped. On a rerun, a state whose runs are
all still in the store, unfinished, with every episode the state counts, and trained with
the study's config continues them; every other unfinished run is deleted with its
checkpoints and its pair starts over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from ddpglab.config import Config, ConfigError, same_run_config
from ddpglab.state_files import load_state
from ddpglab.store import ResultsStore
from ddpglab.study.plan import Job
from ddpglab.study.variants import Study, Variant


def state_path_for(out: Path, variant: str, seeds: tuple[int, ...] | list[int]) -> Path:
    """Where the job of ``variant`` training ``seeds`` keeps its saved state."""
    digest = hashlib.sha1(",".join(map(str, seeds)).encode()).hexdigest()[:12]
    return out / "runs" / variant / f"state-{digest}.npz"


def resume_state(
    store: ResultsStore, study: Study, out: Path
) -> tuple[dict[str, list[int]], int, list[Job]]:
    """Keep each pair's latest done run and the runs of resumable jobs; delete every other
    run, its checkpoints and stale saved states.

    Returns the seeds to run from scratch per variant, the number of wanted pairs already
    done, and the jobs that continue from a saved state.
    """
    runs = store.runs()
    runs_by_pair: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        runs_by_pair[(run["variant"], run["seed"])].append(run)
    done: dict[tuple[str, int], int] = {}
    for pair, pair_runs in runs_by_pair.items():
        finished = [r["run_id"] for r in pair_runs if r["status"] == "done"]
        if finished:
            done[pair] = finished[-1]
    wanted = {(v.name, s) for v in study.variants for s in study.seeds}
    _check_done_configs(study, [run_id for pair, run_id in done.items() if pair in wanted], runs)
    by_id = {run["run_id"]: run for run in runs}
    resumed = _resumable_jobs(store, study, out, by_id, wanted - set(done))
    keep = set(done.values()) | {run_id for job in resumed for run_id in job.run_ids or ()}
    store.delete_runs([r["run_id"] for r in runs if r["run_id"] not in keep])
    continuing = {(job.variant.name, seed) for job in resumed for seed in job.seeds}
    pending = {
        v.name: [s for s in study.seeds if (v.name, s) not in set(done) | continuing]
        for v in study.variants
    }
    for name, seeds in pending.items():
        for seed in seeds:
            shutil.rmtree(out / "runs" / name / "checkpoints" / f"seed{seed}", ignore_errors=True)
    return pending, len(set(done) & wanted), resumed


def _resumable_jobs(
    store: ResultsStore,
    study: Study,
    out: Path,
    by_id: dict[int, dict[str, Any]],
    open_pairs: set[tuple[str, int]],
) -> list[Job]:
    """The saved states that can continue their runs; the others are deleted."""
    jobs = []
    for variant in study.variants:
        for path in sorted((out / "runs" / variant.name).glob("state-*.npz")):
            try:
                saved = load_state(path, arrays=False)
            except Exception:  # a half-written file, another format: not resumable
                saved = None
            job = _job_of(saved, variant, path, out, by_id, open_pairs)
            if job is not None and not _store_holds_what_it_counts(store, saved, job):
                job = None
            if job is None:
                path.unlink()
                continue
            open_pairs -= {(variant.name, seed) for seed in job.seeds}
            jobs.append(job)
    return jobs


def _job_of(
    saved: Any,
    variant: Variant,
    path: Path,
    out: Path,
    by_id: dict[int, dict[str, Any]],
    open_pairs: set[tuple[str, int]],
) -> Job | None:
    """The job a saved state continues, if its runs are unfinished and its config is the
    variant's; else None."""
    if not isinstance(saved, dict) or "run_ids" not in saved:
        return None
    seeds = tuple(saved["config"]["train"]["seeds"])
    run_ids = tuple(saved["run_ids"])
    if path != state_path_for(out, variant.name, seeds) or None in run_ids:
        return None
    for seed, run_id in zip(seeds, run_ids, strict=True):
        run = by_id.get(run_id)
        if run is None or (run["variant"], run["seed"]) != (variant.name, seed):
            return None
        if run["status"] == "done" or (variant.name, seed) not in open_pairs:
            return None
    expected = variant.config_for(list(seeds)).model_dump(mode="json")
    if not same_run_config(saved["config"], expected):
        return None
    return Job(variant, seeds, run_ids)


def _store_holds_what_it_counts(store: ResultsStore, saved: dict[str, Any], job: Job) -> bool:
    """Whether the store holds every episode the saved state counts. A worker saves its
    state right after sending its episodes to the driver; a driver killed before it wrote
    them leaves the state ahead of the store, and continuing would leave a gap."""
    for run_id, member in zip(job.run_ids or (), saved["members"], strict=True):
        if store.stored_episodes(run_id, member["episodes"]) < member["episodes"]:
            return False
    return True


def _check_done_configs(study: Study, done_ids: list[int], runs: list[dict[str, Any]]) -> None:
    """Refuse to keep done runs that were trained with another config than the spec gives
    now. The spec hash covers the spec's text, not the presets it names: a preset changed
    by an upgrade would otherwise mix old and new runs in one table."""
    variants = {v.name: v for v in study.variants}
    by_id = {run["run_id"]: run for run in runs}
    for run_id in done_ids:
        run = by_id[run_id]
        expected = variants[run["variant"]].config_for([run["seed"]]).model_dump(mode="json")
        try:
            stored = Config.model_validate(json.loads(run["config_json"])).model_dump(mode="json")
        except ValueError:  # a config this version cannot read any more
            stored = None
        if stored is None or not same_run_config(stored, expected):
            raise ConfigError(
                f"run {run['variant']} seed {run['seed']} was trained with another config "
                "than this spec gives now (a preset changed?); pass --overwrite to start "
                "over, or choose another --out"
            )
