"""Exploration noise: Ornstein-Uhlenbeck dynamics and statistics, Gaussian scale."""

from __future__ import annotations

import numpy as np
import pytest

from ddpglab.config import NoiseConfig
from ddpglab.noise import GaussianNoise, NoNoise, OrnsteinUhlenbeckNoise, make_noise


def test_ou_starts_at_mu():
    noise = OrnsteinUhlenbeckNoise(act_dim=2, seeds=[0, 1], scale=1.0, sigma=0.0, mu=0.7)
    # With no diffusion a process sitting at mu stays there.
    np.testing.assert_allclose(noise(), np.full((2, 2), 0.7), rtol=1e-6)


@pytest.mark.parametrize("theta", [0.15, 0.5, 1.0])
def test_ou_reverts_to_mu_geometrically(theta):
    """Without diffusion, x_t - mu = (1 - theta)^t (x_0 - mu)."""
    mu = 0.5
    noise = OrnsteinUhlenbeckNoise(
        act_dim=3, seeds=[0, 1], scale=1.0, theta=theta, sigma=0.0, mu=mu
    )
    x0 = np.array([[2.0, -1.0, 0.5], [-3.0, 10.0, 1.5]])
    noise.state[:] = x0
    for t in range(1, 30):
        expected = mu + (1.0 - theta) ** t * (x0 - mu)
        np.testing.assert_allclose(noise(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("theta", "sigma"), [(0.15, 0.2), (0.5, 0.3)])
def test_ou_stationary_variance_is_sigma2_over_2theta_minus_theta2(theta, sigma):
    """Var x = sigma^2 / (2 theta - theta^2) for the discrete process (dt = 1).

    The continuous-time formula sigma^2 / (2 theta) is 8% (theta 0.15) or 33% (theta 0.5)
    smaller; the tolerance below (3%) tells the two apart.
    """
    noise = OrnsteinUhlenbeckNoise(act_dim=1000, seeds=[0, 1], scale=1.0, theta=theta, sigma=sigma)
    burn_in = int(np.ceil(np.log(1e-6) / np.log(1.0 - theta)))
    for _ in range(burn_in):
        noise()
    samples = np.stack([noise() for _ in range(300)]).astype(np.float64)
    expected = sigma**2 / (2 * theta - theta**2)
    assert samples.mean() == pytest.approx(0.0, abs=0.05 * np.sqrt(expected))
    assert samples.var() == pytest.approx(expected, rel=0.03)


def test_ou_one_step_autocorrelation_is_one_minus_theta():
    theta = 0.3
    noise = OrnsteinUhlenbeckNoise(act_dim=2000, seeds=[4], scale=1.0, theta=theta, sigma=1.0)
    for _ in range(60):
        noise()
    x = np.stack([noise() for _ in range(200)])[:, 0, :].astype(np.float64)
    corr = np.mean(x[1:] * x[:-1]) / np.mean(x * x)
    assert corr == pytest.approx(1.0 - theta, abs=0.02)


def test_ou_reset_puts_only_the_given_members_back_at_mu():
    noise = OrnsteinUhlenbeckNoise(act_dim=2, seeds=[0, 1, 2], theta=0.15, sigma=0.2, mu=0.3)
    for _ in range(20):
        noise()
    before = noise.state.copy()
    assert not np.any(before == 0.3)
    noise.reset(np.array([1]))
    np.testing.assert_array_equal(noise.state[1], [0.3, 0.3])
    np.testing.assert_array_equal(noise.state[[0, 2]], before[[0, 2]])
    noise.reset()
    np.testing.assert_array_equal(noise.state, np.full((3, 2), 0.3))


def test_ou_scale_multiplies_the_output_not_the_process():
    plain = OrnsteinUhlenbeckNoise(act_dim=2, seeds=[0, 1], scale=1.0)
    scaled = OrnsteinUhlenbeckNoise(act_dim=2, seeds=[0, 1], scale=0.1)
    for _ in range(50):
        a, b = plain(), scaled()
        np.testing.assert_allclose(b, 0.1 * a, rtol=1e-5)
    # The process itself is the same: scale does not feed back into the dynamics.
    np.testing.assert_allclose(scaled.state, plain.state)


def test_noise_has_shape_members_by_action_dim_and_float32():
    for noise in (OrnsteinUhlenbeckNoise(3, [0, 1]), GaussianNoise(3, [0, 1]), NoNoise(3, [0, 1])):
        out = noise()
        assert out.shape == (2, 3)
        assert out.dtype == np.float32


def test_each_members_noise_depends_on_its_own_seed_only():
    for cls in (OrnsteinUhlenbeckNoise, GaussianNoise):
        alone, together = cls(2, [3]), cls(2, [1, 2, 3])
        for _ in range(10):
            a, t = alone(), together()
            np.testing.assert_array_equal(a[0], t[2])
            assert not np.array_equal(t[0], t[1])


@pytest.mark.parametrize("scale", [0.05, 0.3])
def test_gaussian_noise_standard_deviation_equals_scale(scale):
    noise = GaussianNoise(act_dim=500, seeds=[0, 1], scale=scale)
    samples = np.stack([noise() for _ in range(100)]).astype(np.float64)
    assert samples.mean() == pytest.approx(0.0, abs=0.02 * scale)
    assert samples.std() == pytest.approx(scale, rel=0.02)
    # Uncorrelated in time.
    corr = np.mean(samples[1:] * samples[:-1]) / np.mean(samples**2)
    assert abs(corr) < 0.02


def test_make_noise_follows_the_config():
    cfg = NoiseConfig(kind="ou", scale=0.4, theta=0.3, sigma=0.5, mu=0.1)
    ou = make_noise(cfg, 2, [0])
    assert isinstance(ou, OrnsteinUhlenbeckNoise)
    assert (ou.scale, ou.theta, ou.sigma, ou.mu) == (0.4, 0.3, 0.5, 0.1)
    gauss = make_noise(NoiseConfig(kind="gaussian", scale=0.2), 2, [0])
    assert isinstance(gauss, GaussianNoise)
    assert gauss.scale == 0.2
    none = make_noise(NoiseConfig(kind="none"), 2, [0, 1])
    np.testing.assert_array_equal(none(), np.zeros((2, 2)))
