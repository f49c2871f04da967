"""ddpglab study stopped by Ctrl-C or SIGTERM: the workers stop, the store stays
consistent, the exit status is 130, and every saved state matches the store."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cli_support import start_cli_process
from study_support import fast_spec, returns_by_pair, runs_of, write_spec

from ddpglab.state_files import load_state


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_workers_keeps_the_store_consistent_and_exits_130(tmp_path, signum):
    """Ctrl-C, or SIGTERM to the whole process group (how a session or a scheduler ends
    it), stops the study the same way."""
    spec = write_spec(tmp_path, fast_spec(episodes=500))
    out = tmp_path / "study"
    argv = ["study", str(spec), "--out", str(out), "--threads", "1", "--quiet"]
    # A session of its own: SIGINT to its process group is what Ctrl-C in a terminal sends.
    # SIGINT's default action restored first: a suite started in the background (`cmd &`
    # in a script) passes SIGINT on as ignored, and Python then keeps ignoring it.
    proc = start_cli_process(
        argv,
        env={"OMP_NUM_THREADS": "1"},
        start_new_session=True,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not _episodes_stored(out) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(proc.pid, signum)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            tree = subprocess.run(
                ["ps", "-o", "pid,stat,etime,args", "-g", str(proc.pid)],
                capture_output=True,
                text=True,
            ).stdout
            pytest.fail(f"the study did not exit within 90 s of Ctrl-C; its processes:\n{tree}")
        try:  # stderr ends when every process that inherited it is gone
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the study exited but a process it started still holds its stderr")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err.decode()
    runs = runs_of(out)
    assert runs and {r["status"] for r in runs} == {"failed"}
    reasons = {"KeyboardInterrupt: study interrupted"}
    if signum == signal.SIGTERM:  # the workers got it too, and may stop before being told
        reasons.add("TrainingInterrupted: stopped by SIGTERM")
    assert {r["error"] for r in runs} <= reasons
    assert all(0 < len(returns) < 500 for returns in returns_by_pair(out).values())
    # Each worker saved its state as it stopped, and the store holds every episode the
    # state counts, so a rerun continues from it without a gap.
    states = list((out / "runs").glob("*/state-*.npz"))
    assert states
    stored = {pair: len(returns) for pair, returns in returns_by_pair(out).items()}
    for path in states:
        saved = load_state(path, arrays=False)
        for member in saved["members"]:
            assert stored[(path.parent.name, member["seed"])] >= member["episodes"]


def _episodes_stored(out: Path) -> bool:
    if not (out / "results.sqlite").exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(out / "results.sqlite")) as conn:
            rows = conn.execute("SELECT COUNT(DISTINCT run_id) FROM episodes").fetchone()
        return rows[0] >= 4
    except sqlite3.OperationalError:  # the tables are being created
        return False
