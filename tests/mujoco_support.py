"""What the MuJoCo tests need to know about this machine: is the mujoco package installed
(the `mujoco` extra), and can it render off-screen (a system OpenGL library)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from functools import cache

import pytest

from ddpglab.config import load_config, preset_names
from ddpglab.envs import is_mujoco_env

MUJOCO = importlib.util.find_spec("mujoco") is not None
needs_mujoco = pytest.mark.skipif(
    not MUJOCO, reason="mujoco is not installed (pip install 'ddpglab[mujoco]')"
)
#: The shipped presets whose env is one of gymnasium's MuJoCo envs.
MUJOCO_PRESETS = [name for name in preset_names() if is_mujoco_env(load_config(name).env.id)]
#: The presets this machine can train: all of them where mujoco is installed.
RUNNABLE_PRESETS = [name for name in preset_names() if MUJOCO or name not in MUJOCO_PRESETS]


@cache
def offscreen_failure() -> str | None:
    """Why MuJoCo cannot render off-screen here (None: it can), as ``animate`` would try it
    with this environment's MUJOCO_GL (egl where unset). Tried in a child process, so that
    a failing OpenGL library leaves this one untouched."""
    if not MUJOCO:
        return "mujoco is not installed"
    code = (
        "from ddpglab.report.offscreen import choose_mujoco_gl, check_mujoco_gl\n"
        "check_mujoco_gl(choose_mujoco_gl())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"
