"""``ddpglab tune``: one search per folder (its lock), and an --out that cannot be one."""

from __future__ import annotations

import optuna
import pytest
from cli_support import run_cli
from tune_support import assert_one_line_refusal, write_spec

from ddpglab.config import ConfigError
from ddpglab.run_control import folder_lock
from ddpglab.tune.search import STORAGE, open_search, run_search, storage_url
from ddpglab.tune.spec import load_search


def test_a_second_tune_on_a_locked_folder_is_refused_and_touches_nothing(tmp_path, capsys):
    """Another tune holds the folder with a trial running: a second one must neither fail
    that trial as interrupted nor queue it again (the first would then crash telling it)."""
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    study = open_search(load_search(spec), out)
    running = study.ask()
    running.suggest_float("agent.actor_lr", 1e-4, 1e-2, log=True)

    def files() -> dict[str, tuple[bytes, int]]:  # all but the lock file (reopened to lock)
        return {
            p.name: (p.read_bytes(), p.stat().st_mtime_ns)
            for p in out.iterdir()
            if p.name != ".lock"
        }

    with folder_lock(out, "held by the test"):
        before = files()
        argv = ["tune", str(spec), "--out", str(out), "--workers", "1", "--trials", "1"]
        rc, stdout, err = run_cli(argv, capsys)
        after = files()
    assert_one_line_refusal(rc, err, "another tune is running in", str(out))
    assert stdout == ""
    assert after == before and STORAGE in after  # the storage byte for byte; no new file
    trials = optuna.load_study(study_name="tiny", storage=storage_url(out)).trials
    assert [t.state.name for t in trials] == ["RUNNING"]
    assert "interrupted" not in trials[0].user_attrs


def test_a_search_holds_its_folder_lock_until_it_ends(tmp_path):
    out = tmp_path / "out"
    search = load_search(write_spec(tmp_path, trials=1, episodes=1))
    refusals = []

    def on_trial(trial, outcome) -> None:
        try:
            with folder_lock(out, "another one"):
                refusals.append("the lock was free during a trial")
        except ConfigError as err:
            refusals.append(str(err))

    result = run_search(search, out, workers=1, torch_threads=1, on_trial=on_trial)
    assert result.complete == 1 and refusals == ["another one"]
    with folder_lock(out, "still held after the search"):
        pass


@pytest.mark.parametrize("below", [False, True])
def test_an_out_that_is_a_file_is_refused_and_left_alone(tmp_path, capsys, below):
    """--out an existing file (or a path below one): status 2, one line, the file intact."""
    taken = tmp_path / "taken"
    taken.write_bytes(b"not a folder\n")
    stamp = taken.stat().st_mtime_ns
    out = taken / "sub" if below else taken
    rc, stdout, err = run_cli(["tune", str(write_spec(tmp_path)), "--out", str(out)], capsys)
    mention = "cannot use --out" if below else "exists and is not a folder"
    assert_one_line_refusal(rc, err, mention, str(out))
    assert stdout == ""
    assert taken.read_bytes() == b"not a folder\n" and taken.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search.yaml", "taken"]
