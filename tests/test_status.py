"""``ddpglab status DIR``: where a run or study stands, from its store alone (read while it
runs): runs by status with stops told from failures, progress towards the budget, and the
time left at the rate since the latest start or resume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_support import FAST, run_cli
from report_support import two_variant_study

from ddpglab.report.status import by_variant, read_progress, recent_rate, run_status
from ddpglab.run_control import folder_lock, folder_locked
from ddpglab.store import EpisodeRow, ResultsStore


def add_run(store, variant, seed, walls_and_steps, status=None, error=None, steps=1000):
    """A run with a budget of ``steps`` env steps and one episode per (wall_s, env_steps)."""
    run_id = store.add_run("Pendulum-v1", seed, {"train": {"steps": steps}}, variant)
    rows = [
        EpisodeRow(run_id, i + 1, -100.0, 100, env_steps, wall, None, None, None, 0, None, None)
        for i, (wall, env_steps) in enumerate(walls_and_steps)
    ]
    store.add_episodes(rows)
    if status is not None:
        store.finish_run(run_id, status, error)


@pytest.fixture
def study_folder(tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        for seed in (0, 1):
            add_run(store, "a", seed, [(1.0, 500), (2.0, 1000)], "done")
        # 100 steps per 10 s of training: 10 steps/s
        add_run(store, "b", 0, [(0.0, 100), (10.0, 200), (20.0, 300), (30.0, 400), (40.0, 500)])
        add_run(store, "b", 1, [(10.0, 300)], "failed", "KeyboardInterrupt: study interrupted")
        pending = store.add_run("Pendulum-v1", 0, {"train": {"steps": 1000}}, "c", "pending")
        add_run(store, "d", 0, [(1.0, 100)], "failed", "FloatingPointError: a NaN loss")
    assert pending
    return tmp_path


def test_a_stop_by_a_signal_is_not_a_failure_and_a_run_without_its_process_says_so():
    assert run_status("failed", "KeyboardInterrupt: study interrupted") == "stopped"
    assert run_status("failed", "TrainingInterrupted: stopped by SIGTERM") == "stopped"
    assert run_status("failed", "FloatingPointError: a NaN loss") == "failed"
    assert run_status("running", None, locked=True) == "running"
    assert run_status("running", None, locked=False) == "no process"
    assert run_status("running", None, locked=None) == "running"  # cannot tell: as stored
    assert run_status("done", None, locked=False) == "done"


def test_the_rate_is_that_of_the_latest_window_of_training():
    walls = [0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0]
    steps = [10_000, 11_000, 12_000, 13_000, 14_000, 15_000, 16_000, 17_000, 18_000, 19_000]
    steps = [0, *steps]  # the first 1e4 steps came fast (random actions, no updates)
    assert recent_rate(steps, walls, window_s=600.0) == pytest.approx(6000 / 600)
    assert recent_rate(steps, walls, window_s=1e6) == pytest.approx(19_000 / 1000)
    assert recent_rate([100, 300], [10.0, 5000.0], window_s=60.0) == pytest.approx(200 / 4990)
    assert recent_rate([100], [10.0]) is None  # one episode: no time to divide by
    assert recent_rate([], []) is None


def test_folder_locked_sees_a_holder_without_taking_the_lock(tmp_path):
    if not Path("/proc/locks").exists():
        pytest.skip("folder_locked reads Linux's /proc/locks")
    assert folder_locked(tmp_path) is False  # no lock file at all
    with folder_lock(tmp_path, "busy"):
        assert folder_locked(tmp_path) is True
        assert folder_locked(tmp_path / "other") is False
    assert folder_locked(tmp_path) is False


def test_each_variant_counts_its_runs_its_progress_and_its_time_left(study_folder):
    with ResultsStore(study_folder / "results.sqlite") as store:
        variants = {v.variant: v for v in by_variant(read_progress(store.conn, locked=True))}
    assert list(variants) == ["a", "b", "c", "d"]
    a, b, c, d = variants.values()
    assert dict(a.statuses) == {"done": 2} and a.fraction == 1.0 and a.seconds_left is None
    assert dict(b.statuses) == {"running": 1, "stopped": 1}
    assert (b.least, b.most) == (300, 500) and b.fraction == pytest.approx(0.4)
    assert b.seconds_left == pytest.approx(50.0)  # (1000 - 500) steps at 10 steps/s
    assert dict(c.statuses) == {"pending": 1} and (c.least, c.most, c.fraction) == (0, 0, 0.0)
    assert dict(d.statuses) == {"failed": 1} and d.seconds_left is None


def test_the_command_prints_a_row_per_variant_and_the_share_done(study_folder, capsys):
    with folder_lock(study_folder, "busy"):  # as the study holds it while it runs
        rc, out, err = run_cli(["status", str(study_folder)], capsys)
    assert rc == 0, err
    rows = {cells[0]: cells[1:] for cells in table_rows(out)}
    assert rows["a"] == ["2 done", "1000", "100 %", "-"]
    assert rows["b"] == ["1 running, 1 stopped", "300-500", "40 %", "1 min"]
    assert rows["c"] == ["1 pending", "0", "0 %", "-"]
    assert rows["d"] == ["1 failed", "100", "10 %", "-"]
    assert "budget: 1000 steps per run" in out
    assert "48.3 % of all runs' budgets done" in out  # (1 + 1 + 0.5 + 0.3 + 0 + 0.1) / 6
    assert "left: at each running member's rate over its last 10 min" in out


def test_runs_left_running_by_a_killed_process_read_as_having_none(study_folder, capsys):
    if not Path("/proc/locks").exists():
        pytest.skip("folder_locked reads Linux's /proc/locks")
    rc, out, err = run_cli(["status", str(study_folder)], capsys)  # nobody holds the lock
    assert rc == 0, err
    rows = {cells[0]: cells[1:] for cells in table_rows(out)}
    assert rows["b"] == ["1 no process, 1 stopped", "300-500", "40 %", "-"]
    assert "left:" not in out and "no process: running in the store" in out


def test_a_train_folder_is_shown_by_seed_in_episodes(tmp_path, capsys):
    out_dir = tmp_path / "run"
    argv = ["train", "--episodes", "2", "--quiet", *FAST, "--seeds", "0,1", "--out"]
    rc, _, err = run_cli([*argv, str(out_dir), "--set", "env.max_episode_steps=30"], capsys)
    assert rc == 0, err
    rc, out, err = run_cli(["status", str(out_dir)], capsys)
    assert rc == 0, err
    rows = {cells[0]: cells[1:] for cells in table_rows(out)}
    assert rows == {
        "seed 0": ["1 done", "2", "100 %", "-"],
        "seed 1": ["1 done", "2", "100 %", "-"],
    }
    assert "budget: 2 episodes per run" in out


@pytest.mark.parametrize("make", ["missing", "empty folder", "not a store"])
def test_a_folder_without_a_store_is_refused_and_left_as_it_was(tmp_path, capsys, make):
    folder = tmp_path / "f"
    if make != "missing":
        folder.mkdir()
    if make == "not a store":
        (folder / "results.sqlite").write_text("not a database")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    rc, out, err = run_cli(["status", str(folder)], capsys)
    assert rc == 2 and not out
    assert err.startswith("ddpglab: error:") and len(err.strip().splitlines()) == 1, err
    assert ("folder" if make == "missing" else "results") in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert folder.exists() == (make != "missing")


def table_rows(out: str) -> list[list[str]]:
    """The body rows of a rich table printed as text: the cells between the box lines."""
    return [
        [cell.strip() for cell in line.strip("│ ").split("│")]
        for line in out.splitlines()
        if re.match(r"^│", line)
    ]


def test_runs_without_a_recorded_budget_show_their_progress_without_a_share(tmp_path, capsys):
    folder, _ = two_variant_study(tmp_path / "study", episodes=12)
    with folder_lock(folder, "busy"):
        rc, out, err = run_cli(["status", str(folder)], capsys)
    assert rc == 0, err
    rows = {cells[0]: cells[1:] for cells in table_rows(out)}
    assert rows["stratified-thr0.5"] == ["3 done", "12 episodes", "-", "-"]
    assert rows["softmax-b1"] == ["3 done, 1 running", "9-12 episodes", "-", "-"]
    assert "budgets done" not in out


def test_a_variant_whose_runs_have_different_budgets_says_so(tmp_path, capsys):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        add_run(store, "e", 0, [(1.0, 500)], "failed", "RuntimeError: x", steps=1000)
        add_run(store, "e", 1, [(1.0, 500)], "failed", "RuntimeError: x", steps=2000)
    rc, out, err = run_cli(["status", str(tmp_path)], capsys)
    assert rc == 0, err
    assert [cells for cells in table_rows(out)] == [
        ["e", "2 failed", "500 steps (budgets differ)", "38 %", "-"]  # (1/2 + 1/4) / 2
    ]
    assert "budget:" not in out
