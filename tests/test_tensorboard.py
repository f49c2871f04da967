"""``--tensorboard`` on train and study: each member's scalars mirror the results store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from cli_support import FAST, assert_refused, run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ddpglab.store import EpisodeRow, ResultsStore
from ddpglab.tensorboard import TensorBoardStore

ROOT = Path(__file__).resolve().parents[1]


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in one member's event folder -> [(step, value)] in step order."""
    events = EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def stored_episodes(out: Path) -> dict[tuple[str, int], list[tuple]]:
    """(variant, seed) -> its episode rows (episode, return, length, env_steps, loss, q)."""
    with ResultsStore(out / "results.sqlite") as store:
        frame = store.episodes_frame()
    return {
        (variant, seed): list(
            rows[["episode", "return", "length", "env_steps", "critic_loss", "mean_q"]].itertuples(
                index=False, name=None
            )
        )
        for (variant, seed), rows in frame.groupby(["variant", "seed"])
    }


def assert_logged(logged: list[tuple[int, float]], steps: list[int], values: list[float]):
    assert [step for step, _ in logged] == steps
    assert [value for _, value in logged] == pytest.approx(values, rel=1e-6)


def assert_mirrors_store(folder: Path, rows: list[tuple]) -> None:
    logged = scalars(folder)
    steps = [r[3] for r in rows]
    assert_logged(logged["episode/return"], steps, [r[1] for r in rows])
    assert_logged(logged["episode/length"], steps, [r[2] for r in rows])
    learned = [r for r in rows if r[4] == r[4]]  # NaN (no update that episode) is not logged
    assert learned, "some episodes must have learned"
    learned_steps = [r[3] for r in learned]
    assert_logged(logged["learning/critic_loss"], learned_steps, [r[4] for r in learned])
    assert_logged(logged["learning/q_mean"], learned_steps, [r[5] for r in learned])
    assert len(logged["eval/return"]) == 1  # eval_every 0: the final evaluation only


def test_train_writes_one_event_folder_per_member_matching_the_store(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", *FAST, "--seeds", "2", "--episodes", "3", "--out", str(out)]
    argv += ["--set", "env.max_episode_steps=40", "--quiet", "--tensorboard"]
    rc, _, err = run_cli(argv, capsys)
    assert rc == 0, err
    episodes = stored_episodes(out)
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["seed0", "seed1"]
    for seed in (0, 1):
        assert_mirrors_store(out / "tensorboard" / f"seed{seed}", episodes[("", seed)])
    with ResultsStore(out / "results.sqlite") as store:
        replay = store.replay_stats_frame()
    for seed, rows in replay.groupby("seed"):
        logged = scalars(out / "tensorboard" / f"seed{seed}")
        steps = rows["env_steps"].tolist()
        for column in ("expected_age", "entropy", "stored"):
            assert_logged(logged[f"replay/{column}"], steps, rows[column].tolist())


def test_study_writes_variant_and_seed_folders_and_marks_thresholds(tmp_path, capsys):
    spec = yaml.safe_load((ROOT / "studies" / "smoke.yaml").read_text())
    spec["base"]["set"]["env.max_episode_steps"] = 20
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "study"
    argv = ["study", str(spec_path), "--out", str(out), "--workers", "1", "--threads", "1"]
    rc, _, err = run_cli([*argv, "--quiet", "--no-report", "--tensorboard"], capsys)
    assert rc == 0, err
    episodes = stored_episodes(out)
    for (variant, seed), rows in episodes.items():
        folder = out / "tensorboard" / variant / f"seed{seed}"
        assert_mirrors_store(folder, rows)
        has_threshold = "replay/threshold" in scalars(folder)
        assert has_threshold == (variant == "stratified")
    assert len(episodes) == 4


def test_a_rerun_member_replaces_its_old_events(tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        for ret in (-100.0, -50.0):  # the first attempt, then its rerun
            logged = TensorBoardStore(store, tmp_path / "tensorboard")
            run_id = store.add_run("Pendulum-v1", 0, {}, "uniform")
            logged.add_episodes(
                [EpisodeRow(run_id, 1, ret, 200, 200, 0.1, None, None, None, 0, None, None)]
            )
            logged.finish_run(run_id, "done")
    assert scalars(tmp_path / "tensorboard" / "uniform" / "seed0") == {
        "episode/return": [(200, -50.0)],
        "episode/length": [(200, 200.0)],
    }


@pytest.mark.parametrize("command", ["train", "study"])
def test_missing_tensorboard_is_refused_before_anything_is_written(
    tmp_path, capsys, monkeypatch, command
):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    out = tmp_path / "out"
    if command == "train":
        argv = ["train", *FAST, "--episodes", "1", "--out", str(out), "--tensorboard"]
    else:
        argv = ["study", str(ROOT / "studies" / "smoke.yaml"), "--out", str(out), "--tensorboard"]
    rc, _, err = run_cli(argv, capsys)
    assert_refused(rc, err, out, "ddpglab[tensorboard]")
