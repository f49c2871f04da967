"""Actor files: one member's actor with what is needed to rebuild and run it alone.

The trainer writes one every ``train.checkpoint_every`` episodes and at the end of each
member's budget (``checkpoints/seed<s>/episode<e>-step<t>.pt``, listed in the store's
``checkpoints`` table); ``animate`` and ``enjoy`` read them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
) -> None:
    """Write member ``seed``'s actor weights ``actor_state`` and how to rebuild them."""
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
            "actor": actor_state,
        },
        path,
    )
