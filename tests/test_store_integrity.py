"""The results store under SIGKILL, and what a run's row records.

A child process writes runs, episodes, evals and checkpoints through ResultsStore as fast
as it can and is killed with SIGKILL after a random delay (drawn from a generator seeded
in the test, the seed printed and in the failure messages), many times over the same store
files. After every kill the store must open, pass ``PRAGMA integrity_check``, still be in
WAL mode, and hold every add_episodes call whole or not at all.
"""

from __future__ import annotations

import json
import platform
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddpglab import provenance, store
from ddpglab.store import ResultsStore

MEMBERS = 24  # runs per round of the writer, like the seeds of one training


def batch_size(g: int) -> int:
    """How many rows (members) the writer's add_episodes call number ``g`` writes."""
    return 1 + (g * 7) % MEMBERS


# The writer. Call number g of add_episodes writes batch_size(g) rows, one per member, all
# ending on env step 10 * g (as a vectorised trainer's episodes that end on the same step)
# and all marked with threshold = g; after each call returns (committed), it appends g to
# its log. It resumes after the largest g in the store, so kills accumulate in one file.
WRITER = f"""
import sys
from ddpglab import store as S

S.library_versions = lambda: {{"python": "test"}}  # skip importing torch: start fast
MEMBERS = {MEMBERS}
path, log = sys.argv[1], open(sys.argv[2], "a", buffering=1)
st = S.ResultsStore(path)
last = st.conn.execute("SELECT MAX(threshold) FROM episodes").fetchone()[0]
g = 0 if last is None else int(last) + 1
while True:
    runs = []
    for m in range(MEMBERS):
        if m % 2:
            rid = st.add_run("Pendulum-v1", m, {{"g": g}}, "kill", status="pending")
            st.start_run(rid, {{"g": g, "started": True}})
        else:
            rid = st.add_run("Pendulum-v1", m, {{"g": g}}, "kill")
        runs.append(rid)
    episodes = [0] * MEMBERS
    for _ in range(40):
        n = 1 + (g * 7) % MEMBERS
        rows = []
        for m in range(n):
            row = (runs[m], episodes[m], -100.0 - m, 10, 10 * g, 0.01 * g, 0.5, -3.0, g)
            rows.append((*row, 0, -5.0, -9.0))
            episodes[m] += 1
        st.add_episodes(rows)
        log.write(f"{{g}}\\n")
        if g % 3 == 0:
            st.add_eval(runs[0], episodes[0], 10 * g, [-100.0, -120.0, -90.0])
        if g % 7 == 0:
            st.add_checkpoint(runs[0], episodes[0], 10 * g, f"checkpoints/{{g}}.pt")
        g += 1
    for m, rid in enumerate(runs):
        st.finish_run(rid, "failed" if m == 5 else "done", "boom" if m == 5 else None)
"""


def check_store(path: Path, logged: list[int], kills: int) -> int:
    """Assert the killed writer's store is whole; returns how many add_episodes calls it
    holds."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # A writer killed between creating the file and setting WAL mode leaves an empty
        # file: an empty database, which ResultsStore opens (and makes WAL) as any other.
        if path.stat().st_size > 0:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        tables = {t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:  # killed before the schema was committed: an empty store
            held = 0
        else:  # the schema is made in one transaction
            assert tables == {
                "runs",
                "episodes",
                "evals",
                "checkpoints",
                "study",
                "replay_stats",
                "segments",
            }
            held = check_calls(conn, kills)
    finally:
        conn.close()
    # Every call the writer saw return is durable; at most the one in flight beyond it.
    if logged:
        assert max(logged) < held <= max(logged) + 2
    with ResultsStore(path) as reopened:  # opens (and would migrate) as ddpglab does
        assert reopened.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert reopened.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    return held


def check_calls(conn: sqlite3.Connection, kills: int) -> int:
    """Assert every add_episodes call is whole and the calls held are the first ones made;
    returns how many there are."""
    groups = conn.execute(
        "SELECT threshold, COUNT(*), COUNT(DISTINCT run_id), MIN(env_steps), MAX(env_steps)"
        " FROM episodes GROUP BY threshold ORDER BY threshold"
    ).fetchall()
    for g, (marker, count, runs, lo, hi) in enumerate(groups):
        assert marker == g, f"add_episodes call {g} is missing, a later one is present"
        assert count == runs == batch_size(g), f"call {g}: {count} of {batch_size(g)} rows"
        assert lo == hi == 10 * g
    # Each run's episodes are numbered 0..n-1: no episode lost in the middle.
    gaps = conn.execute(
        "SELECT run_id FROM episodes GROUP BY run_id HAVING MAX(episode) + 1 != COUNT(*)"
    ).fetchall()
    assert gaps == []
    # The writer starts each pending run at once: only a kill in between leaves one.
    pending = conn.execute(
        "SELECT COUNT(*), COUNT(e.run_id) FROM runs r LEFT JOIN episodes e USING (run_id)"
        " WHERE r.status = 'pending'"
    ).fetchone()
    assert pending[0] <= kills and pending[1] == 0
    return len(groups)


KILL_DELAY_SEED = 9  # the kill delays' generator: a failure names it, to replay the delays


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_whole_episodes(tmp_path):
    rng = random.Random(KILL_DELAY_SEED)
    drawn = f"kill delays drawn with random.Random({KILL_DELAY_SEED})"
    print(drawn)
    kills, stores, deadline = 0, 0, time.monotonic() + 15.0
    grown = []  # calls held after each kill of the current store
    while kills < 30 and time.monotonic() < deadline:
        if kills % 6 == 0:  # a fresh file now and then: kills while the schema is made
            stores += 1
            path, log = tmp_path / f"s{stores}.sqlite", tmp_path / f"s{stores}.log"
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            child.wait(timeout=rng.uniform(0.02, 0.4))
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
        child.wait()
        err = child.stderr.read().decode()
        child.stderr.close()
        assert child.returncode == -signal.SIGKILL, (
            f"the writer stopped by itself ({drawn}):\n{err}"
        )
        kills += 1
        if not path.exists():
            continue  # killed before it created the store
        logged = [int(x) for x in log.read_text().split()] if log.exists() else []
        grown.append(check_store(path, logged, kills))
    assert kills >= 15, drawn  # 30 unless the machine is very busy
    assert max(grown) > 200, drawn  # the writers got well into their loops, across kills


# -- what a run's row records ------------------------------------------------------------


@pytest.fixture
def fresh_git_commit():
    """git_commit() is cached per process: start and end each test with a clear cache."""
    provenance.git_commit.cache_clear()
    yield
    provenance.git_commit.cache_clear()


def checkout_head() -> str | None:
    package = Path(store.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def test_run_row_records_status_host_versions_and_git_commit(tmp_path, fresh_git_commit):
    head = checkout_head()
    if head is None:
        pytest.skip("ddpglab is not running from a git checkout")
    with ResultsStore(tmp_path / "results.sqlite") as st:
        done = st.add_run("Pendulum-v1", 0, {"a": 1}, "uniform")
        failed = st.add_run("Pendulum-v1", 1, {"a": 1}, "uniform", status="pending")
        pending = st.add_run("Pendulum-v1", 2, {"a": 1}, "uniform", status="pending")
        assert [r["status"] for r in st.runs()] == ["running", "pending", "pending"]
        st.start_run(failed, {"a": 2})
        st.finish_run(done)
        st.finish_run(failed, "failed", "RuntimeError: boom")
        runs = {r["run_id"]: r for r in st.runs()}
    assert runs[done]["status"] == "done" and runs[done]["error"] is None
    assert runs[failed]["status"] == "failed"
    assert runs[failed]["error"] == "RuntimeError: boom"
    assert runs[pending]["status"] == "pending" and runs[pending]["started_at"] is None
    for run in runs.values():
        assert run["host"] == platform.node()
        versions = json.loads(run["versions"])
        assert {"python", "ddpglab", "torch", "numpy", "gymnasium"} <= set(versions)
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", run["git_commit"])
        assert run["git_commit"].split("-")[0] == head


def fake_git(ls_files: str = "src/ddpglab/__init__.py\n", status: str = ""):
    def run(cmd, **kwargs):
        out = ls_files if "ls-files" in cmd else status
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    return run


def raising(err: BaseException):
    def run(cmd, **kwargs):
        raise err

    return run


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "git_run, expected",
    [
        (raising(FileNotFoundError("git")), None),  # no git on this machine
        (raising(subprocess.TimeoutExpired("git", 5)), None),
        (raising(subprocess.CalledProcessError(128, "git")), None),  # not a checkout
        (fake_git(ls_files=""), None),  # inside some other repository, untracked there
        (fake_git(status="# branch.oid (initial)\n# branch.head main\n"), None),
        (fake_git(status=f"# branch.oid {SHA}\n# branch.head main\n"), SHA),
        (
            fake_git(status=f"# branch.oid {SHA}\n1 .M N... 100644 100644 100644 a b store.py\n"),
            SHA + "-dirty",
        ),
    ],
)
def test_git_commit_lookup(monkeypatch, fresh_git_commit, git_run, expected):
    monkeypatch.setattr(provenance.subprocess, "run", git_run)
    assert provenance.git_commit() == expected


def test_failed_git_lookup_records_null(tmp_path, monkeypatch, fresh_git_commit):
    monkeypatch.setattr(provenance.subprocess, "run", raising(FileNotFoundError("git")))
    with ResultsStore(tmp_path / "results.sqlite") as st:
        st.add_run("Pendulum-v1", 0, {})
        (run,) = st.runs()
    assert run["git_commit"] is None
    assert run["host"] == platform.node() and run["status"] == "running"


def test_store_without_git_commit_column_is_migrated(tmp_path, fresh_git_commit, monkeypatch):
    path = tmp_path / "results.sqlite"
    segments = r"CREATE TABLE IF NOT EXISTS segments .*?\n\);\n"  # newer than the column
    old_schema = re.sub(segments, "", store.SCHEMA, flags=re.S)
    old_schema = re.sub(r"\n\s*git_commit\s+TEXT,[^\n]*", "", old_schema)
    assert "git_commit" not in old_schema
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(old_schema)
    conn.execute(
        "INSERT INTO runs (env_id, seed, config_json, status) VALUES ('Pendulum-v1', 0, '{}',"
        " 'done')"
    )
    conn.commit()
    conn.close()
    monkeypatch.setattr(provenance.subprocess, "run", fake_git(status=f"# branch.oid {SHA}\n"))
    with ResultsStore(path) as st:
        st.add_run("Pendulum-v1", 1, {})
        runs = st.runs()
    assert [(r["seed"], r["status"], r["git_commit"]) for r in runs] == [
        (0, "done", None),
        (1, "running", SHA),
    ]
    with ResultsStore(path) as st:  # opening again changes nothing
        assert [r["git_commit"] for r in st.runs()] == [None, SHA]
