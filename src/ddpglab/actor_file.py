"""Actor files: one member's actor with what is needed to rebuild and run it alone.

The trainer writes one every ``train.checkpoint_every`` episodes and at the end of each
member's budget (``checkpoints/seed<s>/episode<e>-step<t>.pt``, listed in the store's
``checkpoints`` table); ``animate`` and ``enjoy`` read them back.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ddpglab.config import ConfigError


def save_actor_file(
    path: Path,
    *,
    env_id: str,
    seed: int,
    episode: int,
    env_steps: int,
    obs_dim: int,
    act_dim: int,
    hidden: list[int],
    actor_kind: str,
    max_episode_steps: int | None,
    actor_state: dict[str, Any],
    env_kwargs: dict[str, Any] | None = None,
    action_bounds: list | None = None,
) -> None:
    """Write member ``seed``'s actor weights ``actor_state`` and how to rebuild and play them:
    the env's keyword arguments (``env.kwargs``) and the bounds its actions in [-1, 1] were
    rescaled to (``env.action_bounds``, None: the env's Box)."""
    import torch

    torch.save(
        {
            "env_id": env_id,
            "seed": seed,
            "episode": episode,
            "env_steps": env_steps,
            "obs_dim": obs_dim,
            "act_dim": act_dim,
            "hidden": hidden,
            "actor_kind": actor_kind,
            "max_episode_steps": max_episode_steps,
            "env_kwargs": dict(env_kwargs or {}),
            "action_bounds": action_bounds,
            "actor": actor_state,
        },
        path,
    )


ACTOR_FILE_ERRORS = (OSError, RuntimeError, KeyError, EOFError, TypeError, pickle.PickleError)


def read_actor_file(path: Path) -> dict:
    """The dict :func:`save_actor_file` wrote to ``path``; anything else is a one-line refusal."""
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except ACTOR_FILE_ERRORS as err:
        raise ConfigError(f"cannot load checkpoint {path}: {err}") from None
    if not isinstance(saved, dict) or "actor" not in saved:
        raise ConfigError(f"cannot load checkpoint {path}: not an actor checkpoint")
    return saved


def load_actor(path: Path, kind: str = "mlp"):
    """Rebuild a one-member actor of ``kind`` (the run's agent.actor) from an actor file
    written by :func:`save_actor_file`."""
    from ddpglab import nets

    actors = nets.ACTORS
    if kind not in actors:
        raise ConfigError(f"unknown actor kind '{kind}' in the run's config")
    saved = read_actor_file(path)
    try:
        actor = actors[kind](
            saved["obs_dim"], saved["act_dim"], list(saved["hidden"]), [saved["seed"]]
        )
        actor.load_member_state(0, saved["actor"])
    except ACTOR_FILE_ERRORS as err:
        raise ConfigError(f"cannot load checkpoint {path}: {err}") from None
    return actor.eval()
