"""``ddpglab animate``: a tiny trained run's checkpoints played to GIF and MP4."""

from __future__ import annotations

import shutil
import sys

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest
from cli_support import assert_refused, run_cli
from report_support import SyntheticRun, learning_curve, make_store

from ddpglab.run_folder import train

STEPS = 12  # per episode: a segment has the reset frame and one per step


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_config):
    """Three 12-step Pendulum episodes with a checkpoint after each: 3 checkpoints."""
    folder = tmp_path_factory.mktemp("animate") / "run"
    config = tiny_config(
        **{"train.episodes": 3, "train.checkpoint_every": 1, "env.max_episode_steps": STEPS}
    )
    train(config, out=folder)
    return folder


def gif_frames(path) -> np.ndarray:
    return iio.imread(path, index=None)


def test_animation_has_one_segment_per_checkpoint(run_dir, tmp_path, capsys):
    argv = ["animate", str(run_dir), "--to", str(tmp_path), "--gif-width", "160"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert "3 checkpoints played (episode 1: " in out
    frames = gif_frames(tmp_path / "animation.gif")
    assert frames.shape == (3 * (STEPS + 1), 160, 160, 3)
    # every frame is kept (none merged as a duplicate) and carries its caption band
    assert frames[:, :10].mean() < frames[:, -10:].mean()
    reader = imageio_v2.get_reader(tmp_path / "animation.mp4")
    assert reader.count_frames() == 3 * (STEPS + 1)
    assert reader.get_meta_data()["size"] == (500, 500)  # Pendulum's own resolution
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["animation.gif", "animation.mp4"]


def test_every_keeps_the_last_checkpoint_and_max_steps_cuts_episodes(run_dir, tmp_path, capsys):
    argv = ["animate", str(run_dir), "--seed", "0", "--every", "2", "--max-steps", "4"]
    rc, out, err = run_cli([*argv, "--fps", "10", "--to", str(tmp_path)], capsys)
    assert rc == 0, err
    assert "2 checkpoints played (episode 1: " in out and "episode 3: " in out
    assert gif_frames(tmp_path / "animation.gif").shape[0] == 2 * (4 + 1)


def test_defaults_write_into_the_run_folder(run_dir, capsys):
    rc, _, err = run_cli(["animate", str(run_dir), "--max-steps", "2", "--every", "3"], capsys)
    assert rc == 0, err
    # --every 3 of 3 checkpoints: the first, and the last (the final policy) as well
    assert gif_frames(run_dir / "animation.gif").shape[0] == 2 * (2 + 1)
    assert (run_dir / "animation.mp4").stat().st_size > 0
    for name in ("animation.gif", "animation.mp4"):
        (run_dir / name).unlink()


@pytest.mark.parametrize(
    ("option", "mention"),
    [
        (["--seed", "7"], "no run with seed 7; seeds: 0"),
        (["--variant", "x"], "unknown variant 'x'"),
    ],
)
def test_refuses_an_unknown_run(run_dir, tmp_path, capsys, option, mention):
    rc, _, err = run_cli(["animate", str(run_dir), *option, "--to", str(tmp_path / "o")], capsys)
    assert_refused(rc, err, tmp_path / "o", mention)


def test_refuses_missing_checkpoints(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "checkpoints")
    rc, _, err = run_cli(["animate", str(copy), "--to", str(tmp_path / "o")], capsys)
    assert_refused(rc, err, tmp_path / "o", "checkpoint file missing")
    study = make_store(
        tmp_path / "study",
        [SyntheticRun("Pendulum-v1", "v", 3, "uniform", "done", learning_curve(0, 3, 1.0), None)],
    )
    rc, _, err = run_cli(["animate", str(study), "--to", str(tmp_path / "o")], capsys)
    assert_refused(rc, err, tmp_path / "o", "v, seed 3 has no saved checkpoints")


def test_refuses_a_folder_without_a_store(tmp_path, capsys):
    rc, _, err = run_cli(["animate", str(tmp_path), "--to", str(tmp_path / "o")], capsys)
    assert_refused(rc, err, tmp_path / "o", "no results.sqlite")


def test_without_imageio_names_the_extra(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio", None)
    rc, _, err = run_cli(["animate", str(run_dir), "--to", str(tmp_path / "o")], capsys)
    assert_refused(rc, err, tmp_path / "o", "ddpglab[video]")
