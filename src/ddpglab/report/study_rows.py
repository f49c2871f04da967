"""The rows of a study report: per (env, variant) the seeds' scores with bootstrap CIs (mean
and IQM), the first episode the rolling mean crosses the solve threshold, and the
probability of improving on the baseline variant.

The bootstrap draws from fixed seeds (one stream per environment, variant and statistic),
so the same store gives byte-identical rows.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddpglab.report import stats
from ddpglab.report.study_data import RunData, StudyRuns

#: The score of a run: the mean return of its last ``LAST`` episodes (all of them when it
#: has fewer). ``ddpglab report`` and train's closing table both score runs so.
LAST = 50
BOOT_SEED = 20210527  # fixed: a report must not change between regenerations
#: Return that counts as "solved enough" per env; gymnasium's reward_threshold otherwise.
SOLVE_THRESHOLDS = {"Pendulum-v1": -400.0, "BipedalWalker-v3": 300.0}


def solve_threshold_for(env_id: str, override: float | None) -> float | None:
    """``override``, else the known threshold of the env, else gymnasium's reward_threshold.

    An id written ``module:EnvId`` (which makes gymnasium import the module) is looked up
    as ``EnvId``, after importing the module as ``gym.make`` would."""
    if override is not None:
        return override
    import gymnasium as gym

    module, _, name = env_id.rpartition(":")
    if name in SOLVE_THRESHOLDS:
        return SOLVE_THRESHOLDS[name]
    try:
        if module:
            importlib.import_module(module)
        value = gym.spec(name).reward_threshold
    except (ImportError, gym.error.Error):  # a module or an id this machine does not know
        return None
    return None if value is None else float(value)


def default_baseline(study: StudyRuns) -> str:
    """The first variant whose runs use uniform replay, else the first variant."""
    for variant in study.variants():
        if any(r.replay_kind == "uniform" for r in study.runs if r.variant == variant):
            return variant
    return study.variants()[0]


def rng_for(*names: str) -> np.random.Generator:
    """An RNG that depends only on the names (not on which other rows a report has)."""
    keys = [BOOT_SEED, *(zlib.crc32(n.encode()) for n in names)]
    return np.random.default_rng(np.random.SeedSequence(keys))


def run_score(run: RunData, last: int) -> float:
    """Mean return of the run's last ``last`` episodes (all of them if it has fewer)."""
    return mean_of_last(run.returns, last)


def mean_of_last(returns: Sequence[float] | np.ndarray, last: int = LAST) -> float:
    """The mean of the last ``last`` of ``returns`` (all of them if there are fewer)."""
    return float(np.mean(np.asarray(returns, dtype=float)[-last:]))


@dataclass
class Row:
    """One (env, variant) line of the table."""

    env_id: str
    variant: str
    replay_kind: str
    n_seeds: int
    scores: np.ndarray
    mean: tuple[float, float, float]
    iqm: tuple[float, float, float]
    threshold: float | None
    median_crossing: float | None  # inf when more than half never crossed
    not_reached: int
    baseline: str | None
    p_improve: tuple[float, float, float] | None


def first_crossings(runs: list[RunData], threshold: float, window: int) -> list[int | None]:
    """Per run, the episode at which the mean return of its last ``window`` episodes first
    exceeds ``threshold``; only full windows count, so one lucky early episode does not."""
    crossings: list[int | None] = []
    for run in runs:
        full_windows = stats.rolling_mean(run.returns, window)[window - 1 :]
        index = stats.first_crossing(full_windows, threshold)
        crossings.append(None if index is None else int(run.episodes[index + window - 1]))
    return crossings


def _with_ci(point_lo_hi: tuple[float, float, float], n: int) -> tuple[float, float, float]:
    """One seed has no spread to resample: its CI is undefined (NaN), not zero-width."""
    return point_lo_hi if n >= 2 else (point_lo_hi[0], float("nan"), float("nan"))


def make_row(
    study: StudyRuns,
    env_id: str,
    variant: str,
    baseline: str,
    threshold: float | None,
    last: int,
    window: int,
    n_boot: int,
) -> Row:
    runs = study.group(env_id, variant)
    scores = np.array([run_score(r, last) for r in runs])
    base_scores = np.array([run_score(r, last) for r in study.group(env_id, baseline)])
    # One task per row: raw returns of different envs are not on one scale, so the
    # stratified bootstrap has a single stratum here (resampling the seeds of this env).
    mean = stats.bootstrap_ci(
        [scores], stats.aggregate_mean, n_boot, rng_for(env_id, variant, "mean")
    )
    iqm = stats.bootstrap_ci([scores], stats.aggregate_iqm, n_boot, rng_for(env_id, variant, "iqm"))
    p = None
    if variant != baseline and base_scores.size:
        p = stats.probability_of_improvement_ci(
            [scores], [base_scores], n_boot, rng_for(env_id, variant, "p", baseline)
        )
        p = _with_ci(p, min(scores.size, base_scores.size))
    crossings = first_crossings(runs, threshold, window) if threshold is not None else []
    return Row(
        env_id=env_id,
        variant=variant,
        replay_kind="/".join(sorted({r.replay_kind or "?" for r in runs})),
        n_seeds=len(runs),
        scores=scores,
        mean=_with_ci(mean, scores.size),
        iqm=_with_ci(iqm, scores.size),
        threshold=threshold,
        median_crossing=stats.median_crossing(crossings) if crossings else None,
        not_reached=sum(c is None for c in crossings),
        baseline=baseline if base_scores.size else None,
        p_improve=p,
    )


def table_rows(
    study: StudyRuns, baseline: str, threshold: float | None, last: int, window: int, n_boot: int
) -> list[Row]:
    """One row per (env, variant), envs and variants in the order of their first run."""
    return [
        make_row(
            study,
            env_id,
            variant,
            baseline,
            solve_threshold_for(env_id, threshold),
            last,
            window,
            n_boot,
        )  # fmt: skip
        for env_id in study.envs
        for variant in study.variants(env_id)
    ]
