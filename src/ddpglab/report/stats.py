"""Statistics for comparing RL variants over seeds (Agarwal et al. 2021, "Deep RL at the
Edge of the Statistical Precipice", the method of the ``rliable`` package).

A *score* is one number per run (seed), e.g. its mean return over the last 50 episodes.
Runs of one environment (task) form a *stratum*. Confidence intervals are percentile
bootstrap intervals; the stratified bootstrap resamples runs with replacement within each
task independently, so every replicate keeps each task's number of runs.

``rliable`` itself is not a dependency: it pulls arch, statsmodels, seaborn and scipy for
what amounts to the few functions below, each checked against hand computations in
``tests/test_report_stats.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Aggregate: a list of per-task score arrays -> one number (vectorised over a leading
#: replicate axis: each array may be (n_runs,) or (n_boot, n_runs)).
Aggregate = Callable[[Sequence[np.ndarray]], np.ndarray]


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` entries, partial at the start.

    m_t = 1 / (t - s + 1) * sum_{i=s}^{t} x_i,  s = max(0, t - window + 1)   (0-based t)

    Works along the last axis, so a (n_seeds, n_episodes) matrix is smoothed per seed.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[-1]
    csum = np.cumsum(values, axis=-1)
    shifted = np.zeros_like(csum)
    if n > window:
        shifted[..., window:] = csum[..., :-window]
    counts = np.minimum(np.arange(1, n + 1), window)
    return (csum - shifted) / counts


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean along the last axis: the mean of the middle half after sorting.

    With n sorted scores x_(1) <= ... <= x_(n) and k = floor(n / 4),
    IQM = 1 / (n - 2k) * sum_{i=k+1}^{n-k} x_(i)
    (the 25% trimmed mean as ``scipy.stats.trim_mean(x, 0.25)`` and rliable compute it).
    """
    scores = np.sort(np.asarray(scores, dtype=float), axis=-1)
    n = scores.shape[-1]
    k = n // 4
    return scores[..., k : n - k].mean(axis=-1)


def aggregate_mean(tasks: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over tasks of the mean over runs: 1/M sum_m 1/N_m sum_n x_{m,n}."""
    return np.mean([np.mean(t, axis=-1) for t in tasks], axis=0)


def aggregate_iqm(tasks: Sequence[np.ndarray]) -> np.ndarray:
    """IQM of all runs of all tasks pooled (rliable's aggregate IQM)."""
    return iqm(np.concatenate([np.asarray(t, dtype=float) for t in tasks], axis=-1))


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval: the (1-level)/2 and (1+level)/2 quantiles of the
    replicates (linear interpolation between order statistics)."""
    lo, hi = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def resample(scores: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """n_boot bootstrap samples of the runs: x*_{b,i} = x_{J_{b,i}}, J uniform on {1..n},
    drawn with replacement; shape (n_boot, n)."""
    scores = np.asarray(scores, dtype=float)
    return scores[rng.integers(0, scores.size, size=(n_boot, scores.size))]


def stratified_bootstrap(
    tasks: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Resample runs with replacement within each task independently: one (n_boot, N_m)
    array per task m, so each replicate keeps every task's run count."""
    return [resample(t, n_boot, rng) for t in tasks]


def bootstrap_ci(
    tasks: Sequence[np.ndarray],
    aggregate: Aggregate,
    n_boot: int,
    rng: np.random.Generator,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Point estimate and stratified percentile bootstrap CI of ``aggregate(tasks)``:
    (A(x), q_{(1-level)/2}(A(x*)), q_{(1+level)/2}(A(x*)))."""
    point = float(aggregate([np.asarray(t, dtype=float) for t in tasks]))
    lo, hi = percentile_interval(aggregate(stratified_bootstrap(tasks, n_boot, rng)), level)
    return point, lo, hi


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) estimated by the Mann-Whitney U statistic, ties counting one half:

    P = 1 / (n m) sum_{i=1}^{n} sum_{j=1}^{m} S(x_i, y_j),  S = 1 if x_i > y_j,
    1/2 if x_i = y_j, 0 otherwise.

    Vectorised over a leading replicate axis: x (..., n), y (..., m) -> (...).
    """
    x = np.asarray(x, dtype=float)[..., :, None]
    y = np.asarray(y, dtype=float)[..., None, :]
    wins = (x > y).astype(float) + 0.5 * (x == y)
    return wins.mean(axis=(-2, -1))


def probability_of_improvement_ci(
    x_tasks: Sequence[np.ndarray],
    y_tasks: Sequence[np.ndarray],
    n_boot: int,
    rng: np.random.Generator,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Average over tasks of P(X_m > Y_m), with a percentile CI from resampling the runs of
    X and of Y independently within each task (as rliable does)."""

    def average(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> np.ndarray:
        return np.mean(
            [probability_of_improvement(a, b) for a, b in zip(xs, ys, strict=True)], axis=0
        )

    point = float(average(x_tasks, y_tasks))
    replicates = average(
        stratified_bootstrap(x_tasks, n_boot, rng), stratified_bootstrap(y_tasks, n_boot, rng)
    )
    lo, hi = percentile_interval(replicates, level)
    return point, lo, hi


def mean_band(
    curves: np.ndarray, n_boot: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds of (n_seeds, n_points) curves and a pointwise percentile bootstrap
    band over seeds: seeds resampled with replacement, the same draw for every point.

    A replicate mean is c_b / n @ curves with c_b ~ Multinomial(n, 1/n), which equals the
    mean of n seeds drawn with replacement without materialising (n_boot, n, n_points).
    """
    curves = np.asarray(curves, dtype=float)
    n = curves.shape[0]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
    replicates = counts @ curves / n
    lo, hi = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return curves.mean(axis=0), lo, hi


def first_crossing(curve: np.ndarray, threshold: float) -> int | None:
    """Index of the first entry strictly above ``threshold`` (min {t : m_t > threshold}),
    or None when the curve never exceeds it."""
    above = np.flatnonzero(np.asarray(curve) > threshold)
    return int(above[0]) if above.size else None


def median_crossing(crossings: Sequence[int | None]) -> float:
    """Median over seeds of the first-crossing episode, a seed that never crossed counting
    as +infinity (a right-censored time): finite exactly when more than half the seeds
    crossed (for an even count, when the middle pair both crossed)."""
    times = np.array([np.inf if c is None else float(c) for c in crossings])
    times.sort()
    n = times.size
    if n % 2:
        return float(times[n // 2])
    low, high = times[n // 2 - 1], times[n // 2]
    return float(np.inf) if np.isinf(high) else float((low + high) / 2)
