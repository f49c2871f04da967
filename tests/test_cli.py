"""``ddpglab train`` end to end: flags become a config, a run writes every artifact."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import torch
from cli_support import FAST, run_cli, start_cli_process

from ddpglab.cli import build_parser, resolve_train_config
from ddpglab.config import load_config

# -- how the command line becomes a config ------------------------------------------------------


def resolve(*argv: str):
    return resolve_train_config(build_parser().parse_args(["train", *argv, "--out", "x"]))


def test_command_line_flags_set_the_config():
    assert resolve().env.id == "Pendulum-v1"
    assert resolve("--preset", "bipedal").env.id == "BipedalWalker-v3"
    assert resolve("--seed", "5").train.seeds == [5]
    assert resolve("--seeds", "3").train.seeds == [0, 1, 2]
    assert resolve("--seeds", "4,7").train.seeds == [4, 7]
    steps = resolve("--steps", "500").train
    assert (steps.steps, steps.episodes) == (500, None)
    episodes = resolve("--preset", "bipedal", "--episodes", "7").train
    assert (episodes.steps, episodes.episodes) == (None, 7)
    assert resolve("--set", "agent.tau=0.01", "--set", "agent.hidden=[8]").agent.hidden == [8]
    assert resolve("--set", "agent.tau=0.01").agent.tau == 0.01


def test_config_file_flag_starts_from_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("env:\n  id: BipedalWalker-v3\ntrain:\n  episodes: 9\n")
    config = resolve("--config", str(path))
    assert config.env.id == "BipedalWalker-v3"
    assert config.train.episodes == 9


# -- a complete 3-episode run through the CLI -----------------------------------------------------

SMOKE_SETS = {
    "agent.hidden": [32, 32],
    "train.eval_every": 2,
    "train.checkpoint_every": 2,
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    argv = [
        "train", "--preset", "pendulum-2023", "--episodes", "3",
        "--set", "agent.hidden=[32,32]",
        "--set", "train.eval_every=2",
        "--set", "train.checkpoint_every=2",
        "--out", str(out), "--quiet",
    ]  # fmt: skip
    rc, stdout, stderr = run_cli(argv)
    return out, rc, stdout, stderr


@pytest.fixture(scope="module")
def smoke_db(smoke_run):
    db = sqlite3.connect(smoke_run[0] / "results.sqlite")
    db.row_factory = sqlite3.Row
    yield db
    db.close()


def expected_smoke_config():
    return load_config(
        "pendulum-2023", overrides={**SMOKE_SETS, "train.episodes": 3, "train.steps": None}
    )


def test_smoke_run_succeeds_quietly(smoke_run):
    out, rc, stdout, stderr = smoke_run
    assert rc == 0, stderr
    assert stderr == ""
    # --quiet prints one machine-readable line.
    assert json.loads(stdout.strip())["out"] == str(out)


def test_smoke_run_writes_every_artifact_and_no_leftovers(smoke_run):
    out = smoke_run[0]
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "results.sqlite", "curve.png", "summary.json", "checkpoints"} <= names
    assert not [n for n in names if n.endswith(".tmp")]


def test_smoke_config_yaml_loads_back_into_the_resolved_config(smoke_run):
    assert load_config(None, file=smoke_run[0] / "config.yaml") == expected_smoke_config()


def test_smoke_runs_table_has_the_finished_run(smoke_db):
    runs = [dict(r) for r in smoke_db.execute("SELECT * FROM runs")]
    assert len(runs) == 1
    run = runs[0]
    assert run["status"] == "done"
    assert run["error"] is None
    assert run["env_id"] == "Pendulum-v1"
    assert run["seed"] == 0
    assert json.loads(run["config_json"]) == expected_smoke_config().model_dump(mode="json")
    versions = json.loads(run["versions"])
    assert versions["torch"] == torch.__version__
    assert {"python", "ddpglab", "numpy", "gymnasium"} <= set(versions)
    assert run["started_at"] <= run["finished_at"]


def test_smoke_episodes_table_has_one_row_per_episode(smoke_db):
    rows = [dict(r) for r in smoke_db.execute("SELECT * FROM episodes ORDER BY episode")]
    assert [r["episode"] for r in rows] == [1, 2, 3]
    assert [r["length"] for r in rows] == [200, 200, 200]
    assert [r["env_steps"] for r in rows] == [200, 400, 600]
    walls = [r["wall_s"] for r in rows]
    assert 0 < walls[0] <= walls[1] <= walls[2]
    for r in rows:
        # Pendulum rewards lie in [-16.27, 0] per step.
        assert -16.3 * 200 <= r["return"] <= 0
        # Updates start after 65 steps (buffer > batch 64), so every episode has some.
        assert np.isfinite(r["critic_loss"]) and r["critic_loss"] >= 0
        assert np.isfinite(r["mean_q"])


def test_smoke_evals_table_has_every_evaluation(smoke_db):
    rows = [dict(r) for r in smoke_db.execute("SELECT * FROM evals ORDER BY episode")]
    # Every 2 episodes, and at the end.
    assert [r["episode"] for r in rows] == [2, 3]
    assert [r["env_steps"] for r in rows] == [400, 600]
    for r in rows:
        returns = json.loads(r["returns"])
        assert len(returns) == 5  # eval_episodes of the preset
        assert r["mean_return"] == pytest.approx(np.mean(returns))


def test_smoke_checkpoints_table_points_at_saved_actors(smoke_run, smoke_db):
    out = smoke_run[0]
    rows = [dict(r) for r in smoke_db.execute("SELECT * FROM checkpoints ORDER BY episode")]
    assert [r["episode"] for r in rows] == [2, 3]
    for r in rows:
        path = out / r["path"]
        assert path.is_file()
        saved = torch.load(path, weights_only=True)
        assert saved["env_id"] == "Pendulum-v1"
        assert saved["seed"] == 0
        assert saved["episode"] == r["episode"]
        assert saved["hidden"] == [32, 32]
        shapes = sorted(tuple(t.shape) for t in saved["actor"].values())
        assert (3, 32) in shapes and (32, 32) in shapes and (32, 1) in shapes


def test_smoke_curve_is_a_png(smoke_run):
    data = (smoke_run[0] / "curve.png").read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000


def test_smoke_summary_json_matches_the_store(smoke_run, smoke_db):
    summary = json.loads((smoke_run[0] / "summary.json").read_text())
    assert {"env_id", "wall_s", "env_steps_per_s", "members"} <= set(summary)
    assert summary["env_id"] == "Pendulum-v1"
    assert summary["wall_s"] > 0
    assert summary["env_steps_per_s"] == pytest.approx(600 / summary["wall_s"])
    assert len(summary["members"]) == 1
    member = summary["members"][0]
    assert {"seed", "episodes", "env_steps", "returns", "eval_return"} <= set(member)
    assert member["seed"] == 0
    assert member["episodes"] == 3
    assert member["env_steps"] == 600
    stored = [r[0] for r in smoke_db.execute("SELECT return FROM episodes ORDER BY episode")]
    assert member["returns"] == stored
    last_eval = smoke_db.execute("SELECT mean_return FROM evals ORDER BY episode DESC").fetchone()
    assert member["eval_return"] == pytest.approx(last_eval[0])


# -- budgets and members through the CLI ----------------------------------------------------------


def test_cli_step_budget(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()  # an empty folder is no previous run: accepted without --overwrite
    argv = ["train", "--steps", "120", "--set", "env.max_episode_steps=50", *FAST,
            "--out", str(out), "--quiet"]  # fmt: skip
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    summary = json.loads((out / "summary.json").read_text())
    [member] = summary["members"]
    assert member["env_steps"] == 120
    assert member["episodes"] == 2
    assert len(member["returns"]) == 2
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM episodes").fetchone() == (2,)
        assert db.execute("SELECT status FROM runs").fetchall() == [("done",)]
    config = load_config(None, file=out / "config.yaml")
    assert (config.train.steps, config.train.episodes) == (120, None)


def test_cli_seeds_trains_one_member_per_seed(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--seeds", "2", "--episodes", "2", "--set", "env.max_episode_steps=30",
            *FAST, "--out", str(out), "--quiet"]  # fmt: skip
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert [m["seed"] for m in summary["members"]] == [0, 1]
    assert [m["episodes"] for m in summary["members"]] == [2, 2]
    assert [m["env_steps"] for m in summary["members"]] == [60, 60]
    assert summary["env_steps_per_s"] == pytest.approx(120 / summary["wall_s"])
    with sqlite3.connect(out / "results.sqlite") as db:
        runs = db.execute("SELECT run_id, seed, status FROM runs ORDER BY seed").fetchall()
        assert [(seed, status) for _, seed, status in runs] == [(0, "done"), (1, "done")]
        for (run_id, _, _), member in zip(runs, summary["members"], strict=True):
            stored = db.execute(
                "SELECT return FROM episodes WHERE run_id = ? ORDER BY episode", (run_id,)
            ).fetchall()
            assert [r[0] for r in stored] == member["returns"]
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"seed0", "seed1"}


def test_a_step_budget_ending_right_after_an_evaluation_keeps_both_evaluations(tmp_path, capsys):
    """The budget ends mid-episode after an evaluated episode: the last policy is evaluated
    and checkpointed again under its own env-step count, never overwriting the earlier one."""
    out = tmp_path / "run"
    argv = ["train", "--steps", "30", *FAST, "--set", "env.max_episode_steps=20"]
    argv += ["--set", "train.eval_every=1", "--set", "train.checkpoint_every=1"]
    rc, _, err = run_cli([*argv, "--out", str(out), "--quiet"], capsys)
    assert rc == 0, err
    with sqlite3.connect(out / "results.sqlite") as db:
        evals = db.execute("SELECT episode, env_steps FROM evals ORDER BY env_steps").fetchall()
        ckpts = db.execute("SELECT env_steps, path FROM checkpoints ORDER BY env_steps").fetchall()
    assert evals == [(1, 20), (1, 30)]
    assert [steps for steps, _ in ckpts] == [20, 30]
    assert all((out / path).is_file() for _, path in ckpts)


def test_the_cli_starts_without_importing_torch():
    """Building the parser stays fast: torch (2 s to import) loads only when a command runs."""
    code = "import sys, ddpglab.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("delay_s", [0.15, 0.3, 0.45, 0.9])
def test_ctrl_c_while_the_command_starts_is_one_line_not_a_traceback(tmp_path, delay_s):
    """SIGINT during the imports (about the first half second) or the first steps ends the
    command with one line; the exact moment it lands varies, the absence of a traceback
    must not."""
    import signal
    import time

    command = ["train", "--preset", "pendulum", "--quiet"]
    process = start_cli_process(
        [*command, "--episodes", "50", "--out", str(tmp_path / "run")],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    time.sleep(delay_s)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 1, err
    assert process.returncode in (130, 128 + signal.SIGINT, -signal.SIGINT), err


def test_a_ctrl_c_while_building_the_parser_ends_with_status_130(monkeypatch, capsys):
    import ddpglab.cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(ddpglab.cli, "build_parser", interrupted)
    try:
        status, _, err = run_cli(["train"], capsys)
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt escaped main()")
    assert status == 130
    assert err == "ddpglab: interrupted\n"


def test_a_ctrl_c_during_a_held_import_lands_after_it(tmp_path, monkeypatch):
    """torch's import runs Python callbacks from C++ (pybind11): a KeyboardInterrupt raised
    inside one aborts the process with a C++ message instead of unwinding. Ctrl-C during
    such an import is held until the import is done, then raised as usual."""
    import signal

    from ddpglab.run_control import import_holding_sigint

    (tmp_path / "slow_module.py").write_text(
        "import os, signal\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "for _ in range(1000):\n"
        "    pass\n"
        "FINISHED = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        import_holding_sigint("slow_module")
    assert sys.modules["slow_module"].FINISHED, "the import was cut short"
    assert signal.getsignal(signal.SIGINT) is before
    del sys.modules["slow_module"]
