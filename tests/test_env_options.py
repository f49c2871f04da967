"""``env.action_bounds`` and ``env.kwargs``: the bounds actions in [-1, 1] are rescaled to
and the env's own keyword arguments, used wherever actions are played (training,
evaluation, enjoy, animate, a resumed run), refused in one line when they do not fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from cli_support import FAST, assert_refused, run_cli
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from ddpglab.config import ConfigError, load_config, same_run_config, to_yaml
from ddpglab.envs import MemberEnvs, action_bounds, make_env, rescale_action
from ddpglab.report.enjoy import find_policy, play_episodes
from ddpglab.run_folder import train
from ddpglab.study.spec import parse_spec
from ddpglab.study.variants import resolve
from ddpglab.theory.lqr import riccati
from ddpglab.theory.lqr_ddpg import run_lqr_experiment
from ddpglab.theory.lqr_env import LQREnv
from ddpglab.training import Trainer


class RecordingPendulum(PendulumEnv):
    """Pendulum-v1 (Box [-2, 2]) that remembers every action it receives and its gravity."""

    sent: ClassVar[list[tuple[float, float]]] = []  # (torque, g) per step, every instance

    def step(self, action):
        self.sent.append((float(np.asarray(action).reshape(-1)[0]), float(self.g)))
        return super().step(action)


if "RecordingPendulum-v0" not in gym.registry:
    gym.register("RecordingPendulum-v0", RecordingPendulum, max_episode_steps=200)
RECORDING = "test_env_options:RecordingPendulum-v0"


@pytest.fixture
def sent():
    """The (torque, g) pairs the recording pendulums receive while the test runs."""
    RecordingPendulum.sent.clear()
    yield RecordingPendulum.sent
    RecordingPendulum.sent.clear()


def torques(sent: list[tuple[float, float]]) -> np.ndarray:
    return np.array([torque for torque, _ in sent])


# -- the rescaling law -------------------------------------------------------------------


def test_the_policy_cube_maps_exactly_onto_the_requested_bounds():
    """a_env = low + (a + 1) / 2 (high - low): -1 -> low, +1 -> high, 0 -> the midpoint."""
    box = gym.spaces.Box(np.float32([-2.0, 0.0]), np.float32([2.0, 10.0]), dtype=np.float32)
    low, high = action_bounds(box, [[-1.0, 2.0], [0.5, 6.0]])
    np.testing.assert_array_equal(low, np.float32([-1.0, 2.0]))
    np.testing.assert_array_equal(high, np.float32([0.5, 6.0]))
    cube = np.float32([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-1.0, 1.0]])
    np.testing.assert_array_equal(
        rescale_action(cube, low, high),
        np.float32([[-1.0, 2.0], [0.5, 6.0], [-0.25, 4.0], [-1.0, 6.0]]),
    )


def test_a_number_bounds_every_dimension_and_none_keeps_the_box():
    box = gym.spaces.Box(-2.0, 2.0, (3,), np.float32)
    low, high = action_bounds(box, [-1, 1])
    np.testing.assert_array_equal(low, np.full(3, -1.0, np.float32))
    np.testing.assert_array_equal(high, np.full(3, 1.0, np.float32))
    low, high = action_bounds(box, [[-1.0, -2.0, 0.0], 1.5])
    np.testing.assert_array_equal(low, np.float32([-1.0, -2.0, 0.0]))
    np.testing.assert_array_equal(high, np.full(3, 1.5, np.float32))
    for got, box_bound in zip(action_bounds(box), (box.low, box.high), strict=True):
        np.testing.assert_array_equal(got, box_bound)
        assert got.dtype == np.float32


@pytest.mark.parametrize(
    ("requested", "match"),
    [
        ([-3, 1], r"env.action_bounds \[-3, 1\] lie outside the env's action Box \[-2, 2\]"),
        ([-1, 2.5], "outside"),
        ([[-1, -1], [1, 3]], r"\[-1, \[1, 3\]\]|outside"),
        ([[-1, -1, -1], 1], "low has 3 entries, the env's actions 2"),
    ],
)
def test_bounds_outside_the_box_or_of_another_length_are_refused_in_one_line(requested, match):
    box = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
    with pytest.raises(ConfigError, match=match) as info:
        action_bounds(box, requested)
    assert "\n" not in str(info.value)


# -- a run plays the bounds everywhere --------------------------------------------------


def test_a_run_bounded_to_one_newton_metre_sends_at_most_one(tiny_config, sent):
    """Pendulum-v1's Box is [-2, 2]; with env.action_bounds [-1, 1] its training and
    evaluation episodes receive at most 1 N m, and the uniform random actions of the first
    steps reach close to it."""
    config = tiny_config(
        **{
            "env.id": RECORDING,
            "env.action_bounds": [-1, 1],
            "agent.learning_starts": 100,
            "train.episodes": 2,
            "train.eval_every": 1,
        }
    )
    Trainer(config).run()
    played = torques(sent)
    assert len(played) > 2 * 50  # the training episodes, and the evaluations too
    assert np.abs(played).max() <= 1.0
    assert np.abs(played[:100]).max() > 0.9


def test_without_bounds_the_same_actions_reach_the_box(sent):
    envs = MemberEnvs(RECORDING, [0], 5)
    try:
        envs.step(np.float32([[1.0]]))
        envs.step(np.float32([[-1.0]]))
    finally:
        envs.close()
    assert torques(sent).tolist() == [2.0, -2.0]


@pytest.fixture(scope="module")
def bounded_run(tmp_path_factory, tiny_config) -> Path:
    """A run on the recording pendulum with bounds [0.5, 1] and gravity 3, checkpointed
    after each of its two 20-step episodes and evaluated after each."""
    folder = tmp_path_factory.mktemp("bounds") / "run"
    config = tiny_config(
        **{
            "env.id": RECORDING,
            "env.max_episode_steps": 20,
            "env.action_bounds": [0.5, 1.0],
            "env.kwargs": {"g": 3.0},
            "train.episodes": 2,
            "train.eval_every": 1,
            "train.checkpoint_every": 1,
        }
    )
    RecordingPendulum.sent.clear()
    train(config, out=folder)
    trained = list(RecordingPendulum.sent)
    RecordingPendulum.sent.clear()
    assert len(trained) > 2 * 20
    assert all(0.5 <= torque <= 1.0 and g == 3.0 for torque, g in trained)
    return folder


def assert_bounded(sent: list[tuple[float, float]]) -> None:
    """Every action was rescaled to [0.5, 1] and every env made with g = 3."""
    assert sent
    played = torques(sent)
    assert played.min() >= 0.5 and played.max() <= 1.0
    assert {g for _, g in sent} == {3.0}


def test_enjoy_plays_a_run_with_its_bounds_and_kwargs(bounded_run, sent):
    policy = find_policy(bounded_run, None, None, None)
    assert policy.action_bounds == [0.5, 1.0] and policy.env_kwargs == {"g": 3.0}
    returns = [outcome.episode_return for outcome in play_episodes(policy, 2)]
    assert len(returns) == 2
    assert_bounded(sent)


def test_an_actor_file_carries_its_bounds_and_kwargs(bounded_run, sent):
    """A checkpoint played alone (as docs/results' walker.pt) keeps what it was trained on."""
    actor_file = find_policy(bounded_run, None, None, None).path
    policy = find_policy(actor_file, None, None, None)
    assert policy.action_bounds == [0.5, 1.0] and policy.env_kwargs == {"g": 3.0}
    list(play_episodes(policy, 1))
    assert_bounded(sent)


def test_animate_plays_a_run_with_its_bounds_and_kwargs(bounded_run, tmp_path, sent, capsys):
    argv = ["animate", str(bounded_run), "--to", str(tmp_path), "--gif-width", "64"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert_bounded(sent)


def test_a_resumed_run_keeps_its_bounds_and_kwargs(tmp_path, capsys, sent, built_trainers):
    """``train --resume`` reads the run's config.yaml: the continued part plays the same
    bounds on the same env."""
    out = tmp_path / "run"
    options = ["--set", "env.action_bounds=[0.5,1]", "--set", "env.kwargs.g=3.0"]
    first = ["--env", RECORDING, *options, "--set", "env.max_episode_steps=20"]
    rc, _, err = run_cli(
        ["train", *FAST, *first, "--set", "train.keep_state=true", "--episodes", "1",
         "--out", str(out), "--quiet"],
        capsys,
    )  # fmt: skip
    assert rc == 0, err
    sent.clear()
    rc, _, err = run_cli(["train", "--resume", "--episodes", "2", "--out", str(out)], capsys)
    assert rc == 0, err
    assert_bounded(sent)
    resumed = built_trainers[-1]
    assert resumed.config.env.action_bounds == (0.5, 1.0)
    assert resumed.config.env.kwargs == {"g": 3.0}


# -- env.kwargs reach gymnasium.make ------------------------------------------------------


def test_kwargs_reach_the_env_and_change_its_dynamics():
    def first_step(**kwargs: Any) -> np.ndarray:
        env = make_env("Pendulum-v1", None, kwargs)
        try:
            env.reset(seed=3)
            return env.step(np.float32([0.0]))[0]
        finally:
            env.close()

    env = make_env("Pendulum-v1", None, {"g": 1.0})
    assert env.unwrapped.g == 1.0
    env.close()
    assert not np.array_equal(first_step(g=1.0), first_step())
    np.testing.assert_array_equal(first_step(g=10.0), first_step())  # Pendulum-v1's default


def test_member_envs_keep_their_kwargs_across_episodes(sent):
    """Every episode runs in a fresh env instance: each must be made with the kwargs."""
    envs = MemberEnvs(RECORDING, [0, 1], 2, {"g": 4.0})
    try:
        for _ in range(5):
            envs.step(np.zeros((2, 1), np.float32))
    finally:
        envs.close()
    assert len(sent) == 10 and {g for _, g in sent} == {4.0}


def test_kwargs_set_the_lqr_envs_system():
    b = [[0.0], [0.5]]
    env = make_env("ddpglab/LQR-v0", 10, {"b": b, "action_bound": 2.0})
    try:
        np.testing.assert_array_equal(env.unwrapped.b, b)
        np.testing.assert_array_equal(env.action_space.high, [2.0])
    finally:
        env.close()


def test_the_lqr_experiment_compares_with_the_optimum_of_the_system_kwargs_set():
    b = [[0.0], [0.5]]
    tiny = {
        "env.max_episode_steps": 5,
        "train.episodes": 1,
        "train.seeds": [0],
        "train.eval_every": 0,
        "train.checkpoint_every": 0,
        "train.torch_threads": 1,
        "agent.batch_size": 4,
        "replay.capacity": 100,
    }
    config = load_config("lqr", overrides={**tiny, "env.kwargs": {"b": b}})
    result = run_lqr_experiment(config, eval_episodes=1)
    k_star, _ = riccati(LQREnv(b=b).problem(config.agent.gamma))
    default_k, _ = riccati(LQREnv().problem(config.agent.gamma))
    np.testing.assert_array_equal(result.optimal_gain, k_star)
    assert not np.allclose(k_star, default_k)


# -- refusals: one line, status 2, nothing written ---------------------------------------


@pytest.mark.parametrize(
    ("options", "mentions"),
    [
        (["--set", "env.action_bounds=[-3,3]"], ["env.action_bounds", "outside", "[-2, 2]"]),
        (["--set", "env.action_bounds=[[-1,-1],[1,1]]"], ["env.action_bounds", "2 entries"]),
        (["--set", "env.action_bounds=[1,-1]"], ["env.action_bounds", "low < high"]),
        (["--set", "env.action_bounds=[1,1]"], ["env.action_bounds", "low < high"]),
        (["--set", "env.action_bounds=[-1,.nan]"], ["env.action_bounds", "finite"]),
        (["--set", "env.action_bounds=[[-1],[1,2]]"], ["env.action_bounds", "same length"]),
        (["--set", "env.action_bounds=[-1,0,1]"], ["env.action_bounds"]),
        (["--set", "env.kwargs.gravity=9"], ["env.kwargs", "Pendulum-v1", "gravity"]),
        (["--set", "env.kwargs.g=abc"], ["env.kwargs", "Pendulum-v1"]),
        (["--set", "env.kwargs.max_episode_steps=9"], ["env.kwargs", "env.max_episode_steps"]),
        (["--set", "env.kwargs=3"], ["env.kwargs"]),
        # refused by the constructor with an AssertionError: any error of an env made
        # with the user's kwargs is theirs to fix, not a crash
        (
            ["--env", "LunarLanderContinuous-v3", "--set", "env.kwargs.gravity=5"],
            ["env.kwargs", "LunarLanderContinuous-v3", "gravity"],
        ),
    ],
)
def test_bad_bounds_and_kwargs_are_refused_before_anything_is_written(
    tmp_path, capsys, options, mentions
):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", *FAST, *options, "--episodes", "1", "--out", str(out)], capsys)
    assert_refused(rc, err, out, *mentions)


def test_a_study_with_bounds_outside_the_box_is_refused_before_it_writes(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        json.dumps(
            {
                "name": "wide",
                "base": {"preset": "pendulum", "set": {"env.action_bounds": [-1, 3]}},
                "seeds": 1,
                "episodes": 1,
            }
        )
    )
    out = tmp_path / "study"
    rc, _, err = run_cli(["study", str(spec), "--out", str(out)], capsys)
    assert_refused(rc, err, out, "env.action_bounds", "outside")


def test_the_lqr_experiment_refuses_asymmetric_bounds(tmp_path, capsys):
    argv = ["theory", "lqr", "--set", "env.action_bounds=[-1,2]"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and "symmetric" in err and len(err.strip().splitlines()) == 1, err


# -- stored with the run ------------------------------------------------------------------


def test_the_options_round_trip_through_the_saved_config(tmp_path):
    config = load_config(
        "pendulum",
        overrides={"env.action_bounds": [[-1], 1], "env.kwargs": {"g": 9.0, "m": 1.5}},
    )
    saved = tmp_path / "config.yaml"
    saved.write_text(to_yaml(config))
    assert load_config(None, saved) == config
    plain = load_config("pendulum").model_dump(mode="json")
    assert not same_run_config(plain, config.model_dump(mode="json"))


def test_a_dotted_key_sets_one_kwarg_and_keeps_the_others():
    config = load_config(
        "pendulum", overrides={"env.kwargs": {"g": 9.0, "m": 1.5}, "env.kwargs.g": 5.0}
    )
    assert config.env.kwargs == {"g": 5.0, "m": 1.5}
    assert load_config("pendulum").env.kwargs == {}


def test_a_study_base_config_file_may_set_kwargs(tmp_path):
    """A study flattens its base config file into dotted keys: env.kwargs' entries are the
    user's names, set one by one, not config sections."""
    (tmp_path / "base.yaml").write_text("env:\n  kwargs: {g: 3.0, m: 2.0}\n")
    spec = {"name": "t", "base": {"config": "base.yaml"}, "seeds": 1, "episodes": 1}
    study = resolve(parse_spec(spec), tmp_path)
    assert study.variants[0].config.env.kwargs == {"g": 3.0, "m": 2.0}
