"""A study's results as the report reads them: the counted runs of a run or study folder,
each with its episodes in order, loaded from ``DIR/results.sqlite`` alone.

The report writer, its table and figures, export and animate (and enjoy through it) read a
folder through here, so what counts as a run and how a variant is labelled is decided once.
The name keeps it apart from :class:`ddpglab.study.variants.Study`, a spec's variants.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ddpglab.config import ConfigError
from ddpglab.store import ResultsStore, is_results_store

SINGLE_RUN_VARIANT = "run"  # how a plain ``ddpglab train`` run (variant '') is labelled


@dataclass
class RunData:
    """One counted run: its identity and its episodes in order."""

    run_id: int
    env_id: str
    variant: str
    seed: int
    status: str
    replay_kind: str | None
    episodes: np.ndarray
    returns: np.ndarray
    thresholds: np.ndarray  # NaN where the store holds NULL
    env_steps: np.ndarray | None = None  # at each episode's end
    lengths: np.ndarray | None = None
    terminated: np.ndarray | None = None  # 1.0: the env ended it; NaN: not recorded
    q_start: np.ndarray | None = None  # Q(s_0, mu(s_0)); NaN: not recorded
    discounted_return: np.ndarray | None = None  # NaN: not recorded
    replay: ReplayTrace | None = None  # None: the store holds no replay_stats rows for it


@dataclass
class ReplayTrace:
    """A run's ``replay_stats`` rows in env-step order: its sampling law at episode ends."""

    env_steps: np.ndarray
    stored: np.ndarray
    volume: np.ndarray
    expected_age: np.ndarray  # E[age] of a replayed transition, env steps
    entropy: np.ndarray  # H(P) of the sampling law, nats


@dataclass
class StudyRuns:
    """The runs a report counts, and how many runs of each status the store holds."""

    runs: list[RunData]
    status_counts: dict[str, int]
    include_unfinished: bool
    #: Per variant, its runs in the store by status (what ``only`` keeps of status_counts).
    status_by_variant: dict[str, dict[str, int]] = field(default_factory=dict)
    chosen: bool = False  # whether ``only`` chose the variants (not every one in the store)
    envs: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.envs = list(dict.fromkeys(r.env_id for r in self.runs))

    def variants(self, env_id: str | None = None) -> list[str]:
        """Variants in the order of their first run."""
        return list(dict.fromkeys(r.variant for r in self.runs if env_id in (None, r.env_id)))

    def group(self, env_id: str, variant: str) -> list[RunData]:
        return [r for r in self.runs if r.env_id == env_id and r.variant == variant]

    def only(self, variants: Sequence[str]) -> StudyRuns:
        """These runs of ``variants`` alone (in the study's order); ConfigError naming the
        first variant the study lacks."""
        known = self.variants()
        for name in variants:
            if name not in known:
                raise ConfigError(
                    f"--variants: no variant '{name}'; choose from {', '.join(known)}"
                )
        runs = [r for r in self.runs if r.variant in variants]
        by_variant = {v: self.status_by_variant.get(v, {}) for v in variants}
        counts: dict[str, int] = {}
        for statuses in by_variant.values():
            for status, count in statuses.items():
                counts[status] = counts.get(status, 0) + count
        return StudyRuns(runs, counts, self.include_unfinished, by_variant, chosen=True)


def variant_label(raw: str) -> str:
    return raw if raw else SINGLE_RUN_VARIANT


def open_store(study_dir: Path) -> ResultsStore:
    """The store of a run or study folder; ConfigError when there is none (nothing created)."""
    path = Path(study_dir) / "results.sqlite"
    if not Path(study_dir).is_dir():
        raise ConfigError(f"{study_dir} is not a folder")
    if not path.is_file():
        raise ConfigError(f"{study_dir} holds no results.sqlite (not a run or study folder)")
    if not is_results_store(path):
        raise ConfigError(f"{path} is not a ddpglab results store")
    try:
        return ResultsStore(path)
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"{path} is not a ddpglab results store ({err})") from None


def load_study_runs(study_dir: Path, include_unfinished: bool = False) -> StudyRuns:
    """Counted runs (status 'done', or every run with episodes) with their episodes."""
    with open_store(study_dir) as store:
        runs = store.runs()
        frame = store.episodes_frame()
        replay = replay_traces(store)
    counts: dict[str, int] = {}
    by_variant: dict[str, dict[str, int]] = {}
    for row in runs:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        statuses = by_variant.setdefault(variant_label(row["variant"]), {})
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    by_run = {run_id: rows for run_id, rows in frame.groupby("run_id", sort=False)}
    kept = []
    for row in runs:
        rows = by_run.get(row["run_id"])
        if rows is None or (row["status"] != "done" and not include_unfinished):
            continue
        try:
            kind = json.loads(row["config_json"]).get("replay", {}).get("kind")
        except (json.JSONDecodeError, AttributeError):
            kind = None
        kept.append(
            RunData(
                run_id=int(row["run_id"]),
                env_id=row["env_id"],
                variant=variant_label(row["variant"]),
                seed=int(row["seed"]),
                status=row["status"],
                replay_kind=kind,
                episodes=rows["episode"].to_numpy(dtype=int),
                returns=rows["return"].to_numpy(dtype=float),
                thresholds=rows["threshold"].to_numpy(dtype=float, na_value=np.nan),
                env_steps=rows["env_steps"].to_numpy(dtype=float),
                lengths=rows["length"].to_numpy(dtype=float),
                **{
                    name: rows[name].to_numpy(dtype=float, na_value=np.nan)
                    for name in ("terminated", "q_start", "discounted_return")
                },
                replay=replay.get(int(row["run_id"])),
            )
        )
    return StudyRuns(kept, counts, include_unfinished, by_variant)


def replay_traces(store: ResultsStore) -> dict[int, ReplayTrace]:
    """Each run's replay_stats rows by run_id; none from a store written before the table
    (which a read-only store keeps lacking)."""
    import pandas as pd

    try:
        frame = store.replay_stats_frame()
    except (sqlite3.DatabaseError, pd.errors.DatabaseError):
        return {}
    columns = ("env_steps", "stored", "volume", "expected_age", "entropy")
    return {
        int(run_id): ReplayTrace(**{name: rows[name].to_numpy(dtype=float) for name in columns})
        for run_id, rows in frame.groupby("run_id", sort=False)
    }
