"""The rows of a study report: per (env, variant) each score's values over seeds (the
scores of :mod:`ddpglab.report.scores`) with bootstrap CIs (mean and IQM) and the
probability of improving on the baseline variant, and the first episode the rolling mean
crosses the solve threshold.

The bootstrap draws from fixed seeds (one stream per environment, variant, score and
statistic), so the same store gives byte-identical rows.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ddpglab.report import stats
from ddpglab.report.scores import LAST as LAST  # re-exported: the report's default --last
from ddpglab.report.scores import full_window_means, oriented, run_score
from ddpglab.report.study_data import RunData, StudyRuns

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


@dataclass
class ScoreSummary:
    """One score of one (env, variant): its value per seed and their statistics."""

    values: np.ndarray  # per seed; NaN where the score is undefined (a drop, never crossed)
    mean: tuple[float, float, float]  # (point, CI low, CI high); NaN where undefined
    iqm: tuple[float, float, float]
    p_improve: tuple[float, float, float] | None  # None: the baseline, or nothing to compare

    @property
    def n_scored(self) -> int:
        """Seeds whose score is defined: the ones the statistics count."""
        return int(np.count_nonzero(~np.isnan(self.values)))


@dataclass
class Row:
    """One (env, variant) line of the table: every score's summary, and the crossing."""

    env_id: str
    variant: str
    replay_kind: str
    n_seeds: int
    threshold: float | None
    median_crossing: float | None  # inf when more than half never crossed
    not_reached: int
    baseline: str | None
    summaries: dict[str, ScoreSummary]

    # The final score, which the figures plot and the first table shows.
    @property
    def scores(self) -> np.ndarray:
        return self.summaries["final"].values

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.summaries["final"].mean

    @property
    def iqm(self) -> tuple[float, float, float]:
        return self.summaries["final"].iqm

    @property
    def p_improve(self) -> tuple[float, float, float] | None:
        return self.summaries["final"].p_improve


def first_crossings(runs: list[RunData], threshold: float, window: int) -> list[int | None]:
    """Per run, the episode at which the mean return of its last ``window`` episodes first
    exceeds ``threshold``; only full windows count, so one lucky early episode does not."""
    crossings: list[int | None] = []
    for run in runs:
        full_windows = full_window_means(run.returns, window)
        index = stats.first_crossing(full_windows, threshold)
        crossings.append(None if index is None else int(run.episodes[index + window - 1]))
    return crossings


def _with_ci(point_lo_hi: tuple[float, float, float], n: int) -> tuple[float, float, float]:
    """One seed has no spread to resample: its CI is undefined (NaN), not zero-width."""
    return point_lo_hi if n >= 2 else (point_lo_hi[0], float("nan"), float("nan"))


_UNDEFINED = (float("nan"), float("nan"), float("nan"))


def summarise(
    name: str,
    values: np.ndarray,
    base_values: np.ndarray | None,
    rng_of: Callable[[str], np.random.Generator],
    n_boot: int,
) -> ScoreSummary:
    """Mean and IQM of score ``name`` over the seeds where it is defined, with bootstrap
    CIs, and P(improvement) over the baseline's defined ``base_values`` (None: nothing to
    compare) on the oriented scores, so that for every score it is the probability of
    doing better. ``rng_of('mean' | 'iqm' | 'p')``: the RNG of each statistic."""
    defined = values[~np.isnan(values)]
    mean = iqm = _UNDEFINED
    if defined.size:
        # One task per row: raw returns of different envs are not on one scale, so the
        # stratified bootstrap has a single stratum here (resampling the seeds of this env).
        mean = stats.bootstrap_ci([defined], stats.aggregate_mean, n_boot, rng_of("mean"))
        iqm = stats.bootstrap_ci([defined], stats.aggregate_iqm, n_boot, rng_of("iqm"))
    p = None
    base = None if base_values is None else base_values[~np.isnan(base_values)]
    if base is not None and defined.size and base.size:
        p = stats.probability_of_improvement_ci(
            [oriented(name, defined)], [oriented(name, base)], n_boot, rng_of("p")
        )
        p = _with_ci(p, min(defined.size, base.size))
    return ScoreSummary(values, _with_ci(mean, defined.size), _with_ci(iqm, defined.size), p)


def make_row(
    study: StudyRuns,
    env_id: str,
    variant: str,
    baseline: str,
    threshold: float | None,
    last: int,
    window: int,
    n_boot: int,
    score_names: Sequence[str] = ("final",),
) -> Row:
    """The row of (env, variant): each score of ``score_names``, and the final score (which
    the figures draw), summarised against the seeds of ``baseline`` in the same env."""
    runs = study.group(env_id, variant)
    base_runs = study.group(env_id, baseline)

    def values(name: str, group: list[RunData]) -> np.ndarray:
        kwargs = {"last": last, "window": window, "threshold": threshold}
        return np.array([run_score(name, r, **kwargs) for r in group], dtype=float)

    compare = variant != baseline and bool(base_runs)
    summaries = {}
    for name in dict.fromkeys(["final", *score_names]):

        def rng_of(stat: str, name: str = name) -> np.random.Generator:
            # The final score's streams keep the names they had before the other scores
            # existed, so the reports of old stores regenerate byte-identically.
            return rng_for(
                env_id, variant, stat,
                *((baseline,) if stat == "p" else ()),
                *(() if name == "final" else (name,)),
            )  # fmt: skip

        summaries[name] = summarise(
            name, values(name, runs), values(name, base_runs) if compare else None, rng_of, n_boot
        )
    crossings = first_crossings(runs, threshold, window) if threshold is not None else []
    return Row(
        env_id=env_id,
        variant=variant,
        replay_kind="/".join(sorted({r.replay_kind or "?" for r in runs})),
        n_seeds=len(runs),
        threshold=threshold,
        median_crossing=stats.median_crossing(crossings) if crossings else None,
        not_reached=sum(c is None for c in crossings),
        baseline=baseline if base_runs else None,
        summaries=summaries,
    )


def table_rows(
    study: StudyRuns,
    baseline: str,
    threshold: float | None,
    last: int,
    window: int,
    n_boot: int,
    score_names: Sequence[str] = ("final",),
) -> list[Row]:
    """One row per (env, variant), envs and variants in the order of their first run, each
    with the scores ``score_names`` (and the final score) summarised."""
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
            score_names,
        )  # fmt: skip
        for env_id in study.envs
        for variant in study.variants(env_id)
    ]
