"""``ddpglab enjoy``: play a trained actor for N deterministic episodes and print each return.

The actor comes from a run or study folder (its latest checkpoint, or the one saved at
``--episode``) or straight from a checkpoint file written by ``actor_file.save_actor_file``, such as
the walker shipped in ``docs/results/bipedal-td3/walker.pt``. The first episode resets the
env with ``reset_seed``; later ones continue the env's own random stream, so a reset seed
fixes the whole sequence of start states.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ddpglab.actor_file import load_actor, read_actor_file
from ddpglab.config import ConfigError
from ddpglab.config.errors import first_line
from ddpglab.report.animate import run_checkpoints
from ddpglab.report.offscreen import make_offscreen_env

RENDER_MODES = ("human", "rgb_array", "none")


@dataclass(frozen=True)
class Policy:
    """Where an actor comes from and what it needs to run: its checkpoint file, env, limit,
    the env's keyword arguments and the action bounds it was trained with (``env.kwargs``,
    ``env.action_bounds``; None: the env's Box)."""

    path: Path
    env_id: str
    actor_kind: str
    max_episode_steps: int | None
    label: str
    env_kwargs: dict = field(default_factory=dict)
    action_bounds: list | None = None


def find_policy(source: Path, variant: str | None, seed: int | None, episode: int | None) -> Policy:
    """The checkpoint ``source`` names: a file itself, or a run of a run/study folder."""
    source = Path(source)
    if source.is_file():
        if variant is not None or seed is not None or episode is not None:
            raise ConfigError(
                "--variant, --seed and --episode select within a run folder, not a file"
            )
        saved = read_actor_file(source)
        if not isinstance(saved.get("env_id"), str):
            raise ConfigError(f"cannot load checkpoint {source}: it names no env")
        return Policy(
            source,
            saved["env_id"],
            saved.get("actor_kind", "mlp"),
            saved.get("max_episode_steps"),
            f"{source.name} (seed {saved.get('seed')}, training episode {saved.get('episode')})",
            # files written before these keys were saved played the env's defaults
            saved.get("env_kwargs") or {},
            saved.get("action_bounds"),
        )
    run, name, checkpoints = run_checkpoints(source, variant, seed)
    if episode is None:
        chosen = checkpoints[-1]
    else:
        matching = [c for c in checkpoints if c["episode"] == episode]
        if not matching:
            saved_at = ", ".join(str(c["episode"]) for c in checkpoints)
            raise ConfigError(
                f"run {name} has no checkpoint at episode {episode}; it has {saved_at}"
            )
        chosen = matching[0]
    path = source / chosen["path"]
    if not path.is_file():
        raise ConfigError(f"checkpoint file missing: {path}")
    config = json.loads(run["config_json"])
    env = config.get("env", {})
    return Policy(
        path,
        run["env_id"],
        config.get("agent", {}).get("actor", "mlp"),
        env.get("max_episode_steps"),
        f"{name}, training episode {chosen['episode']}",
        env.get("kwargs") or {},
        env.get("action_bounds"),
    )


@dataclass(frozen=True)
class EpisodeOutcome:
    """How one deterministic episode went: its return and length, whether the env ended it
    (``terminated``: a fall or the end of the course, say) rather than its time limit, the
    reward of its last step (BipedalWalker-v3 gives -100 for a fall), its first observation
    s_0 and its discounted return sum_t gamma^t r_t (what a critic's Q(s_0, mu(s_0))
    estimates)."""

    episode_return: float
    length: int
    terminated: bool
    final_reward: float
    start: np.ndarray
    discounted_return: float


def play_episodes(
    policy: Policy,
    episodes: int,
    render: str = "none",
    reset_seed: int = 0,
    gamma: float = 1.0,
) -> Iterator[EpisodeOutcome]:
    """Each of ``episodes`` deterministic episodes a = mu(s), as it ends; ``gamma``
    discounts :attr:`EpisodeOutcome.discounted_return`.

    The actor is loaded and the env made and reset before this returns (only the episodes
    are played lazily), so a refusal comes before anything is played or printed.
    """
    from ddpglab.envs import action_bounds, make_env

    if render not in RENDER_MODES:
        raise ConfigError(f"unknown render mode '{render}'; choose from {', '.join(RENDER_MODES)}")
    actor = load_actor(policy.path, policy.actor_kind)
    if render == "rgb_array":
        env = make_offscreen_env(policy.env_id, policy.max_episode_steps, policy.env_kwargs)
    else:
        if render == "none":
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # never open a window
        mode = None if render == "none" else render
        env = make_env(policy.env_id, policy.max_episode_steps, policy.env_kwargs, render_mode=mode)
    try:
        low, high = action_bounds(env.action_space, policy.action_bounds)
        obs = _first_reset(env, reset_seed, render)
    except BaseException:
        env.close()
        raise
    return _played(env, actor, obs, (low, high), episodes, render, gamma)


def _played(
    env, actor, obs: np.ndarray, bounds: tuple, episodes: int, render: str, gamma: float
) -> Iterator[EpisodeOutcome]:
    """The episodes of :func:`play_episodes`, from the first observation ``obs``; closes
    ``env`` when done."""
    import torch

    from ddpglab.envs import rescale_action

    try:
        for _ in range(episodes):
            start = np.array(obs, dtype=np.float32)
            total, discounted, discount = 0.0, 0.0, 1.0
            length, terminated, truncated = 0, False, False
            while not (terminated or truncated):
                with torch.inference_mode():
                    x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).view(1, 1, -1)
                    action = actor(x).view(-1).numpy()
                obs, reward, terminated, truncated, _ = env.step(rescale_action(action, *bounds))
                if render == "rgb_array":
                    env.render()  # off-screen; a human window renders inside step
                total += float(reward)
                discounted += discount * float(reward)
                discount *= gamma
                length += 1
            yield EpisodeOutcome(total, length, bool(terminated), float(reward), start, discounted)
            obs, _ = env.reset()
    finally:
        env.close()


def episode_returns(
    policy: Policy, episodes: int, render: str = "none", reset_seed: int = 0
) -> Iterator[float]:
    """The return of each of ``episodes`` deterministic episodes a = mu(s), as they end
    (the env is made before this returns, as in :func:`play_episodes`)."""
    outcomes = play_episodes(policy, episodes, render, reset_seed)
    return (outcome.episode_return for outcome in outcomes)


def _first_reset(env, seed: int, render: str) -> np.ndarray:
    """Reset with ``seed``; a window that cannot open (no display) is a one-line refusal."""
    try:
        obs, _ = env.reset(seed=seed)
    except RuntimeError as err:  # pygame.error, raised by the first human render
        if render != "human":
            raise
        raise ConfigError(
            f"cannot open a window ({first_line(err)}); use --render rgb_array or none"
        ) from None
    return obs
