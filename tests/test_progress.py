"""Progress everyone can see: time remaining on the bar, plain lines when stderr is not a
terminal (logs, CI, nohup), and one warning when a run's returns say nothing about learning."""

from __future__ import annotations

import pytest
from cli_support import FAST, run_cli
from rich.progress import TimeRemainingColumn

from ddpglab.progress import PLAIN_EVERY, TrainProgress
from ddpglab.summary import MemberSummary, learning_warning

SHORT = [
    *FAST,
    *("--set", "env.max_episode_steps=10", "--set", "train.checkpoint_every=0"),
    *("--set", "agent.learning_starts=0"),
]


def test_the_bar_shows_the_time_remaining():
    bar = TrainProgress([MemberSummary(seed=0)], 5, None, enabled=True)
    assert any(isinstance(c, TimeRemainingColumn) for c in bar.progress.columns)


def test_without_a_terminal_train_writes_a_plain_line_every_ten_episodes(tmp_path, capsys):
    argv = ["train", *SHORT, "--episodes", "25", "--out", str(tmp_path / "run")]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    lines = [line for line in err.splitlines() if line.startswith("train: ")]
    assert [line.split(",")[0] for line in lines] == [
        "train: episode 10/25",
        "train: episode 20/25",
        "train: episode 25/25",
    ]
    assert PLAIN_EVERY == 10
    assert "eta" in lines[0] and "steps/s" in lines[0] and "return" in lines[0]


def test_quiet_writes_no_progress_lines(tmp_path, capsys):
    argv = ["train", *SHORT, "--episodes", "10", "--out", str(tmp_path / "run"), "--quiet"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0 and err == "", err


@pytest.mark.parametrize(
    "sets, says",
    [
        (["agent.updates_per_step=0"], "no gradient update happened (agent.updates_per_step is 0)"),
        (["agent.batch_size=64"], "more than one batch of 64, which it never did"),
        (["agent.learning_starts=1000"], "within agent.learning_starts (1000): every action"),
    ],
)
def test_a_run_that_learned_nothing_says_so_in_one_line(tmp_path, capsys, sets, says):
    flags = [item for s in sets for item in ("--set", s)]
    argv = ["train", *SHORT, *flags, "--episodes", "3", "--out", str(tmp_path / "run"), "--quiet"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert err.count("\n") == 1 and err.startswith("ddpglab: warning: "), err
    assert says in err


def test_a_run_that_learned_has_no_warning(tiny_config):
    agent = tiny_config().agent
    assert learning_warning(agent, lockstep_steps=150, total_updates=134) is None
    assert learning_warning(agent, lockstep_steps=150, total_updates=-1) is None  # unknown


def test_a_rate_too_small_for_any_update_is_named_as_the_reason(tiny_config):
    agent = tiny_config(**{"agent.updates_per_step": 0.001, "agent.batch_size": 16}).agent
    warning = learning_warning(agent, lockstep_steps=400, total_updates=0)
    assert "agent.updates_per_step 0.001" in warning and "never did" not in warning, warning
