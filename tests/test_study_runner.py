"""Running studies: parallel workers into one store, resume, refusals, failures, Ctrl-C.

Workers are fresh processes (forked from a fork server, or spawned) that get this process's
sys.path, which pytest gave this folder. The envs that fail on purpose are registered
below, at import of this module, and named ``test_study_runner:<id>``, which makes
gymnasium import this module in the worker too. Workers run one torch thread each: tiny
networks are slowest on more (and the test machine is shared).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import yaml
from cli_support import assert_refused, run_cli, start_cli_process
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from ddpglab.state_files import load_state
from ddpglab.store import ResultsStore
from ddpglab.study import load_study, run_study
from ddpglab.study.commands import write_report_if_available
from ddpglab.study.local_backend import death_reason

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "studies" / "smoke.yaml"


class FailingPendulum(PendulumEnv):
    """Pendulum whose ``step`` fails after ``after`` steps in its process (each episode runs
    in a fresh env, so they are counted across instances): raising, or killing the process."""

    steps_in_process = 0

    def __init__(self, after: int, how: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.after, self.how = after, how

    def step(self, action):
        FailingPendulum.steps_in_process += 1
        if FailingPendulum.steps_in_process > self.after:
            if self.how == "raise":
                raise RuntimeError("simulated env failure")
            os._exit(3)  # no exception, no cleanup: as a segfault would leave it
        return super().step(action)


for env_id, how in (("StudyRaises-v0", "raise"), ("StudyDies-v0", "die")):
    if env_id not in gym.registry:
        gym.register(
            env_id, FailingPendulum, max_episode_steps=20, kwargs={"after": 30, "how": how}
        )


def fast_spec(**changes: Any) -> dict[str, Any]:
    """The smoke study with 20-step episodes: the same code paths in a fraction of the time."""
    spec = yaml.safe_load(SMOKE.read_text())
    spec["base"]["set"]["env.max_episode_steps"] = 20
    return {**spec, **changes}


def write_spec(folder: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


def runs_of(out: Path) -> list[dict[str, Any]]:
    with ResultsStore(out / "results.sqlite") as store:
        return store.runs()


def checkpoint_paths(out: Path, run_id: int) -> list[str]:
    with contextlib.closing(sqlite3.connect(out / "results.sqlite")) as conn:
        rows = conn.execute(
            "SELECT path FROM checkpoints WHERE run_id = ? ORDER BY env_steps", (run_id,)
        )
        return [path for (path,) in rows]


def returns_by_pair(out: Path) -> dict[tuple[str, int], list[float]]:
    with ResultsStore(out / "results.sqlite") as store:
        return {(r["variant"], r["seed"]): store.returns(r["run_id"]) for r in store.runs()}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """studies/smoke.yaml run once through the CLI with 2 workers: (folder, exit, stdout)."""
    out = tmp_path_factory.mktemp("smoke") / "study"
    argv = ["study", str(SMOKE), "--out", str(out), "--workers", "2", "--threads", "1"]
    rc, stdout, _ = run_cli([*argv, "--quiet", "--no-report"])
    return out, rc, stdout


def test_smoke_study_stores_every_variant_seed_and_episode(smoke):
    out, rc, stdout = smoke
    assert rc == 0
    assert json.loads(stdout) | {"wall_s": 0} == {
        "study": "smoke",
        "out": str(out),
        "runs": 4,
        "done": 4,
        "failed": 0,
        "skipped": 0,
        "wall_s": 0,
        "report": None,
    }
    runs = runs_of(out)
    assert sorted((r["variant"], r["seed"]) for r in runs) == [
        ("stratified", 0),
        ("stratified", 1),
        ("uniform", 0),
        ("uniform", 1),
    ]
    assert {r["status"] for r in runs} == {"done"}
    for r in runs:
        config = json.loads(r["config_json"])
        assert config["train"]["seeds"] == [r["seed"]]
        assert config["replay"]["kind"] == r["variant"]
        assert config["train"]["torch_threads"] >= 1
    for returns in returns_by_pair(out).values():
        assert len(returns) == 3


def test_the_study_stores_each_members_replay_stats_at_its_episode_ends(smoke):
    """Sent by the workers through the driver, in the episodes' transaction."""
    out, _, _ = smoke
    with contextlib.closing(sqlite3.connect(out / "results.sqlite")) as conn:
        episodes = conn.execute("SELECT run_id, env_steps FROM episodes ORDER BY 1, 2").fetchall()
        stats = conn.execute("SELECT * FROM replay_stats ORDER BY run_id, env_steps").fetchall()
    assert [(run_id, steps) for run_id, steps, *_ in stats] == episodes
    for _, _, stored, volume, expected_age, entropy in stats:
        assert stored >= 1 and volume >= 1
        assert expected_age >= 0 and 0 < entropy <= math.log(stored) + 1e-9


def test_checkpoints_lie_under_the_variant_and_are_stored_relative_to_the_study(smoke):
    out, _, _ = smoke
    with ResultsStore(out / "results.sqlite") as store:
        run = next(r for r in store.runs() if r["variant"] == "stratified" and r["seed"] == 1)
    paths = checkpoint_paths(out, run["run_id"])
    assert paths == [
        f"runs/stratified/checkpoints/seed1/episode{e:05d}-step{200 * e:08d}.pt" for e in (1, 2, 3)
    ]
    assert all((out / p).is_file() for p in paths)


def test_the_study_folder_keeps_its_canonical_spec(smoke):
    out, _, _ = smoke
    study = load_study(SMOKE)
    assert load_study(out / "spec.yaml").spec_hash == study.spec_hash
    with ResultsStore(out / "results.sqlite") as store:
        assert store.study()["spec_hash"] == study.spec_hash


# -- resume --------------------------------------------------------------------------------


def test_resume_reruns_only_unfinished_runs_and_reproduces_a_clean_study(smoke, tmp_path):
    out, _, _ = smoke
    study = tmp_path / "study"
    shutil.copytree(out, study)
    ids = {(r["variant"], r["seed"]): r["run_id"] for r in runs_of(study)}
    with contextlib.closing(sqlite3.connect(study / "results.sqlite")) as conn, conn:
        # uniform seed 0 as a killed study leaves it: running, one episode stored.
        conn.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", (ids["uniform", 0],))
        conn.execute("DELETE FROM episodes WHERE run_id = ? AND episode > 1", (ids["uniform", 0],))
        # uniform seed 1: no trace at all.
        for table in ("episodes", "evals", "checkpoints", "runs"):
            conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (ids["uniform", 1],))

    # The same grouping as the clean study (both seeds in one ensemble): identical numbers.
    result = run_study(SMOKE, study, workers=2, seeds_per_job=2, torch_threads=1)

    assert (result.done, result.skipped, result.failed) == (2, 2, 0)
    assert returns_by_pair(study) == returns_by_pair(out)
    after = {(r["variant"], r["seed"]): r for r in runs_of(study)}
    assert len(after) == 4 and {r["status"] for r in after.values()} == {"done"}
    for seed in (0, 1):
        assert after["stratified", seed]["run_id"] == ids["stratified", seed]  # untouched
    assert len(checkpoint_paths(study, after["uniform", 0]["run_id"])) == 3
    assert not checkpoint_paths(study, ids["uniform", 0])  # the killed attempt's rows are gone


def test_a_changed_spec_is_refused_unless_overwrite(smoke, tmp_path, capsys):
    out, _, _ = smoke
    study = tmp_path / "study"
    shutil.copytree(out, study)
    changed = write_spec(tmp_path, fast_spec(seeds=1, episodes=2, variants=[{"name": "only"}]))
    argv = ["study", str(changed), "--out", str(study), "--quiet", "--no-report", "--threads", "1"]

    rc, stdout, err = run_cli(argv, capsys)
    assert rc == 2 and stdout == ""
    assert len(err.strip().splitlines()) == 1
    assert "different spec" in err and "--overwrite" in err
    assert len(runs_of(study)) == 4

    rc, stdout, err = run_cli([*argv, "--overwrite"], capsys)
    assert rc == 0, err
    assert [(r["variant"], r["seed"], r["status"]) for r in runs_of(study)] == [("only", 0, "done")]
    assert list(returns_by_pair(study)) == [("only", 0)]
    assert len(returns_by_pair(study)["only", 0]) == 2
    assert sorted(p.name for p in (study / "runs").iterdir()) == ["only"]


def test_done_runs_trained_with_another_config_are_not_mixed_in(smoke, tmp_path, capsys):
    """The spec is the same but a preset it names changed (an upgrade): the runs already
    done no longer match what the spec gives, and the rerun refuses instead of mixing."""
    finished, _, _ = smoke
    study = tmp_path / "study"
    shutil.copytree(finished, study)
    with contextlib.closing(sqlite3.connect(study / "results.sqlite")) as conn, conn:
        (run_id, config_json) = conn.execute(
            "SELECT run_id, config_json FROM runs WHERE status = 'done' LIMIT 1"
        ).fetchone()
        config = json.loads(config_json)
        config["agent"]["gamma"] = 0.5  # what an older preset might have said
        conn.execute(
            "UPDATE runs SET config_json = ? WHERE run_id = ?", (json.dumps(config), run_id)
        )
    before = runs_of(study)
    spec = study / "spec.yaml"
    argv = ["study", str(spec), "--out", str(study), "--quiet", "--no-report", "--threads", "1"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "another config" in err and "--overwrite" in err
    assert runs_of(study) == before


def test_a_study_that_lands_between_the_check_and_the_lock_is_refused(
    smoke, tmp_path, capsys, monkeypatch
):
    """Study A finishes in the folder after study B looked at it and before B took the
    lock: B must still refuse, not write its runs into A's store."""
    import ddpglab.study.runner as runner

    finished, _, _ = smoke
    study = tmp_path / "study"
    real_locked = runner._locked

    def a_lands_first(out: Path):
        shutil.copytree(finished, out, dirs_exist_ok=True)
        return real_locked(out)

    monkeypatch.setattr(runner, "_locked", a_lands_first)
    other = write_spec(tmp_path, fast_spec(seeds=1, episodes=2, variants=[{"name": "only"}]))
    argv = ["study", str(other), "--out", str(study), "--quiet", "--no-report", "--threads", "1"]
    rc, stdout, err = run_cli(argv, capsys)
    assert rc == 2 and "different spec" in err, err
    assert (study / "spec.yaml").read_text() == (finished / "spec.yaml").read_text()
    assert {r["variant"] for r in runs_of(study)} != {"only"}


# -- failures ------------------------------------------------------------------------------


@pytest.mark.slow
def test_failing_workers_fail_their_runs_and_the_others_finish(tmp_path, capsys):
    variants = [
        {"name": "ok"},
        {"name": "raises", "set": {"env.id": "test_study_runner:StudyRaises-v0"}},
        {"name": "dies", "set": {"env.id": "test_study_runner:StudyDies-v0"}},
    ]
    spec = write_spec(tmp_path, fast_spec(seeds=1, episodes=3, variants=variants))
    out = tmp_path / "study"
    argv = ["study", str(spec), "--out", str(out), "--workers", "2", "--threads", "1"]

    rc, stdout, _ = run_cli([*argv, "--quiet", "--no-report"], capsys)

    assert rc == 1
    summary = json.loads(stdout)
    assert (summary["done"], summary["failed"]) == (1, 2)
    runs = {r["variant"]: r for r in runs_of(out)}
    assert runs["ok"]["status"] == "done"
    assert runs["raises"]["status"] == runs["dies"]["status"] == "failed"
    assert runs["raises"]["error"] == "RuntimeError: simulated env failure"
    assert runs["dies"]["error"].startswith("WorkerDied: worker process exited with status 3")
    returns = returns_by_pair(out)
    assert len(returns["ok", 0]) == 3
    # Episodes finished before the failure (20 steps each, failure at step 31) are kept.
    assert len(returns["raises", 0]) == len(returns["dies", 0]) == 1
    assert "simulated env failure" in (out / "errors.log").read_text()


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mention"),
    [
        (None, "not found"),
        ("name: [unclosed\n", "not valid YAML"),
        ("name: x\nseeds: 1\nvariantz: []\n", "unknown key 'variantz'"),
        ("name: x\nseeds: 1\nbase: {set: {agent.tau: -1}}\n", "agent.tau"),
        ("name: x\nseeds: 1\nbase: {set: {env.id: NoSuchEnv-v0}}\n", "NoSuchEnv-v0"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, text, mention):
    spec = tmp_path / "spec.yaml"
    if text is not None:
        spec.write_text(text)
    out = tmp_path / "study"
    rc, _, err = run_cli(["study", str(spec), "--out", str(out), "--quiet"], capsys)
    assert_refused(rc, err, out, mention)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nseeds: 1\nvariants: [{nme: a}]\n",
            "unknown key 'variants.0.nme' (a 'variants.0.name' is required)",
        ),
        (
            "name: x\nseeds: two\n",
            "seeds: expected a count N (seeds 0..N-1) or a list of seeds, got 'two'",
        ),
    ],
    ids=["misspelt-required-key", "seed-count-in-words"],
)
def test_spec_mistakes_are_named_in_one_line(tmp_path, capsys, text, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    out = tmp_path / "study"
    rc, _, err = run_cli(["study", str(spec), "--out", str(out), "--quiet"], capsys)
    assert_refused(rc, err, out)
    assert err.strip() == f"ddpglab: error: {spec}: {message}"


def test_a_folder_holding_a_train_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with ResultsStore(out / "results.sqlite") as store:
        store.add_run("Pendulum-v1", 0, {})
    rc, _, err = run_cli(["study", str(SMOKE), "--out", str(out), "--quiet"], capsys)
    assert rc == 2 and "not a study's" in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["results.sqlite"]


def test_a_store_left_empty_by_a_study_killed_at_its_start_is_used(tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    ResultsStore(out / "results.sqlite").close()  # tables, no study row, no runs
    spec = write_spec(tmp_path, fast_spec(seeds=1, episodes=1))
    rc, _, err = run_cli(["study", str(spec), "--out", str(out), "--quiet", "--no-report"], capsys)
    assert rc == 0, err
    assert [r["status"] for r in runs_of(out)] == ["done", "done"]


@pytest.mark.parametrize(
    ("exitcode", "reason"),
    [(-11, "killed by SIGSEGV"), (-9, "killed by SIGKILL"), (1, "exited with status 1")],
)
def test_a_dead_worker_is_described_by_how_it_ended(exitcode, reason):
    assert reason in death_reason(exitcode)


def test_the_report_is_written_when_the_report_module_is_there(tmp_path, monkeypatch, capsys):
    study_report = pytest.importorskip("ddpglab.report.study_report")
    monkeypatch.setattr(study_report, "write_report", lambda out: out / "report")
    assert write_report_if_available(tmp_path) == tmp_path / "report"

    def broken(out):
        raise ValueError("no runs done")

    monkeypatch.setattr(study_report, "write_report", broken)
    assert write_report_if_available(tmp_path) is None  # the study's exit status stands
    assert "warning: report not written: ValueError: no runs done" in capsys.readouterr().err


# -- Ctrl-C --------------------------------------------------------------------------------


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


def test_seeds_and_episodes_flags_replace_the_specs_and_the_same_command_resumes(tmp_path):
    spec = write_spec(tmp_path, fast_spec())
    out = tmp_path / "study"
    argv = ["study", str(spec), "--out", str(out), "--seeds", "5,7", "--episodes", "1"]
    argv += ["--workers", "1", "--threads", "1", "--no-report", "--quiet"]
    code, _, _ = run_cli(argv)
    assert code == 0
    runs = runs_of(out)
    assert sorted({r["seed"] for r in runs}) == [5, 7]
    with sqlite3.connect(out / "results.sqlite") as conn:
        episodes = conn.execute("SELECT DISTINCT episode FROM episodes").fetchall()
    assert episodes == [(1,)]
    code, line, _ = run_cli(argv)  # the changed spec was stored: this resumes, nothing to do
    assert code == 0 and json.loads(line)["skipped"] == len(runs)
