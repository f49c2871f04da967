"""What this machine can run: the env a config names, room for its replay buffer, the GPU.

:func:`preflight` checks them, in that order, before a run writes a file: ``ddpglab
train``, the study runner (for each job) and the trainer itself (which has made its envs
already and passes their sizes) all call it.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import torch

from ddpglab.config import Config, ConfigError, EnvConfig
from ddpglab.envs import action_bounds, kwargs_refused, make_env, rescale_action
from ddpglab.replay import strategies


def check_buffer_fits(kind: str, capacity: int, obs_dim: int, act_dim: int, members: int) -> None:
    """Refuse a replay capacity whose storage exceeds this machine's physical memory."""
    needed = strategies()[kind].storage_bytes(capacity, obs_dim, act_dim, members)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > physical:
        raise ConfigError(
            f"replay.capacity {capacity} x {members} member(s) needs {needed / 2**30:.1f} GiB "
            f"of replay storage; this machine has {physical / 2**30:.1f} GiB"
        )


def training_device(name: str) -> torch.device:
    """The torch device ``train.device`` names; refuses a GPU this machine does not have."""
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"train.device {name}: torch sees no CUDA GPU on this machine")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"train.device {name}: this machine has {count} CUDA GPU(s)")
    return device


def env_dims(env: EnvConfig) -> tuple[int, int]:
    """Make the env once (refusing one that cannot be made, with ``env.kwargs`` it does not
    take or ``env.action_bounds`` outside its Box) and return its observation and action
    sizes."""
    made = make_env(env.id, env.max_episode_steps, env.kwargs)
    try:
        low, high = action_bounds(made.action_space, env.action_bounds)
        if env.kwargs:
            first_step(made, env, rescale_action(np.zeros_like(low), low, high))
        return made.observation_space.shape[0], made.action_space.shape[0]
    finally:
        made.close()


def first_step(made: gym.Env, env: EnvConfig, action: np.ndarray) -> None:
    """Reset ``made`` and step it once with ``action``: a keyword value the constructor
    stored unchecked (a string for Pendulum's ``g``) fails only when the env computes with
    it, which must be refused now, not hours into a run."""
    try:
        made.reset(seed=0)
        made.step(action)
    except Exception as err:  # as make_env: with env.kwargs, the user's values refused
        raise ConfigError(kwargs_refused(env.id, env.kwargs, err)) from None


def preflight(
    config: Config,
    members: int | None = None,
    dims: tuple[int, int] | None = None,
    check_device: bool = True,
) -> tuple[int, int]:
    """Refuse a config this machine cannot run: the env can be made, the replay fits in
    memory, the device exists, checked in that order; returns (obs_dim, act_dim).

    Args:
        config: the validated config.
        members: members trained together (default: one per ``train.seeds``).
        dims: the env's (obs_dim, act_dim) when the caller knows them (made its envs
            already, or caches them per env): the env is not made again.
        check_device: False where the run may go to another machine (a study's jobs on a
            Ray cluster), or the caller has checked the device itself.
    """
    obs_dim, act_dim = dims if dims is not None else env_dims(config.env)
    members = len(config.train.seeds) if members is None else members
    check_buffer_fits(config.replay.kind, config.replay.capacity, obs_dim, act_dim, members)
    if check_device:
        training_device(config.train.device)
    return obs_dim, act_dim
