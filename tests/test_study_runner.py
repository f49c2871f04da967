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
import sqlite3
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from cli_support import run_cli
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from study_support import SMOKE, fast_spec, returns_by_pair, runs_of, write_spec

from ddpglab.store import ResultsStore
from ddpglab.study import load_study, run_study
from ddpglab.study.commands import write_report_if_available
from ddpglab.study.local_backend import death_reason


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


def checkpoint_paths(out: Path, run_id: int) -> list[str]:
    with contextlib.closing(sqlite3.connect(out / "results.sqlite")) as conn:
        rows = conn.execute(
            "SELECT path FROM checkpoints WHERE run_id = ? ORDER BY env_steps", (run_id,)
        )
        return [path for (path,) in rows]


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


def test_a_steps_flag_replaces_the_specs_budget(tmp_path):
    spec = write_spec(tmp_path, fast_spec())
    out = tmp_path / "study"
    argv = ["study", str(spec), "--out", str(out), "--seeds", "1", "--steps", "40"]
    code, _, _ = run_cli([*argv, "--workers", "1", "--threads", "1", "--no-report", "--quiet"])
    assert code == 0
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute(
            "SELECT COUNT(*), MAX(env_steps) FROM episodes GROUP BY run_id"
        ).fetchall()
    assert rows == [(2, 40)] * 2, "40 env steps of 20-step episodes, not the spec's 3 episodes"
