"""Full-state checkpoints: a run killed at a random step and resumed ends exactly as if it
had never stopped, for every replay strategy; SIGTERM saves the state; the file is atomic.

The kill comes from inside: ``StoppedPendulum`` (registered below and named
``test_resume:StoppedPendulum-v0``, so that gymnasium imports this module in the training
process too) sends its own process a signal at its N-th step in that process, N taken from
the environment. The env is part of the config, so the reference run, the killed run and
the resumed run all use it; only the killed one is given an N. N is drawn from a generator
seeded in the test, and the seed is in every failure message: a failure replays exactly.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from cli_support import run_cli, run_cli_forked, run_cli_process
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from ddpglab.config import load_config, to_yaml
from ddpglab.replay import strategies
from ddpglab.run_folder import train
from ddpglab.state_files import load_state, save_state
from ddpglab.training import STATE_FILE

STOP_AT = "DDPGLAB_TEST_STOP_AT_STEP"
STOP_SIGNAL = "DDPGLAB_TEST_STOP_SIGNAL"
EPISODE_STEPS, EPISODES, SEEDS, STATE_EVERY = 30, 8, [3, 4], 2


class StoppedPendulum(PendulumEnv):
    """Pendulum that signals its own process at its N-th step there (N from $STOP_AT)."""

    steps_in_process = 0

    def step(self, action):
        StoppedPendulum.steps_in_process += 1
        if StoppedPendulum.steps_in_process == int(os.environ.get(STOP_AT, "0")):
            os.kill(os.getpid(), int(os.environ.get(STOP_SIGNAL, signal.SIGKILL)))
        return super().step(action)


if "StoppedPendulum-v0" not in gym.registry:
    gym.register("StoppedPendulum-v0", StoppedPendulum, max_episode_steps=EPISODE_STEPS)

ENV_ID = "test_resume:StoppedPendulum-v0"
OVERRIDES = {
    "env.id": ENV_ID,
    "agent.hidden": [32, 32],
    "agent.batch_size": 16,
    "agent.learning_starts": 10,  # random actions first: that RNG must be restored too
    "replay.capacity": 150,  # the ring wraps before the end
    "train.seeds": SEEDS,
    "train.episodes": EPISODES,
    "train.eval_every": 3,
    "train.eval_episodes": 1,
    "train.checkpoint_every": 4,
    "train.state_every": STATE_EVERY,
    "train.torch_threads": 1,
}
# Options that widen what a strategy's resume covers; a strategy not named runs as is.
STRATEGY_OVERRIDES = {
    "uniform": {
        "replay.window.schedule": "linear",
        "replay.window.start": 150,
        "replay.window.end": 60,
    },
    "prioritized": {"replay.n_step": 3},
    "stratified": {"replay.stratified.window_episodes": 3},
    "softmax": {  # with TD3: its noise stream and the delay's phase must be restored too
        "replay.softmax.beta": 1.0,
        "agent.twin_critics": True,
        "agent.target_noise": 0.2,
        "agent.policy_delay": 3,
    },
}


def config_file(folder: Path, kind: str) -> Path:
    config = load_config(
        None, overrides={**OVERRIDES, "replay.kind": kind, **STRATEGY_OVERRIDES.get(kind, {})}
    )
    path = folder / f"{kind}.yaml"
    path.write_text(to_yaml(config))
    return path


def kill_step(seed: str, first: int, last: int) -> int:
    """The step to kill a run at, drawn from first..last by a generator seeded with
    ``seed``: the same step every time, so a failure names what replays it."""
    return random.Random(seed).randint(first, last)


def recorded(out: Path) -> dict[str, list[tuple]]:
    """Every row a run stored that does not depend on wall time."""
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        queries = {
            "episodes": "SELECT r.seed, episode, return, length, env_steps, critic_loss, mean_q,"
            " threshold, terminated, q_start, discounted_return"
            " FROM episodes JOIN runs r USING (run_id) ORDER BY r.seed, episode",
            "evals": "SELECT r.seed, episode, env_steps, returns FROM evals"
            " JOIN runs r USING (run_id) ORDER BY r.seed, env_steps",
            "checkpoints": "SELECT r.seed, episode, env_steps, path FROM checkpoints"
            " JOIN runs r USING (run_id) ORDER BY r.seed, env_steps",
            "runs": "SELECT seed, status FROM runs ORDER BY seed",
        }
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


@dataclass
class KilledRun:
    """One strategy's reference run, and the run killed at ``drawn`` and resumed."""

    drawn: str  # the kill step and the seed it was drawn with, for failure messages
    reference: Path
    out: Path
    killed: subprocess.CompletedProcess[str]
    state_after_kill: bool
    summary_after_kill: bool
    resumed: subprocess.CompletedProcess[str] | None = None


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KilledRun]:
    """Every registered strategy's run killed at a seeded step and resumed. The references
    train in this process; the killed and resumed runs are processes forked with torch
    already imported (:func:`cli_support.run_cli_forked`), two at a time, one per core."""
    folder = tmp_path_factory.mktemp("killed")
    runs: dict[str, KilledRun] = {}
    steps_per_run = len(SEEDS) * EPISODE_STEPS * EPISODES
    first_state = len(SEEDS) * EPISODE_STEPS * STATE_EVERY
    kills = {}
    for kind in strategies():
        config = config_file(folder, kind)
        train(load_config(None, config), folder / kind / "reference")
        seed = f"resume {kind}"
        kill_at = kill_step(seed, first_state + 1, steps_per_run - 1)
        out = folder / kind / "killed"
        argv = ["train", "--config", str(config), "--out", str(out), "--quiet"]
        drawn = f"killed at step {kill_at}, drawn with random.Random({seed!r})"
        kills[kind] = (drawn, kill_at, argv)
    with ThreadPoolExecutor(max_workers=2) as pool:
        killed = {
            kind: pool.submit(run_cli_forked, argv, **{STOP_AT: str(kill_at)})
            for kind, (_, kill_at, argv) in kills.items()
        }
        for kind, future in killed.items():
            out = folder / kind / "killed"
            runs[kind] = KilledRun(
                kills[kind][0],
                folder / kind / "reference",
                out,
                future.result(),
                (out / STATE_FILE).is_file(),
                (out / "summary.json").exists(),
            )
        resumed = {
            kind: pool.submit(
                run_cli_forked, ["train", "--out", str(run.out), "--resume", "--quiet"]
            )
            for kind, run in runs.items()
            if run.state_after_kill
        }
        for kind, future in resumed.items():
            runs[kind].resumed = future.result()
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(strategies()))
def test_killed_at_a_random_step_and_resumed_ends_exactly_as_uninterrupted(killed_runs, kind):
    run = killed_runs[kind]
    drawn, reference, out = run.drawn, run.reference, run.out
    print(drawn)
    assert run.killed.returncode == -signal.SIGKILL, (drawn, run.killed.stderr)
    assert run.state_after_kill, drawn
    assert not run.summary_after_kill, drawn

    resumed = run.resumed
    assert resumed is not None and resumed.returncode == 0, (drawn, resumed and resumed.stderr)
    assert recorded(out) == recorded(reference), drawn
    assert not (out / STATE_FILE).exists(), "a finished run leaves no state behind"
    for checkpoint in (reference / "checkpoints").rglob("*.pt"):
        assert (out / checkpoint.relative_to(reference)).is_file()


@pytest.mark.slow
def test_sigterm_saves_the_state_and_resume_continues_exactly(tmp_path):
    overrides = {**OVERRIDES, "train.state_every": 0, "replay.kind": "uniform"}
    config = tmp_path / "config.yaml"
    config.write_text(to_yaml(load_config(None, overrides=overrides)))
    reference = tmp_path / "reference"
    train(load_config(None, config), reference)

    out = tmp_path / "stopped"
    argv = ["train", "--config", str(config), "--out", str(out), "--quiet"]
    stopped = run_cli_process(argv, **{STOP_AT: "200", STOP_SIGNAL: str(int(signal.SIGTERM))})
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    assert "continue with --resume" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    # The 200th env step in the process (evaluation steps count too) falls mid-run.
    assert 0 < load_state(out / STATE_FILE, arrays=False)["step"] < EPISODES * EPISODE_STEPS
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        assert {s for (s,) in conn.execute("SELECT status FROM runs")} == {"failed"}

    resumed = run_cli_forked(["train", "--out", str(out), "--resume", "--quiet"])
    assert resumed.returncode == 0, resumed.stderr
    assert recorded(out) == recorded(reference)


@pytest.mark.slow
def test_resume_refuses_config_options_and_finished_runs(tmp_path):
    out = tmp_path / "run"
    refused = run_cli_process(["train", "--out", str(out), "--resume", "--episodes", "3"])
    assert refused.returncode == 2 and "drop --episodes" in refused.stderr
    missing = run_cli_process(["train", "--out", str(out), "--resume"])
    assert missing.returncode == 2 and "no run to resume" in missing.stderr
    (out).mkdir()
    (out / "config.yaml").write_text("{}\n")
    (out / "summary.json").write_text("{}\n")
    finished = run_cli_process(["train", "--out", str(out), "--resume"])
    assert finished.returncode == 2 and "has finished" in finished.stderr
    for result in (refused, missing, finished):
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_failed_write_leaves_the_previous_state_whole(tmp_path, monkeypatch):
    path = tmp_path / "state.npz"
    save_state(path, {"buffer": np.arange(10), "step": 1})

    def write_half_then_fail(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", write_half_then_fail)
    with pytest.raises(OSError, match="No space"):
        save_state(path, {"buffer": np.arange(20), "step": 2})
    state = load_state(path)
    assert state["step"] == 1
    assert np.array_equal(state["buffer"], np.arange(10))


def test_state_files_round_trip_nested_arrays_tensors_and_rng_states(tmp_path):
    import torch

    rng = np.random.default_rng(7)
    state = {
        "rng": rng.bit_generator.state,
        "parts": [np.ones((2, 3), np.float32)[:, 1:], np.zeros(0, bool)],
        "nested": {"tensor": torch.arange(4.0), "none": None, "pair": (1, 2.5)},
    }
    save_state(tmp_path / "s.npz", state)
    loaded = load_state(tmp_path / "s.npz")
    assert loaded["rng"] == state["rng"]
    assert np.array_equal(loaded["parts"][0], state["parts"][0])
    assert loaded["parts"][1].dtype == bool and loaded["parts"][1].shape == (0,)
    assert torch.equal(loaded["nested"]["tensor"], state["nested"]["tensor"])
    assert loaded["nested"]["none"] is None and loaded["nested"]["pair"] == (1, 2.5)


@dataclass
class KilledStudy:
    """A one-variant study (stratified replay): its finished reference run, and a run of it
    whose worker was killed mid-run, made once for the tests that rerun copies of it."""

    argv: list[str]  # the command line without --out
    reference: Path
    killed: Path  # never rerun itself: each test reruns its own copy
    drawn: str  # the kill step and the seed it was drawn with, for failure messages

    def copy_of_killed(self, folder: Path) -> tuple[Path, Path]:
        """A copy of the killed run's folder in ``folder``: (the copy, its saved state)."""
        out = folder / "killed"
        shutil.copytree(self.killed, out)
        (state,) = (out / "runs" / "stratified").glob("state-*.npz")
        return out, state


@pytest.fixture(scope="module")
def killed_study(tmp_path_factory: pytest.TempPathFactory) -> KilledStudy:
    """The reference study and the killed one, run side by side (one per core); the kill
    comes at a step after the first state save, drawn with a seeded generator."""
    tmp_path = tmp_path_factory.mktemp("study")
    study_keys = ("train.seeds", "train.episodes", "train.torch_threads")  # the study's own
    spec = {
        "name": "resume",
        "base": {"set": {k: v for k, v in OVERRIDES.items() if k not in study_keys}},
        "seeds": SEEDS,
        "episodes": EPISODES,
        "variants": [{"name": "stratified", "set": {"replay.kind": "stratified"}}],
    }
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    argv = ["study", str(spec_file), "--workers", "1", "--threads", "1", "--quiet", "--no-report"]
    steps_per_run = len(SEEDS) * EPISODE_STEPS * EPISODES
    seed = "study job killed"
    kill_at = kill_step(seed, len(SEEDS) * EPISODE_STEPS * STATE_EVERY + 1, steps_per_run - 1)
    drawn = f"killed at step {kill_at}, drawn with random.Random({seed!r})"
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    with ThreadPoolExecutor(max_workers=2) as pool:
        reference_run = pool.submit(run_cli_forked, [*argv, "--out", str(reference)])
        killed_run = pool.submit(
            run_cli_forked, [*argv, "--out", str(killed)], **{STOP_AT: str(kill_at)}
        )
        assert reference_run.result().returncode == 0, reference_run.result().stderr
        # its runs failed: the worker died
        assert killed_run.result().returncode == 1, (drawn, killed_run.result().stderr)
    return KilledStudy(argv, reference, killed, drawn)


@pytest.mark.slow
def test_a_study_job_killed_mid_run_continues_from_its_state_on_rerun(tmp_path, killed_study):
    out, _ = killed_study.copy_of_killed(tmp_path)
    rerun = run_cli_forked([*killed_study.argv, "--out", str(out)])
    assert rerun.returncode == 0, (killed_study.drawn, rerun.stderr)
    assert recorded(out) == recorded(killed_study.reference), killed_study.drawn
    assert not list((out / "runs" / "stratified").glob("state-*.npz"))


@pytest.mark.slow
def test_a_state_ahead_of_the_store_is_not_continued(tmp_path, killed_study):
    """A driver killed before it wrote a worker's last episodes leaves a state that counts
    episodes the store lacks: continuing it would leave a gap, so the job starts over."""
    out, state = killed_study.copy_of_killed(tmp_path)
    counted = load_state(state, arrays=False)["members"][0]["episodes"]
    with closing(sqlite3.connect(out / "results.sqlite")) as conn, conn:
        deleted = conn.execute(
            "DELETE FROM episodes WHERE episode = ? AND run_id ="
            " (SELECT run_id FROM runs WHERE seed = ?)",
            (counted, SEEDS[0]),
        )
        assert deleted.rowcount == 1, killed_study.drawn
    rerun = run_cli_forked([*killed_study.argv, "--out", str(out)])
    assert rerun.returncode == 0, (killed_study.drawn, rerun.stderr)
    assert recorded(out) == recorded(killed_study.reference), killed_study.drawn


def test_a_failed_state_write_stops_the_run_cleanly_and_keeps_what_was_saved(
    tmp_path, monkeypatch, capsys
):
    import ddpglab.state_files

    real_savez, calls = np.savez, []

    def disk_full_on_second_save(handle, **arrays):
        calls.append(1)
        if len(calls) == 2:
            handle.write(b"PK half")
            raise OSError(28, "No space left on device")
        real_savez(handle, **arrays)

    monkeypatch.setattr(ddpglab.state_files.np, "savez", disk_full_on_second_save)
    out = tmp_path / "run"
    overrides = ["--set", "train.state_every=1", "--set", "env.max_episode_steps=30"]
    argv = ["train", "--set", "agent.hidden=[32,32]", *overrides, "--episodes", "4"]
    rc, _, err = run_cli([*argv, "--seeds", "2", "--out", str(out), "--quiet"], capsys)
    assert rc == 1
    assert err.strip().splitlines()[-1] == "ddpglab: error: [Errno 28] No space left on device"
    assert load_state(out / STATE_FILE, arrays=False)["members"][0]["episodes"] == 1
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        runs = conn.execute("SELECT status, error FROM runs").fetchall()
    assert runs == [("failed", "OSError: [Errno 28] No space left on device")] * 2


def test_a_failed_store_write_stops_the_run_with_one_line_and_keeps_the_store(
    tmp_path, monkeypatch, capsys
):
    from ddpglab.store import ResultsStore

    real_add, calls = ResultsStore.add_episodes, []

    def disk_full_on_third_episode(self, rows, *replay_stats):
        calls.append(1)
        if len(calls) == 3:
            raise sqlite3.OperationalError("database or disk is full")
        real_add(self, rows, *replay_stats)

    monkeypatch.setattr(ResultsStore, "add_episodes", disk_full_on_third_episode)
    out = tmp_path / "run"
    argv = ["train", "--set", "agent.hidden=[32,32]", "--set", "env.max_episode_steps=30"]
    rc, _, err = run_cli([*argv, "--episodes", "4", "--out", str(out), "--quiet"], capsys)
    assert rc == 1
    assert err.strip().splitlines() == ["ddpglab: error: database or disk is full"]
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM episodes").fetchone() == (2,)
