"""Synthetic results stores for the report and export tests: known returns, no training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ddpglab.store import EpisodeRow, ResultsStore


@dataclass
class SyntheticRun:
    env_id: str
    variant: str
    seed: int
    kind: str
    status: str
    returns: np.ndarray
    thresholds: np.ndarray | None  # None: the run records no threshold (non-stratified)


def make_store(folder: Path, runs: list[SyntheticRun]) -> Path:
    """A results.sqlite in ``folder`` holding ``runs`` in order; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with ResultsStore(folder / "results.sqlite") as store:
        for run in runs:
            run_id = store.add_run(
                run.env_id, run.seed, {"replay": {"kind": run.kind}}, run.variant
            )
            rows = []
            for i, ret in enumerate(run.returns):
                threshold = None if run.thresholds is None else run.thresholds[i]
                if threshold is not None and np.isnan(threshold):
                    threshold = None
                row = (run_id, i + 1, float(ret), 200, 200 * (i + 1), 0.1, 0.5, 1.0, threshold)
                rows.append(EpisodeRow(*row, 0, None, None))
            store.add_episodes(rows)
            if run.status != "running":
                store.finish_run(run_id, run.status, "boom" if run.status == "failed" else None)
    return folder


def episode_rows(returns: list[tuple[int, int, float]]) -> list[EpisodeRow]:
    """Full episode rows from (run_id, episode, return): 200-step episodes, nothing else known."""
    return [
        EpisodeRow(run_id, episode, ret, 200, 200 * episode, 0.1, None, None, None, 0, None, None)
        for run_id, episode, ret in returns
    ]


def learning_curve(seed: int, episodes: int, slope: float, start: float = -1400.0) -> np.ndarray:
    """Returns rising linearly by ``slope`` per episode, with seed-dependent noise."""
    noise = np.random.default_rng(seed).normal(0.0, 60.0, episodes)
    return start + slope * np.arange(episodes) + noise


def two_variant_study(folder: Path, episodes: int = 60) -> tuple[Path, list[SyntheticRun]]:
    """Pendulum: 'softmax-b1' (first, 3 done seeds), 'uniform-cap1e4' (4 done seeds),
    'stratified-thr0.5' (3 done seeds with thresholds) and one failed and one running run."""
    runs = []
    for seed in range(3):
        runs.append(
            SyntheticRun("Pendulum-v1", "softmax-b1", seed, "softmax", "done",
                         learning_curve(100 + seed, episodes, 20.0), None)
        )  # fmt: skip
    for seed in range(4):
        runs.append(
            SyntheticRun("Pendulum-v1", "uniform-cap1e4", seed, "uniform", "done",
                         learning_curve(200 + seed, episodes, 15.0), None)
        )  # fmt: skip
    for seed in range(3):
        # seed 2 learns slowly and never reaches -400
        slope = 5.0 if seed == 2 else 25.0
        returns = learning_curve(300 + seed, episodes, slope)
        thresholds = np.array([np.nan, *[returns[:i].mean() for i in range(1, episodes)]])
        runs.append(
            SyntheticRun("Pendulum-v1", "stratified-thr0.5", seed, "stratified", "done",
                         returns, thresholds)
        )  # fmt: skip
    runs.append(
        SyntheticRun("Pendulum-v1", "uniform-cap1e4", 4, "uniform", "failed",
                     learning_curve(999, 7, 0.0), None)
    )  # fmt: skip
    runs.append(
        SyntheticRun("Pendulum-v1", "softmax-b1", 3, "softmax", "running",
                     learning_curve(998, 9, 0.0), None)
    )  # fmt: skip
    return make_store(folder, runs), runs
