"""Off-screen frames for ``animate`` and ``enjoy --render rgb_array``, also for MuJoCo envs.

Box2D and classic-control envs draw with pygame (headless with ``SDL_VIDEODRIVER=dummy``).
MuJoCo envs draw with OpenGL, through the context gymnasium picks from ``MUJOCO_GL``:
``glfw`` needs a window system, ``egl`` and ``osmesa`` render without one. EGL is the
default here where the user has not set ``MUJOCO_GL``: with Mesa it renders on the CPU
(llvmpipe) on any Linux machine, with a GPU driver on the GPU, and it is what a fresh
Debian machine gets from ``apt install libegl1 libgl1-mesa-dri``; OSMesa renders on the
CPU only. The backend makes a context before the env is made and the caller writes
anything, so a missing system library is one line naming what to install, and no
half-written file.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ddpglab.config import ConfigError
from ddpglab.config.errors import first_line

if TYPE_CHECKING:
    import gymnasium as gym

#: The MUJOCO_GL values gymnasium's off-screen viewer accepts, with what each needs.
MUJOCO_GL_NEEDS = {
    "egl": "EGL with Mesa or a GPU driver (apt install libegl1 libgl1-mesa-dri)",
    "osmesa": "OSMesa (apt install libosmesa6)",
    "glfw": "a display (DISPLAY) and GLFW; on a headless machine unset MUJOCO_GL",
}
HEADLESS_DEFAULT = "egl"


def choose_mujoco_gl() -> str:
    """The OpenGL backend MuJoCo renders with: the user's ``MUJOCO_GL`` if set (and one
    gymnasium knows), else ``egl``, which is then set for this process (before MuJoCo is
    imported, which reads it)."""
    backend = os.environ.setdefault("MUJOCO_GL", HEADLESS_DEFAULT)
    if backend not in MUJOCO_GL_NEEDS:
        raise ConfigError(
            f"MUJOCO_GL={backend!r} cannot render off-screen; "
            f"use one of {', '.join(MUJOCO_GL_NEEDS)}, or unset it for {HEADLESS_DEFAULT}"
        )
    return backend


def check_mujoco_gl(backend: str) -> None:
    """Render nothing once with ``backend``, as gymnasium's off-screen viewer starts: make a
    1x1 OpenGL context (``mujoco.<backend>.GLContext``), make it current and give it MuJoCo's
    rendering context for an empty model; refuse in one line, saying what the backend needs,
    where that fails."""
    if importlib.util.find_spec("mujoco") is None:
        raise ConfigError("MuJoCo envs need the mujoco extra: pip install 'ddpglab[mujoco]'")
    try:
        # GLFW reports a missing display as Python warnings, then fails below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mujoco

            context = importlib.import_module(f"mujoco.{backend}").GLContext(1, 1)
            try:
                context.make_current()
                empty = mujoco.MjModel.from_xml_string("<mujoco/>")
                mujoco.MjrContext(empty, mujoco.mjtFontScale.mjFONTSCALE_150).free()
            finally:
                context.free()
    # The backends fail in their own ways: ImportError (no libEGL), AttributeError
    # (PyOpenGL without libOSMesa, on importing mujoco), mujoco.FatalError (glfw without
    # a display), ...
    except Exception as err:
        reason = first_line(err)
        raise ConfigError(
            f"cannot render MuJoCo off-screen with MUJOCO_GL={backend} ({reason}); "
            f"it needs {MUJOCO_GL_NEEDS[backend]}"
        ) from None


def prepare_offscreen(env_id: str) -> None:
    """Make sure ``env_id`` can render off-screen before anything is written or printed:
    for a MuJoCo env, choose its GL backend (:func:`choose_mujoco_gl`) and make a context
    with it (:func:`check_mujoco_gl`); for the others, keep pygame from opening a window."""
    from ddpglab.envs import is_mujoco_env

    if is_mujoco_env(env_id):
        check_mujoco_gl(choose_mujoco_gl())
    else:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def make_offscreen_env(
    env_id: str, max_episode_steps: int | None, env_kwargs: Mapping[str, Any] | None = None
) -> gym.Env:
    """``make_env(..., render_mode="rgb_array")`` once :func:`prepare_offscreen` passed."""
    from ddpglab.envs import make_env

    prepare_offscreen(env_id)
    return make_env(env_id, max_episode_steps, env_kwargs, render_mode="rgb_array")
