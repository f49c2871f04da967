"""Environments: checks on make, action rescaling, member envs stepped in lockstep."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddpglab.config import ConfigError
from ddpglab.envs import MemberEnvs, make_env, rescale_action

LOW = np.array([-1.0, 0.0], dtype=np.float32)
HIGH = np.array([3.0, 10.0], dtype=np.float32)


# -- rescaling [-1, 1] onto asymmetric Box bounds -------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [([-1.0, -1.0], [-1.0, 0.0]), ([1.0, 1.0], [3.0, 10.0]), ([0.0, 0.0], [1.0, 5.0])],
)
def test_rescale_maps_the_cube_corners_and_centre_onto_the_box(action, expected):
    got = rescale_action(np.array(action, dtype=np.float32), LOW, HIGH)
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float32))


def test_rescale_is_affine_per_dimension():
    got = rescale_action(np.array([0.5, -0.5], dtype=np.float32), LOW, HIGH)
    np.testing.assert_allclose(got, [2.0, 2.5])


def test_rescale_works_on_a_batch_of_members():
    actions = np.array([[-1.0, 1.0], [0.0, 0.0], [1.0, -1.0]], dtype=np.float32)
    got = rescale_action(actions, LOW, HIGH)
    np.testing.assert_array_equal(got, [[-1.0, 10.0], [1.0, 5.0], [3.0, 0.0]])


unit = st.floats(-1.0, 1.0, width=32)
bound = st.floats(-100.0, 100.0, width=32)


@given(a=unit, b=unit, low=bound, width=st.floats(0.0009765625, 100.0, width=32))
def test_rescale_is_monotone_and_stays_inside_the_bounds(a, b, low, width):
    lo = np.array([low], dtype=np.float32)
    hi = lo + np.float32(width)
    a, b = sorted((a, b))
    ra = rescale_action(np.array([a], dtype=np.float32), lo, hi)
    rb = rescale_action(np.array([b], dtype=np.float32), lo, hi)
    assert ra[0] <= rb[0]
    for r in (ra, rb):
        assert lo[0] <= r[0] <= hi[0]


# -- make_env ------------------------------------------------------------------------------


def test_make_env_accepts_a_continuous_task():
    env = make_env("Pendulum-v1")
    try:
        assert isinstance(env.action_space, gym.spaces.Box)
    finally:
        env.close()


def test_make_env_keeps_or_overrides_the_time_limit():
    for limit, expected in [(None, 200), (7, 7)]:
        env = make_env("Pendulum-v1", limit)
        env.reset(seed=0)
        steps, done = 0, False
        while not done:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            steps += 1
            done = term or trunc
        env.close()
        assert steps == expected


@pytest.mark.parametrize(
    ("env_id", "match"),
    [
        ("NoSuchEnv-v0", "NoSuchEnv-v0"),
        ("CartPole-v1", "Discrete"),
    ],
)
def test_make_env_refuses_unusable_envs_in_one_line(env_id, match):
    with pytest.raises(ConfigError, match=match) as info:
        make_env(env_id)
    assert "\n" not in str(info.value)


# -- member envs -----------------------------------------------------------------------------


def test_member_first_observation_depends_on_its_own_seed_only():
    alone = MemberEnvs("Pendulum-v1", [3])
    together = MemberEnvs("Pendulum-v1", [1, 2, 3])
    try:
        np.testing.assert_array_equal(alone.obs[0], together.obs[2])
        assert not np.array_equal(together.obs[0], together.obs[1])
    finally:
        alone.close()
        together.close()


@pytest.mark.parametrize("action", [1.0, 0.5, -0.25])
def test_member_envs_rescale_actions_onto_pendulums_torque_range(action):
    """Action a in [-1, 1] must act as torque 2a on Pendulum (bounds [-2, 2])."""
    members = MemberEnvs("Pendulum-v1", [5])
    reference = gym.make("Pendulum-v1")
    try:
        reference.reset(seed=5)
        _, next_obs, reward, _, _ = members.step(np.array([[action]], dtype=np.float32))
        ref_obs, ref_reward, *_ = reference.step(np.array([2.0 * action], dtype=np.float32))
        np.testing.assert_allclose(next_obs[0], ref_obs, rtol=1e-6)
        assert reward[0] == pytest.approx(ref_reward, rel=1e-6)
    finally:
        members.close()
        reference.close()


def test_member_envs_report_truncation_and_reset_the_ended_member():
    envs = MemberEnvs("Pendulum-v1", [0, 1], max_episode_steps=3)
    try:
        zeros = np.zeros((2, 1), dtype=np.float32)
        for _ in range(2):
            obs, next_obs, _, terminated, truncated = envs.step(zeros)
            assert not truncated.any()
            np.testing.assert_array_equal(obs, next_obs)
        obs, next_obs, _, terminated, truncated = envs.step(zeros)
        # A time limit is a truncation, never a termination.
        np.testing.assert_array_equal(truncated, [True, True])
        np.testing.assert_array_equal(terminated, [False, False])
        # The learner sees the true last observation; the member continues from a reset.
        assert not np.array_equal(obs, next_obs)
        np.testing.assert_array_equal(envs.obs, obs)
        # A reset Pendulum starts at rest-ish: |theta_dot| <= 1 (next_obs after 3 steps may not).
        assert np.all(np.abs(obs[:, 2]) <= 1.0)
    finally:
        envs.close()


def _walk(envs: MemberEnvs, actions: np.ndarray) -> np.ndarray:
    return np.stack([envs.step(a)[1] for a in actions])


def test_a_box2d_member_resumes_exactly_after_many_episodes():
    """BipedalWalker keeps one Box2D world across resets, and its history changes later
    episodes' rounding; a fresh env per episode makes the replay on resume exact."""
    rng = np.random.default_rng(0)
    steps = 0.3 * rng.uniform(-1, 1, (1400, 1, 4)).astype(np.float32)
    envs = MemberEnvs("BipedalWalker-v3", [7], max_episode_steps=200)
    try:
        _walk(envs, steps[:1050])  # five episodes or more (a fall ends one early)
        state = copy.deepcopy(envs.state_dict())
        assert envs.reset_rng_states[0] is not None and envs.episode_steps[0] > 0
        resumed = MemberEnvs("BipedalWalker-v3", [7], max_episode_steps=200)
        try:
            resumed.load_state_dict(state)
            np.testing.assert_array_equal(_walk(resumed, steps[1050:]), _walk(envs, steps[1050:]))
        finally:
            resumed.close()
    finally:
        envs.close()


class DivergingEnv(gym.Env):
    """Its observation turns NaN from the second step on: a simulator that blew up."""

    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.np_random.uniform(), 0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.array([np.nan if self.t >= 2 else 0.5, self.t], np.float32)
        return obs, 0.0, False, False, {}


if "DivergingEnv-v0" not in gym.registry:
    gym.register("DivergingEnv-v0", DivergingEnv, max_episode_steps=10)


def test_a_member_failed_by_a_nan_observation_still_resumes():
    """The trainer zeroes a failed member's non-finite observation in place, so the saved
    state holds zeros where the replayed env gives NaN: the replay must still match."""
    envs = MemberEnvs("test_envs:DivergingEnv-v0", [1])
    try:
        for _ in range(3):
            envs.step(np.zeros((1, 1), np.float32))
        np.nan_to_num(envs.obs, copy=False, nan=0.0, posinf=0.0, neginf=0.0)  # as the trainer
        state = copy.deepcopy(envs.state_dict())
        resumed = MemberEnvs("test_envs:DivergingEnv-v0", [1])
        try:
            resumed.load_state_dict(state)
            np.testing.assert_array_equal(resumed.obs, state["obs"])
        finally:
            resumed.close()
    finally:
        envs.close()
