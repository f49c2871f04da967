"""The LAP-PAL equivalence (Fujimoto, Meger & Precup 2020) as ``ddpglab theory check``
computes it: exact for PAL normalised over the buffer, close for PAL normalised per batch."""

from __future__ import annotations

import numpy as np
import pytest

from ddpglab.theory import checks
from ddpglab.theory import lap_pal as lp


@pytest.mark.parametrize(("alpha", "m"), checks.LAP_PAL_PROBLEMS)
def test_the_buffer_holds_errors_below_at_and_beyond_min_priority(alpha, m):
    sizes = np.abs(lp.td_error_buffer(m))
    assert (sizes < m).sum() >= 10 and (sizes > m).sum() >= 10 and (sizes == m).any()
    assert (lp.td_error_buffer(m) < 0).any() and (lp.td_error_buffer(m) > 0).any()


@pytest.mark.parametrize(("alpha", "m"), checks.LAP_PAL_PROBLEMS)
def test_huber_under_lap_is_minus_p_times_huber_derivative_by_hand(alpha, m):
    delta = lp.td_error_buffer(m)
    p = lp.lap_priorities(delta, alpha, m)
    huber_derivative = np.where(np.abs(delta) < m, delta, m * np.sign(delta))
    want = -p / p.sum() * huber_derivative  # d/dQ H(y - Q) = -H'(delta)
    np.testing.assert_allclose(lp.huber_under_lap_gradient(delta, alpha, m), want, rtol=1e-13)


@pytest.mark.parametrize(("alpha", "m"), checks.LAP_PAL_PROBLEMS)
def test_pal_under_uniform_sampling_has_the_gradient_of_huber_under_lap(alpha, m):
    delta = lp.td_error_buffer(m)
    lap = lp.huber_under_lap_gradient(delta, alpha, m)
    pal = lp.pal_uniform_gradient(delta, alpha, m)
    assert np.abs(pal - lap).max() < 1e-12 * np.abs(lap).max()


def test_the_equivalence_has_power_huber_under_uniform_sampling_differs():
    alpha, m = checks.LAP_PAL_PROBLEMS[0]
    delta = lp.td_error_buffer(m)
    uniform = lp.huber_under_lap_gradient(delta, 0.0, m)  # alpha = 0: uniform sampling
    lap = lp.huber_under_lap_gradient(delta, alpha, m)
    assert np.abs(uniform - lap).max() > 0.1 * np.abs(lap).max()


def test_the_batch_normalised_pal_gets_closer_as_the_batch_grows():
    rows = {row.metric: row for row in checks.run_checks(checks.CHECKS[-3:])}
    exact = rows["lap-pal: E grad Huber, LAP = E grad PAL, uniform"]
    b64 = rows["lap-pal: same, PAL normalised per batch, B = 64"]
    b256 = rows["lap-pal: same, PAL normalised per batch, B = 256"]
    assert all(r.passed for r in rows.values())
    assert exact.rel_error < 1e-12 < b256.rel_error < b64.rel_error
    # the bias of a ratio estimator falls as 1/B: about 4x from 64 to 256
    assert 2.5 < b64.rel_error / b256.rel_error < 6.5


def test_the_batch_estimate_is_exact_in_the_limit_of_one_priority():
    # every |delta| below m: every priority is m^alpha, so the batch mean is exact
    delta = np.array([0.1, -0.4, 0.7, -0.9])
    exact = lp.pal_uniform_gradient(delta, 0.4, 1.0)
    np.testing.assert_allclose(
        lp.batch_pal_expected_gradient(delta, 0.4, 1.0, 8, draws=100), exact, rtol=1e-14
    )
