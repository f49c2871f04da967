"""``train --out DIR --resume --episodes N``: a finished run whose final state was kept
(``train.keep_state: true``) trains further to a larger budget, exactly as a run trained to
that budget from the start; everything else is refused with one line."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from cli_support import TINY_RUN, run_cli

from ddpglab.config import load_config, same_run_config, to_yaml
from ddpglab.run_folder import train
from ddpglab.training import STATE_FILE

CONTINUED = {
    **TINY_RUN,
    "env.max_episode_steps": 40,
    "agent.learning_starts": 30,
    "agent.twin_critics": True,  # TD3: the delay's phase and target noise carry over too
    "agent.target_noise": 0.2,
    "agent.policy_delay": 2,
    "train.seeds": [0, 1],
    "train.eval_every": 2,
    "train.checkpoint_every": 0,
    "train.keep_state": True,
}


def episode_rows(out: Path) -> list[tuple]:
    """Every stored episode column that does not depend on wall time."""
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        return conn.execute(
            "SELECT r.seed, episode, return, length, env_steps, critic_loss, mean_q, threshold,"
            " terminated, q_start, discounted_return FROM episodes JOIN runs r USING (run_id)"
            " ORDER BY r.seed, episode"
        ).fetchall()


def statuses(out: Path) -> set[str]:
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        return {status for (status,) in conn.execute("SELECT status FROM runs")}


def write_config(folder: Path, **overrides) -> Path:
    path = folder / "config.in.yaml"
    path.write_text(to_yaml(load_config(None, overrides={**CONTINUED, **overrides})))
    return path


@pytest.mark.parametrize("budget", [("episodes", 3, 5), ("steps", 90, 170)])
def test_a_continued_run_equals_one_trained_to_the_larger_budget(tmp_path, capsys, budget):
    kind, first, larger = budget
    other = "steps" if kind == "episodes" else "episodes"
    reference = tmp_path / "reference"
    train(load_config(None, overrides={**CONTINUED, f"train.{kind}": larger}), reference)

    out = tmp_path / "continued"
    config = write_config(tmp_path, **{f"train.{kind}": first, f"train.{other}": None})
    rc, _, err = run_cli(["train", "--config", str(config), "--out", str(out), "--quiet"], capsys)
    assert rc == 0, err
    assert (out / STATE_FILE).is_file(), "train.keep_state keeps the final state"
    rc, _, err = run_cli(
        ["train", "--out", str(out), "--resume", f"--{kind}", str(larger), "--quiet"], capsys
    )
    assert rc == 0, err
    assert f"continuing the finished run to {larger} {kind}" in err

    assert episode_rows(out) == episode_rows(reference)
    assert statuses(out) == {"done"}
    assert yaml.safe_load((out / "config.yaml").read_text())["train"][kind] == larger
    summary = json.loads((out / "summary.json").read_text())
    key = "episodes" if kind == "episodes" else "env_steps"
    assert [m[key] for m in summary["members"]] == [larger, larger]
    assert (out / "curve.png").is_file()


def finished_run(tmp_path: Path, capsys, **overrides) -> Path:
    out = tmp_path / "run"
    config = write_config(tmp_path, **{"train.episodes": 2, "train.seeds": [0], **overrides})
    rc, _, err = run_cli(["train", "--config", str(config), "--out", str(out), "--quiet"], capsys)
    assert rc == 0, err
    return out


@pytest.mark.parametrize(
    "argv, mentions",
    [
        (["--episodes", "2"], ["has trained 2 episodes", "must be larger"]),
        (["--episodes", "1"], ["must be larger"]),
        (["--steps", "500"], ["budget of 2 episodes", "--episodes, not --steps"]),
        (["--episodes", "4", "--set", "agent.tau=0.1"], ["drop --set"]),
        (["--episodes", "4", "--seed", "3"], ["drop --seed"]),
        ([], ["has finished", "larger --episodes"]),
    ],
)
def test_continuing_refuses_all_but_a_larger_budget_of_the_same_kind(
    tmp_path, capsys, argv, mentions
):
    out = finished_run(tmp_path, capsys)
    before = episode_rows(out)
    rc, _, err = run_cli(["train", "--out", str(out), "--resume", *argv], capsys)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    for text in mentions:
        assert text in err
    assert episode_rows(out) == before
    assert (out / "summary.json").is_file()


def test_a_finished_run_without_a_kept_state_cannot_continue(tmp_path, capsys):
    out = finished_run(tmp_path, capsys, **{"train.keep_state": False})
    assert not (out / STATE_FILE).exists()
    rc, _, err = run_cli(["train", "--out", str(out), "--resume", "--episodes", "4"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "kept no final state" in err and "train.keep_state: true" in err
    rc, _, err = run_cli(["train", "--out", str(out), "--resume"], capsys)
    assert rc == 2 and "has finished and kept no state" in err


def test_a_budget_grows_only_in_a_states_comparison_that_allows_it(tiny_config):
    saved = tiny_config(**{"train.episodes": 3}).model_dump(mode="json")
    grown = tiny_config(**{"train.episodes": 5}).model_dump(mode="json")
    shrunk = tiny_config(**{"train.episodes": 2}).model_dump(mode="json")
    steps = tiny_config(**{"train.steps": 500, "train.episodes": None}).model_dump(mode="json")
    other = tiny_config(**{"train.episodes": 5, "agent.tau": 0.5}).model_dump(mode="json")
    assert same_run_config(saved, grown, budget_may_grow=True)
    assert not same_run_config(saved, grown)  # a study's runs keep their budget
    for current in (shrunk, steps, other):
        assert not same_run_config(saved, current, budget_may_grow=True)
    kept = tiny_config(**{"train.episodes": 3, "train.keep_state": True}).model_dump(mode="json")
    assert same_run_config(saved, kept)  # keep_state changes what is kept, not what is trained
