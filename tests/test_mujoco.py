"""The harder tasks: the MuJoCo presets (hopper-td3, halfcheetah-td3, walker2d-td3) and
lunarlander-td3 train, a MuJoCo run resumes exactly, and ``animate`` and ``enjoy`` render
MuJoCo off-screen, or refuse in one line saying what to install.

Training needs the mujoco package (the `mujoco` extra) and skips without it; rendering
also needs a system OpenGL library (EGL by default) and skips, naming why, without one.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_support import TINY_RUN, assert_refused, run_cli
from mujoco_support import MUJOCO, MUJOCO_PRESETS, needs_mujoco, offscreen_failure
from test_continue import episode_rows

from ddpglab.config import ConfigError, load_config
from ddpglab.envs import make_env
from ddpglab.report.offscreen import choose_mujoco_gl
from ddpglab.run_folder import train
from ddpglab.state_files import load_state
from ddpglab.training import STATE_FILE

NEW_PRESETS = {
    "hopper-td3": "Hopper-v5",
    "halfcheetah-td3": "HalfCheetah-v5",
    "walker2d-td3": "Walker2d-v5",
    "lunarlander-td3": "LunarLanderContinuous-v3",
}
# The presets' own settings, cut down to a few hundred steps: small networks and batch,
# a short random phase, short episodes (HalfCheetah's never end before their limit).
QUICK = {
    **TINY_RUN,
    "agent.batch_size": 32,
    "agent.learning_starts": 100,
    "env.max_episode_steps": 100,
    "train.steps": 300,
    "train.checkpoint_every": 0,
}


def test_the_mujoco_presets_are_the_three_mujoco_tasks():
    assert sorted(MUJOCO_PRESETS) == ["halfcheetah-td3", "hopper-td3", "walker2d-td3"]


@pytest.mark.parametrize(
    "preset",
    [
        pytest.param(name, marks=[needs_mujoco] if name in MUJOCO_PRESETS else [])
        for name in NEW_PRESETS
    ],
)
def test_each_new_preset_trains_a_few_hundred_steps_on_its_env(preset):
    shipped = load_config(preset)
    config = load_config(preset, overrides=QUICK)
    summary = train(config)
    assert summary.env_id == NEW_PRESETS[preset] == shipped.env.id
    member = summary.members[0]
    assert member.error is None
    assert member.env_steps == 300 and member.episodes >= 3
    assert all(np.isfinite(member.returns))
    # the preset's TD3, with only its sizes and budget cut down
    assert config.agent.twin_critics and config.agent.policy_delay == 2
    assert config.agent.target_noise == 0.2 and config.noise.kind == "gaussian"
    assert shipped.agent.batch_size == 256 and shipped.agent.hidden == [400, 300]


@needs_mujoco
def test_a_hopper_run_stopped_mid_episode_continues_exactly(tmp_path, capsys):
    """MuJoCo's state is not saved: like Box2D's, it is replayed from the episode's reset RNG
    and its actions. Stopped at a step budget in the middle of episodes and continued, the
    run stores the same episodes, bit for bit, as one trained straight through."""
    hopper = {
        **QUICK,
        "env.max_episode_steps": 60,
        "agent.learning_starts": 50,
        "train.seeds": [0, 1],
        "train.keep_state": True,
    }
    reference = tmp_path / "reference"
    train(load_config("hopper-td3", overrides={**hopper, "train.steps": 300}), reference)

    out = tmp_path / "continued"
    train(load_config("hopper-td3", overrides={**hopper, "train.steps": 170}), out)
    saved = load_state(out / STATE_FILE)["envs"]["episode_actions"]
    assert any(len(actions) > 0 for actions in saved), "the stop fell between episodes"
    rc, _, err = run_cli(["train", "--out", str(out), "--resume", "--steps", "300"], capsys)
    assert rc == 0, err
    rows = episode_rows(out)
    assert len(rows) >= 6 and rows == episode_rows(reference)


@needs_mujoco
def test_mujoco_warnings_are_python_warnings_shown_once(tmp_path, capfd, monkeypatch):
    """Every episode compiles its model again (a fresh env each). MuJoCo printed its
    warning about HalfCheetah-v5's model to stderr once per episode, and appended it to
    MUJOCO_LOG.TXT in the working folder."""
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's own: a repeated warning shows once
        for _ in range(3):
            make_env("HalfCheetah-v5").close()
    assert "WARNING" not in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert len([w for w in caught if str(w.message).startswith("MuJoCo: ")]) <= 1


# -- off-screen rendering -------------------------------------------------------------------


@pytest.fixture
def mujoco_gl(monkeypatch):
    """MUJOCO_GL as the user set it, restored after the test whatever the code sets."""
    user = os.environ.get("MUJOCO_GL")
    monkeypatch.setenv("MUJOCO_GL", "placeholder")
    if user is None:
        monkeypatch.delenv("MUJOCO_GL")
    else:
        monkeypatch.setenv("MUJOCO_GL", user)
    return monkeypatch


def test_egl_is_chosen_only_where_the_user_chose_nothing(mujoco_gl):
    mujoco_gl.delenv("MUJOCO_GL", raising=False)
    assert choose_mujoco_gl() == "egl" and os.environ["MUJOCO_GL"] == "egl"
    mujoco_gl.setenv("MUJOCO_GL", "osmesa")
    assert choose_mujoco_gl() == "osmesa" and os.environ["MUJOCO_GL"] == "osmesa"
    mujoco_gl.setenv("MUJOCO_GL", "opengl")
    with pytest.raises(ConfigError, match="MUJOCO_GL='opengl'.*egl, osmesa, glfw"):
        choose_mujoco_gl()


@pytest.fixture(scope="module")
def hopper_run(tmp_path_factory) -> Path:
    """Two 8-step Hopper-v5 episodes with a checkpoint after each."""
    if not MUJOCO:
        pytest.skip("mujoco is not installed (pip install 'ddpglab[mujoco]')")
    folder = tmp_path_factory.mktemp("hopper") / "run"
    overrides = {
        **QUICK,
        "env.max_episode_steps": 8,
        "agent.learning_starts": 8,
        "train.steps": None,
        "train.episodes": 2,
        "train.checkpoint_every": 1,
    }
    train(load_config("hopper-td3", overrides=overrides), folder)
    return folder


@pytest.fixture
def offscreen_gl():
    if (failure := offscreen_failure()) is not None:
        pytest.skip(f"MuJoCo cannot render off-screen here: {failure}")


def test_animate_renders_a_mujoco_run_headless(
    hopper_run, tmp_path, capsys, mujoco_gl, offscreen_gl
):
    mujoco_gl.delenv("DISPLAY", raising=False)
    argv = ["animate", str(hopper_run), "--to", str(tmp_path), "--gif-width", "96"]
    rc, out, err = run_cli(argv, capsys)
    assert rc == 0, err
    assert "2 checkpoints played" in out
    import imageio.v3 as iio

    frames = iio.imread(tmp_path / "animation.gif", index=None)
    assert frames.shape == (2 * (8 + 1), 96, 96, 3)  # Hopper renders 480 x 480
    below_caption = frames[:, 30:].astype(float)
    assert below_caption.std() > 5, "the frames show a scene, not one flat colour"


def test_enjoy_renders_a_mujoco_actor_off_screen(hopper_run, capsys, mujoco_gl, offscreen_gl):
    rc, out, err = run_cli(["enjoy", str(hopper_run), "--render", "rgb_array"], capsys)
    assert rc == 0, err
    assert out.splitlines()[0].startswith("Hopper-v5: ")


@pytest.mark.parametrize(
    ("backend", "install"), [("egl", "apt install libegl1"), ("osmesa", "apt install libosmesa6")]
)
def test_a_missing_gl_library_is_one_line_naming_it_and_nothing_is_written(
    hopper_run, tmp_path, capsys, mujoco_gl, backend, install
):
    """Simulated: the backend's module cannot be imported, as where its system library is
    missing (mujoco.egl loads libEGL on import, mujoco.osmesa libOSMesa)."""
    mujoco_gl.setenv("MUJOCO_GL", backend)
    mujoco_gl.setitem(sys.modules, f"mujoco.{backend}", None)
    out = tmp_path / "video"
    rc, _, err = run_cli(["animate", str(hopper_run), "--to", str(out)], capsys)
    assert_refused(rc, err, out, f"MUJOCO_GL={backend}", install)
    assert not list(hopper_run.glob("*animation*")), "no half-written video in the run"

    rc, stdout, err = run_cli(["enjoy", str(hopper_run), "--render", "rgb_array"], capsys)
    assert_refused(rc, err, out, f"MUJOCO_GL={backend}", install)
    assert stdout == ""
