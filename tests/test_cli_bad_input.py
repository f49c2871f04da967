"""``ddpglab train`` refuses bad input: one line on stderr, status 2, nothing written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cli_support import FAST, assert_refused, run_cli

from ddpglab.config import ConfigError, load_config
from ddpglab.run_control import folder_lock
from ddpglab.training.loop import Trainer

# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--env", "NoSuchEnv-v0"], ["NoSuchEnv-v0"]),
        (["--env", "CartPole-v1"], ["CartPole-v1", "Discrete"]),
        (["--set", "agent.lrr=1"], ["agent.lrr"]),
        (["--set", "agent.batch_size=abc"], ["agent.batch_size"]),
        (["--set", "agent.actor_lr=-1e-3"], ["agent.actor_lr"]),
        (["--set", "agent.critic_lr=-0.1"], ["agent.critic_lr"]),
        (["--set", "agent.tau=0"], ["agent.tau"]),
        (["--set", "agent.tau=1.5"], ["agent.tau"]),
        (["--set", "agent.gamma=-0.1"], ["agent.gamma"]),
        (["--set", "agent.gamma=1.5"], ["agent.gamma"]),
        (["--set", "agent.batch_size=128", "--set", "replay.capacity=100"], ["batch_size"]),
        (["--set", "agent.tau"], ["dotted.key=value"]),
        (["--set", "agent=1"], ["agent"]),
        (["--preset", "nope"], ["nope"]),
        (["--seeds", "1,1"], ["seeds"]),
        (["--replay", "fifo"], ["replay.kind"]),
        (["--set", "replay.softmax.beta=0"], ["replay.softmax.beta"]),
        (["--set", "replay.softmax.beta=-1"], ["replay.softmax.beta"]),
        (["--set", "replay.stratified.good_ratio=1.2"], ["replay.stratified.good_ratio"]),
        (["--set", "replay.stratified.good_ratio=-0.1"], ["replay.stratified.good_ratio"]),
        (["--set", "replay.n_step=0"], ["replay.n_step"]),
        (["--set", "replay.window.start=200000"], ["window.start", "capacity"]),
        (
            ["--set", "replay.window.schedule=linear", "--set", "replay.window.start=10"],
            ["replay.window", "end"],
        ),
        (["--set", "replay.window.start=0"], ["replay.window.start"]),
    ],
)
def test_bad_input_is_refused_with_one_line_and_status_2(tmp_path, capsys, args, mentions):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", *args, "--episodes", "1", "--out", str(out)], capsys)
    assert_refused(rc, err, out, *mentions)


def test_missing_config_file_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    missing = tmp_path / "nope.yaml"
    rc, _, err = run_cli(["train", "--config", str(missing), "--out", str(out)], capsys)
    assert_refused(rc, err, out, "nope.yaml")


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--episodes", "0"],
        ["train", "--steps", "-5"],
        ["train", "--seeds", "0"],
        ["train", "--seeds", "x"],
        ["train", "--seed", "x"],
        ["train", "--seed", "1", "--seeds", "2"],
        ["train", "--episodes", "2", "--steps", "5"],
        ["train", "--no-such-flag"],
        ["fly"],
    ],
)
def test_malformed_command_lines_exit_2_with_one_line(tmp_path, capsys, args):
    out = tmp_path / "run"
    rc, _, err = run_cli([*args, "--out", str(out)], capsys)
    assert_refused(rc, err, out)


def test_missing_out_is_refused(capsys):
    rc, _, err = run_cli(["train", "--episodes", "1"], capsys)
    assert rc == 2
    assert "--out" in err
    assert len(err.strip().splitlines()) == 1


def test_negative_seed_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run_cli(
        ["train", "--seed", "-1", "--episodes", "1", *FAST, "--out", str(out)], capsys
    )
    assert_refused(rc, err, out, "seed")


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.write_text("not a folder")
    rc, _, err = run_cli(["train", "--episodes", "1", "--out", str(out)], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert out.read_text() == "not a folder"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def previous_run(tmp_path) -> Path:
    out = tmp_path / "run"
    (out / "checkpoints" / "seed7").mkdir(parents=True)
    (out / "config.yaml").write_text("previous run\n")
    (out / "results.sqlite").write_bytes(b"previous results")
    (out / "checkpoints" / "seed7" / "episode00009.pt").write_bytes(b"weights")
    (out / "notes.txt").write_text("my notes\n")
    return out


def test_out_holding_another_run_is_refused_and_left_untouched(previous_run, capsys):
    before = snapshot(previous_run)
    argv = ["train", "--episodes", "1", *FAST, "--out", str(previous_run)]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "--overwrite" in err
    assert snapshot(previous_run) == before


def test_overwrite_replaces_the_previous_run_but_keeps_other_files(previous_run, capsys):
    argv = [
        "train", "--episodes", "1", "--set", "env.max_episode_steps=30", *FAST,
        "--out", str(previous_run), "--overwrite", "--quiet",
    ]  # fmt: skip
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert load_config(None, file=previous_run / "config.yaml").env.max_episode_steps == 30
    assert not (previous_run / "checkpoints" / "seed7" / "episode00009.pt").exists()
    with sqlite3.connect(previous_run / "results.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)
    assert (previous_run / "notes.txt").read_text() == "my notes\n"


def test_a_run_folder_in_use_is_refused_even_with_overwrite(previous_run, capsys):
    """A second writer while the first trains would mix two runs in one folder."""
    before = snapshot(previous_run)
    argv = ["train", "--episodes", "1", *FAST, "--out", str(previous_run), "--overwrite"]
    with folder_lock(previous_run, "held by the test"):
        rc, stdout, err = run_cli(argv, capsys)
    assert rc == 2 and "Traceback" not in err and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "another run is training in" in lines[0], err
    assert {k: v for k, v in snapshot(previous_run).items() if k != ".lock"} == before


def test_a_train_holds_its_folder_lock_while_it_trains(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    seen = []

    def run_and_try_the_lock(self):
        try:
            with folder_lock(out, "free"):
                seen.append("the lock was free while training")
        except ConfigError as err:
            seen.append(str(err))
        return original_run(self)

    original_run = Trainer.run
    monkeypatch.setattr(Trainer, "run", run_and_try_the_lock)
    argv = ["train", "--episodes", "1", "--set", "env.max_episode_steps=10", *FAST]
    rc, _, err = run_cli([*argv, "--out", str(out), "--quiet"], capsys)
    assert rc == 0, err
    assert seen == ["free"]


DERIVED_OUTPUTS = [
    "report/table.md",
    "report/curves.png",
    "export/runs/.ddpglab-export",
    "export/runs/Pendulum-v1/run_0/loss.csv",
    "export/episodes.parquet",
    "export/replay_stats.parquet",
    "animation.gif",
    "animation.mp4",
]


def test_overwrite_also_removes_what_was_derived_from_the_old_run(previous_run, capsys):
    for name in DERIVED_OUTPUTS:
        (previous_run / name).parent.mkdir(parents=True, exist_ok=True)
        (previous_run / name).write_text("about the old run\n")
    (previous_run / "export" / "mine.csv").write_text("my own file\n")
    argv = [
        "train", "--episodes", "1", "--set", "env.max_episode_steps=10", *FAST,
        "--out", str(previous_run), "--overwrite", "--quiet",
    ]  # fmt: skip
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    left = [name for name in DERIVED_OUTPUTS if (previous_run / name).exists()]
    assert left == [], left
    assert (previous_run / "notes.txt").read_text() == "my notes\n"
    assert (previous_run / "export" / "mine.csv").read_text() == "my own file\n"


def test_a_folder_holding_only_a_report_is_refused_without_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "report").mkdir(parents=True)
    (out / "report" / "table.md").write_text("about an old run\n")
    rc, _, err = run_cli(["train", "--episodes", "1", *FAST, "--out", str(out)], capsys)
    assert rc == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["report"]


# -- messages a new user met: each says what is wrong in the user's words ------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--seeds", "-1"],
            "ddpglab train: error: argument --seeds: expected a count >= 1 or a list like "
            "1,2,3: '-1'",
        ),
        (
            ["--seeds", "1,-2"],
            "ddpglab train: error: argument --seeds: a seed is an integer >= 0: '-2'",
        ),
        (
            ["--seed=-1"],
            "ddpglab train: error: argument --seed: a seed is an integer >= 0: '-1'",
        ),
    ],
)
def test_seed_mistakes_name_the_option_once_and_not_the_config_key(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", *args, "--episodes", "1", "--out", str(out)], capsys)
    assert_refused(rc, err, out)
    assert err.strip() == message


def test_a_mistyped_key_in_a_config_file_lists_the_valid_keys_as_set_does(tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text("agent:\n  taux: 0.01\n")
    out = tmp_path / "run"
    rc, _, from_file = run_cli(["train", "--config", str(config), "--out", str(out)], capsys)
    assert_refused(rc, from_file, out, "agent.taux")
    rc, _, from_set = run_cli(["train", "--set", "agent.taux=0.01", "--out", str(out)], capsys)
    assert_refused(rc, from_set, out)
    listed = from_set[from_set.index("unknown config key") :]
    assert "(agent has: hidden, actor, critic," in listed
    assert from_file.strip().endswith(listed.strip())


def test_a_folder_given_as_config_is_called_a_folder(tmp_path, capsys):
    folder = tmp_path / "configs"
    folder.mkdir()
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", "--config", str(folder), "--out", str(out)], capsys)
    assert_refused(rc, err, out)
    assert err.strip() == f"ddpglab: error: config file {folder} is a folder, not a file"


# -- inputs found in review: each once ended in a traceback ---------------------------------


def test_a_seed_beyond_32_bits_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", "--seed", str(2**63), *FAST, "--out", str(out)], capsys)
    assert_refused(rc, err, out, "train.seeds")


def test_a_replay_capacity_larger_than_memory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--episodes", "1", *FAST, "--set", "replay.capacity=10000000000"]
    rc, _, err = run_cli([*argv, "--out", str(out)], capsys)
    assert_refused(rc, err, out, "replay.capacity", "GiB")


def test_a_config_section_that_is_not_a_mapping_is_refused(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("agent: [1, 2]\n")
    out = tmp_path / "run"
    argv = ["train", "--config", str(config), "--set", "agent.tau=0.01", "--out", str(out)]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, out, "agent")


def test_a_config_file_that_is_not_text_is_refused(tmp_path, capsys):
    config = tmp_path / "binary.yaml"
    config.write_bytes(b"\xff\xfe\x00\x81 not utf-8")
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", "--config", str(config), "--out", str(out)], capsys)
    assert_refused(rc, err, out, "binary.yaml")


def test_an_out_folder_below_a_file_is_refused(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    out = a_file / "run"
    rc, _, err = run_cli(["train", "--episodes", "1", *FAST, "--out", str(out)], capsys)
    assert_refused(rc, err, out, "--out")
    assert a_file.read_text() == "not a folder"


def test_an_empty_env_id_is_refused_not_replaced_by_the_default(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = run_cli(["train", "--env", "", *FAST, "--out", str(out)], capsys)
    assert_refused(rc, err, out, "env")
