"""The report's statistics against hand computations and known distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddpglab.report import stats


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- rolling mean ---------------------------------------------------------------------------


def test_rolling_mean_by_hand():
    assert stats.rolling_mean(np.array([1.0, 2, 3, 4]), 2) == pytest.approx([1, 1.5, 2.5, 3.5])
    assert stats.rolling_mean(np.array([4.0, 2]), 10) == pytest.approx([4, 3])


def test_rolling_mean_matches_pandas_per_row():
    x = rng().normal(size=(3, 40))
    expected = pd.DataFrame(x.T).rolling(10, min_periods=1).mean().to_numpy().T
    assert np.allclose(stats.rolling_mean(x, 10), expected)


# -- IQM ------------------------------------------------------------------------------------


def test_iqm_by_hand():
    # n = 8: k = 2 dropped at each end, mean of 3, 4, 5, 6.
    assert stats.iqm(np.array([100.0, 1, 2, 3, 4, 5, 6, 7])) == pytest.approx(4.5)
    # n = 5: k = 1, mean of the middle three of 1, 2, 3, 10, 50.
    assert stats.iqm(np.array([10.0, 1, 3, 2, 50])) == pytest.approx(5.0)
    # n < 4 trims nothing (scipy.stats.trim_mean's convention, as rliable uses it).
    assert stats.iqm(np.array([1.0, 2, 9])) == pytest.approx(4.0)


def test_iqm_works_row_by_row():
    rows = np.array([[100.0, 1, 2, 3, 4, 5, 6, 7], [1.0, 1, 1, 1, 9, 9, 9, 9]])
    assert stats.iqm(rows) == pytest.approx([4.5, 5.0])


def test_aggregates_pool_tasks_as_rliable_does():
    tasks = [np.array([0.0, 2.0]), np.array([10.0, 20.0, 30.0, 40.0])]
    assert stats.aggregate_mean(tasks) == pytest.approx((1.0 + 25.0) / 2)
    # pooled: 0, 2, 10, 20, 30, 40 -> k = 1 -> mean(2, 10, 20, 30)
    assert stats.aggregate_iqm(tasks) == pytest.approx(15.5)


# -- bootstrap ------------------------------------------------------------------------------


def test_percentile_interval_by_hand():
    assert stats.percentile_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))
    assert stats.percentile_interval(np.arange(101.0), level=0.5) == pytest.approx((25, 75))


def test_constant_scores_give_a_zero_width_interval():
    for aggregate in (stats.aggregate_mean, stats.aggregate_iqm):
        point, lo, hi = stats.bootstrap_ci([np.full(7, -321.5)], aggregate, 500, rng())
        assert point == lo == hi == pytest.approx(-321.5)


def test_two_point_bootstrap_distribution_by_hand():
    # Means of 2 draws from {0, 1}: 0 w.p. 1/4, 1/2 w.p. 1/2, 1 w.p. 1/4.
    replicates = stats.resample(np.array([0.0, 1.0]), 40_000, rng()).mean(axis=1)
    values, counts = np.unique(replicates, return_counts=True)
    assert values.tolist() == [0.0, 0.5, 1.0]
    assert counts / counts.sum() == pytest.approx([0.25, 0.5, 0.25], abs=0.01)
    # Both ends carry 25% > 2.5%, so the 95% interval is the full range.
    point, lo, hi = stats.bootstrap_ci([np.array([0.0, 1.0])], stats.aggregate_mean, 4000, rng())
    assert (point, lo, hi) == (0.5, 0.0, 1.0)


def test_bootstrap_mean_has_the_plug_in_variance():
    # Var*(mean of n resampled) = sigma_hat^2 / n with sigma_hat^2 = 1/n sum (x - xbar)^2.
    x = np.array([3.0, -1.0, 4.0, 1.5, 9.0])
    means = stats.resample(x, 200_000, rng()).mean(axis=1)
    assert means.mean() == pytest.approx(x.mean(), abs=0.02)
    assert means.var() == pytest.approx(x.var() / x.size, rel=0.02)


def test_stratified_bootstrap_resamples_within_each_task():
    low, high = np.array([0.0, 1.0, 2.0]), np.array([100.0, 101.0, 102.0, 103.0, 104.0])
    a, b = stats.stratified_bootstrap([low, high], 1000, rng())
    assert a.shape == (1000, 3) and b.shape == (1000, 5)
    assert np.isin(a, low).all() and np.isin(b, high).all()
    # So the pooled IQM of a replicate always keeps 3 low and 5 high scores:
    # sorted, k = 2 drops 2 low and 2 high, the middle 4 are 1 low and 3 high.
    pooled = stats.aggregate_iqm([a, b])
    assert pooled.min() >= (0 + 3 * 100) / 4 and pooled.max() <= (2 + 3 * 104) / 4


def test_percentile_interval_covers_the_mean_about_95_percent():
    generator = rng(1)
    trials, covered = 2000, 0
    for _ in range(trials):
        sample = generator.normal(10.0, 3.0, size=30)
        _, lo, hi = stats.bootstrap_ci([sample], stats.aggregate_mean, 500, generator)
        covered += lo <= 10.0 <= hi
    # Percentile intervals of the mean run a little narrow: about xbar -+ z s_n / sqrt(n)
    # with the plug-in s_n (divisor n), so at n = 30 a level-L interval covers
    # P(|t_29| < z_L sqrt(29 / 30)): 0.936 at L = 0.95 (0.883 at 0.90, 0.983 at 0.99).
    # Accept 4 binomial standard errors (0.022) around 0.936: a 90% or 99% interval,
    # each about 9 standard errors away, fails.
    expected = 0.936
    tolerance = 4 * np.sqrt(expected * (1 - expected) / trials)
    assert covered / trials == pytest.approx(expected, abs=tolerance)


def test_mean_band_matches_explicit_resampling():
    curves = rng(2).normal(size=(6, 12))
    mean, lo, hi = stats.mean_band(curves, 50_000, rng(3))
    explicit = curves[rng(4).integers(0, 6, size=(50_000, 6))].mean(axis=1)
    assert mean == pytest.approx(curves.mean(axis=0))
    assert lo == pytest.approx(np.quantile(explicit, 0.025, axis=0), abs=0.03)
    assert hi == pytest.approx(np.quantile(explicit, 0.975, axis=0), abs=0.03)


def test_mean_band_of_identical_seeds_has_no_width():
    curves = np.tile(np.linspace(-1000, -200, 9), (4, 1))
    mean, lo, hi = stats.mean_band(curves, 200, rng())
    assert np.allclose(mean, lo) and np.allclose(mean, hi)


# -- probability of improvement ---------------------------------------------------------------


def test_probability_of_improvement_by_hand():
    # 1 vs 2, 2: 0 + 0; 2 vs 2, 2: 1/2 + 1/2; 3 vs 2, 2: 1 + 1 -> 3 / 6
    assert stats.probability_of_improvement([1, 2, 3], [2, 2]) == pytest.approx(0.5)
    # 3 vs 1, 2, 3: 1 + 1 + 1/2; 4 vs 1, 2, 3: 3 -> 5.5 / 6
    assert stats.probability_of_improvement([3, 4], [1, 2, 3]) == pytest.approx(5.5 / 6)
    x, y = rng().normal(size=7), rng(1).normal(size=5)
    total = stats.probability_of_improvement(x, y) + stats.probability_of_improvement(y, x)
    assert total == pytest.approx(1.0)


def test_probability_of_improvement_is_vectorised_over_replicates():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    y = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 1.0]])
    assert stats.probability_of_improvement(x, y) == pytest.approx([5.5 / 6, 1 / 6])


def test_probability_of_improvement_interval():
    point, lo, hi = stats.probability_of_improvement_ci(
        [np.array([5.0, 6.0, 7.0])], [np.array([1.0, 2.0])], 500, rng()
    )
    assert point == lo == hi == 1.0
    x, y = rng(5).normal(0.5, 1, size=10), rng(6).normal(0, 1, size=10)
    point, lo, hi = stats.probability_of_improvement_ci([x], [y], 2000, rng())
    assert 0 <= lo < point < hi <= 1


# -- first crossing ---------------------------------------------------------------------------


def test_first_crossing_is_strict():
    assert stats.first_crossing(np.array([-5.0, -3.0, -1.0, 2.0]), -2.0) == 2
    assert stats.first_crossing(np.array([-5.0, -2.0, -1.0]), -2.0) == 2
    assert stats.first_crossing(np.array([-5.0, -3.0]), -2.0) is None


@pytest.mark.parametrize(
    ("crossings", "median"),
    [
        ([3, None, 5], 5.0),
        ([3, None, None], np.inf),
        ([2, 4, None, 6], 5.0),
        ([2, 4, None, None], np.inf),
        ([1, 2], 1.5),
        ([None], np.inf),
    ],
)
def test_median_crossing_counts_never_as_latest(crossings, median):
    assert stats.median_crossing(crossings) == median
