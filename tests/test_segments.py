"""Provenance across resumes: every start and resume of a run adds a ``segments`` row with
the commit and host of the process that wrote it; a resume from an earlier state forgets
the segments after it, as it forgets their episodes; ``ddpglab status`` names the commits."""

from __future__ import annotations

import platform
import sqlite3
from contextlib import closing

import pytest
from cli_support import FAST, run_cli

from ddpglab import provenance
from ddpglab.store import ResultsStore

OLD, NEW = "a" * 40, "b" * 40


@pytest.fixture
def commit(monkeypatch):
    """Set the commit the store records, as a process at that commit would."""

    def use(sha: str) -> None:
        monkeypatch.setattr("ddpglab.store.git_commit", lambda: sha)

    return use


def segments(store: ResultsStore, run_id: int) -> list[tuple[int, str, str]]:
    return store.conn.execute(
        "SELECT episode, host, git_commit FROM segments WHERE run_id = ? ORDER BY episode",
        (run_id,),
    ).fetchall()


def test_each_start_and_resume_records_the_code_it_ran(tmp_path, commit):
    host = platform.node()
    commit(OLD)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        running = store.add_run("Pendulum-v1", 0, {})
        pending = store.add_run("Pendulum-v1", 1, {}, status="pending")
        assert segments(store, running) == [(0, host, OLD)]
        assert segments(store, pending) == []  # not started: no code ran yet
        store.start_run(pending, {})
        assert segments(store, pending) == [(0, host, OLD)]
        commit(NEW)
        store.rewind_run(running, 5, 500)
        assert segments(store, running) == [(0, host, OLD), (5, host, NEW)]
        store.rewind_run(running, 3, 300)  # an earlier state: the segment from 5 is gone
        assert segments(store, running) == [(0, host, OLD), (3, host, NEW)]
        store.rewind_run(running, 0, 0)  # from scratch
        assert segments(store, running) == [(0, host, NEW)]
        store.delete_runs([running])
        assert segments(store, running) == []
        assert segments(store, pending) == [(0, host, OLD)]


def test_a_store_written_before_segments_gains_the_table_and_keeps_its_runs(tmp_path, commit):
    commit(OLD)
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        run_id = store.add_run("Pendulum-v1", 0, {})
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TABLE segments")
    with ResultsStore(path) as store:
        assert segments(store, run_id) == []
        store.rewind_run(run_id, 2, 200)
        assert [s[0] for s in segments(store, run_id)] == [2]
        assert store.runs()[0]["git_commit"] == OLD


def test_a_continued_run_has_a_segment_per_process_and_status_names_them(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--episodes", "2", "--quiet", *FAST, "--out", str(out)]
    argv += ["--set", "env.max_episode_steps=30", "--set", "train.keep_state=true"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    provenance.git_commit.cache_clear()  # the next process would look again
    rc, _, err = run_cli(["train", "--out", str(out), "--resume", "--episodes", "3"], capsys)
    assert rc == 0, err
    with ResultsStore(out / "results.sqlite") as store:
        assert [episode for episode, *_ in segments(store, 1)] == [0, 2]
        commits = {c for *_, c in segments(store, 1)}
    assert commits == {provenance.git_commit()}
    rc, text, err = run_cli(["status", str(out)], capsys)
    assert rc == 0, err
    (line,) = [line for line in text.splitlines() if line.startswith("code:")]
    shown = "unknown" if None in commits else provenance.git_commit()[:7]
    assert line.startswith(f"code: started or resumed at {shown}") and line.endswith("(2x)")
