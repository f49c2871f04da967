"""Deterministic evaluation: each member's own stream of start states, and a resumed
evaluator that plays exactly the episodes an uninterrupted one would."""

from __future__ import annotations

import copy

import numpy as np

from ddpglab.envs import action_bounds, make_env
from ddpglab.evaluation import MemberEvaluator

ENV_ID, STEPS = "BipedalWalker-v3", 200


def evaluator(seeds: list[int]) -> MemberEvaluator:
    env = make_env(ENV_ID, STEPS)
    obs_dim = env.observation_space.shape[0]
    low, high = action_bounds(env.action_space)
    env.close()
    return MemberEvaluator(ENV_ID, STEPS, seeds, obs_dim, low, high)


WEIGHTS = np.random.default_rng(0).normal(size=(24, 4)).astype(np.float32)  # walker: 24 -> 4


def linear_policy(obs: np.ndarray) -> np.ndarray:
    """A fixed policy that falls at varied times, so episodes differ."""
    return np.tanh(0.1 * obs @ WEIGHTS)


def test_a_resumed_box2d_evaluator_plays_the_episodes_an_uninterrupted_one_would():
    """BipedalWalker keeps history in its Box2D world across resets; a fresh instance per
    episode makes the episodes after a resume equal to those without one."""
    uninterrupted = evaluator([3, 4])
    uninterrupted.returns(linear_policy, [0, 1], 2)
    state = copy.deepcopy(uninterrupted.state_dict())
    later = uninterrupted.returns(linear_policy, [0, 1], 3)

    resumed = evaluator([3, 4])
    resumed.load_state_dict(state)
    assert resumed.returns(linear_policy, [0, 1], 3) == later
    assert len(set(later[0])) == 3  # new start states each episode, not one replayed


def test_a_members_episodes_do_not_depend_on_who_else_is_evaluated():
    together = evaluator([3, 4]).returns(linear_policy, [0, 1], 2)
    alone = evaluator([3, 4]).returns(linear_policy, [1], 2)
    assert alone[1] == together[1]
