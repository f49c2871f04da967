"""``ddpglab enjoy``: a trained actor played headless, one line per episode, then the mean."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_support import run_cli

from ddpglab.actor_file import load_actor
from ddpglab.envs import make_env, rescale_action
from ddpglab.report.enjoy import find_policy, play_episodes
from ddpglab.run_folder import train

STEPS = 20


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_config):
    """Two seeds, two 20-step Pendulum episodes each, an actor saved after each episode."""
    folder = tmp_path_factory.mktemp("enjoy") / "run"
    config = tiny_config(
        **{
            "train.seeds": [0, 1],
            "train.episodes": 2,
            "train.checkpoint_every": 1,
            "env.max_episode_steps": STEPS,
        }
    )
    train(config, out=folder)
    return folder


def played(out: str) -> tuple[list[float], float]:
    lines = out.strip().splitlines()
    returns = [
        float(m[1]) for line in lines if (m := re.fullmatch(r"episode \d+ return (\S+)", line))
    ]
    assert [line.split()[1] for line in lines[1:-1]] == [str(i + 1) for i in range(len(returns))]
    mean = re.fullmatch(r"mean return (\S+) over (\d+) episodes.*", lines[-1])
    assert mean is not None and int(mean[2]) == len(returns)
    return returns, float(mean[1])


def test_prints_each_episode_return_then_their_mean(run_dir, capsys):
    rc, out, err = run_cli(["enjoy", str(run_dir), "--episodes", "3", "--render", "none"], capsys)
    assert rc == 0, err
    assert out.startswith("Pendulum-v1: seed 0, training episode 2\n")
    returns, mean = played(out)
    assert len(returns) == 3
    assert mean == pytest.approx(sum(returns) / 3, abs=0.01)
    assert all(-16.3 * STEPS <= r <= 0 for r in returns)  # Pendulum's reward lies in [-16.3, 0]


def test_rendering_off_screen_plays_the_same_episodes(run_dir, capsys):
    argv = ["enjoy", str(run_dir), "--episodes", "2"]
    _, quiet, _ = run_cli([*argv, "--render", "none"], capsys)
    rc, rendered, err = run_cli([*argv, "--render", "rgb_array"], capsys)
    assert rc == 0, err
    assert played(rendered) == played(quiet)


def test_a_checkpoint_file_plays_like_its_run(run_dir, capsys):
    argv = ["--episodes", "2", "--render", "none"]
    _, from_run, _ = run_cli(["enjoy", str(run_dir), "--seed", "1", *argv], capsys)
    latest = sorted((run_dir / "checkpoints" / "seed1").glob("*.pt"))[-1]
    rc, from_file, err = run_cli(["enjoy", str(latest), *argv], capsys)
    assert rc == 0, err
    assert played(from_file) == played(from_run)


def test_episode_and_reset_seed_choose_the_actor_and_the_start_states(run_dir, capsys):
    base = ["enjoy", str(run_dir), "--render", "none", "--episodes", "2"]
    _, latest, _ = run_cli(base, capsys)
    rc, first, err = run_cli([*base, "--episode", "1"], capsys)
    assert rc == 0, err
    assert "training episode 1" in first
    _, reseeded, _ = run_cli([*base, "--reset-seed", "5"], capsys)
    assert played(first) != played(latest)
    assert played(reseeded) != played(latest)


@dataclass
class HandPlayed:
    start: np.ndarray
    rewards: list[float]
    terminated: bool


def play_by_hand(policy, episodes: int, reset_seed: int) -> list[HandPlayed]:
    """Episodes of a = mu(s) stepped here, without enjoy: the env reset with ``reset_seed``
    before the first, unseeded before each next one."""
    actor = load_actor(policy.path, policy.actor_kind)
    env = make_env(policy.env_id, STEPS)
    obs, _ = env.reset(seed=reset_seed)
    played_here = []
    for _ in range(episodes):
        start, rewards, terminated, truncated = obs.copy(), [], False, False
        while not (terminated or truncated):
            with torch.inference_mode():
                action = actor(torch.as_tensor(obs, dtype=torch.float32).view(1, 1, -1)).view(-1)
            obs, reward, terminated, truncated, _ = env.step(
                rescale_action(action.numpy(), env.action_space.low, env.action_space.high)
            )
            rewards.append(float(reward))
        played_here.append(HandPlayed(start, rewards, bool(terminated)))
        obs, _ = env.reset()
    env.close()
    return played_here


def test_each_episode_reports_its_length_and_how_it_ended(run_dir, capsys):
    """Pendulum-v1 never ends an episode itself: each of these runs to the 20-step limit.
    The outcomes are those of the same episodes played by hand, and the returns are those
    enjoy prints."""
    policy = find_policy(run_dir, None, 0, None)
    outcomes = list(play_episodes(policy, 3, reset_seed=7))
    assert [(o.length, o.terminated) for o in outcomes] == [(STEPS, False)] * 3
    assert all(-16.3 <= o.final_reward <= 0.0 for o in outcomes)  # Pendulum's reward range
    returns = [o.episode_return for o in outcomes]
    assert len(set(returns)) == 3  # three start states, not one replayed
    by_hand = play_by_hand(policy, 3, reset_seed=7)
    assert [(o.length, o.terminated) for o in outcomes] == [
        (len(h.rewards), h.terminated) for h in by_hand
    ]
    assert returns == pytest.approx([sum(h.rewards) for h in by_hand])
    assert [o.final_reward for o in outcomes] == pytest.approx([h.rewards[-1] for h in by_hand])
    argv = ["enjoy", str(run_dir), "--seed", "0", "--episodes", "3", "--reset-seed", "7"]
    rc, out, err = run_cli([*argv, "--render", "none"], capsys)
    assert rc == 0, err
    assert played(out)[0] == pytest.approx(returns, abs=0.005)  # printed to 2 decimals


def test_the_discounted_return_and_start_state_match_a_hand_played_episode(run_dir):
    """The first episode replayed step by step here: same s_0, sum_t gamma^t r_t."""
    policy = find_policy(run_dir, None, 0, None)
    first = next(play_episodes(policy, 1, reset_seed=7, gamma=0.9))
    (by_hand,) = play_by_hand(policy, 1, reset_seed=7)
    rewards = by_hand.rewards
    np.testing.assert_array_equal(first.start, by_hand.start)
    assert first.discounted_return == pytest.approx(sum(0.9**t * r for t, r in enumerate(rewards)))
    assert first.episode_return == pytest.approx(sum(rewards))
    assert first.discounted_return != pytest.approx(first.episode_return)


@pytest.mark.parametrize(
    ("extra", "mention"),
    [
        (["--episode", "9"], "no checkpoint at episode 9; it has 1, 2"),
        (["--seed", "7"], "no run with seed 7"),
        (["--episodes", "0"], "--episodes"),
        (["--render", "window"], "--render"),
    ],
)
def test_bad_choices_are_one_line_and_status_2(run_dir, capsys, extra, mention):
    rc, out, err = run_cli(["enjoy", str(run_dir), "--render", "none", *extra], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and mention in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("render", [[], ["--render", "human"]], ids=["default", "human"])
def test_human_rendering_without_a_display_is_refused_before_any_env(
    run_dir, capsys, monkeypatch, render
):
    """Once it printed an XDG error, played blind in real time and exited 0."""
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)

    def no_env(*args, **kwargs):
        raise AssertionError("an env was made")

    monkeypatch.setattr("ddpglab.envs.make_env", no_env)
    rc, out, err = run_cli(["enjoy", str(run_dir), *render], capsys)
    assert rc == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "display" in lines[0] and "--render none" in lines[0], err


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, capsys):
    bogus = tmp_path / "actor.pt"
    bogus.write_text("not a checkpoint")
    rc, _, err = run_cli(["enjoy", str(bogus), "--render", "none"], capsys)
    assert rc == 2 and "cannot load checkpoint" in err and len(err.strip().splitlines()) == 1


def test_the_shipped_walker_walks_one_episode_headless(capsys):
    """docs/results/bipedal-td3/walker.pt (TD3 on BipedalWalker-v3, see its README) plays
    one deterministic episode without a display and crosses the course: 300 counts as
    solved, and a fall costs -100."""
    walker = Path(__file__).parents[1] / "docs" / "results" / "bipedal-td3" / "walker.pt"
    rc, out, err = run_cli(["enjoy", str(walker), "--episodes", "1", "--render", "none"], capsys)
    assert rc == 0, err
    assert out.splitlines()[0].startswith("BipedalWalker-v3: walker.pt")
    returns, mean = played(out)
    assert len(returns) == 1 and mean == returns[0]
    assert returns[0] > 280


def test_an_env_that_cannot_be_made_is_refused_before_anything_is_printed(
    run_dir, capsys, monkeypatch
):
    """A refusal while the env is made (a MuJoCo backend that fails to load, say) comes
    before the header line: the output is one line on stderr, nothing on stdout."""
    import ddpglab.envs
    from ddpglab.config import ConfigError

    def refuse(*args, **kwargs):
        raise ConfigError("this env cannot be made here")

    monkeypatch.setattr(ddpglab.envs, "make_env", refuse)
    rc, out, err = run_cli(["enjoy", str(run_dir), "--render", "none"], capsys)
    assert rc == 2 and "cannot be made here" in err
    assert out == "", "nothing is printed before the refusal"
