"""What a training run leaves behind for each member: its row in the results store, one
row per finished episode, its evaluations, and its actor files.

Evaluations and actor files are keyed by the member's env steps, and each is made at most
once per policy: a member whose budget ends on an evaluation episode is not evaluated twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from ddpglab.actor_file import save_actor_file
from ddpglab.config import Config
from ddpglab.replay.diagnostics import ReplayStats
from ddpglab.store import EpisodeRow, ReplayStatsRow, ResultsStore
from ddpglab.summary import MemberSummary


class Recorder:
    """The store and files of one Trainer's K members.

    Args:
        config: the run's config (its row in the store, and what an actor file records).
        store: results store receiving runs, episodes, evaluations and actor files; None
            records nothing there (a study's worker passes a proxy to its driver instead).
        out_dir: where actor files go (``out_dir/checkpoints``); None writes none.
        obs_dim, act_dim: the env's sizes, written into each actor file.
    """

    def __init__(
        self,
        config: Config,
        store: ResultsStore | None,
        out_dir: Path | None,
        obs_dim: int,
        act_dim: int,
    ):
        self.config, self.store, self.out_dir = config, store, out_dir
        self.obs_dim, self.act_dim = obs_dim, act_dim
        k_members = len(config.train.seeds)
        self.run_ids: list[int | None] = [None] * k_members
        # env_steps at each member's latest evaluation / actor file: never twice per policy.
        self.evaluated_at = np.full(k_members, -1, dtype=np.int64)
        self.checkpointed_at = np.full(k_members, -1, dtype=np.int64)

    def register_runs(self) -> None:
        """One run row per member, unless the members already have theirs (a resumed run)."""
        if self.store is None or self.run_ids[0] is not None:
            return
        resolved = self.config.model_dump(mode="json")
        # Each member's row holds the config that reproduces it alone: its seed only.
        self.run_ids = [
            self.store.add_run(
                self.config.env.id, s, {**resolved, "train": {**resolved["train"], "seeds": [s]}}
            )
            for s in self.config.train.seeds
        ]

    def replay_rows(
        self, law: ReplayStats | None, members: list[int], summaries: list[MemberSummary]
    ) -> list[ReplayStatsRow]:
        """The ``replay_stats`` rows of the given members from their buffers' ``law``
        (:meth:`~ddpglab.replay.ReplayBuffer.replay_stats` of these members, in this order),
        at their env steps."""
        if law is None:
            return []
        agent = self.config.agent
        volume = agent.batch_size * agent.updates_per_step  # transitions replayed per env step
        return [
            ReplayStatsRow(
                run_id=self.run_ids[k],
                env_steps=summaries[k].env_steps,
                stored=int(law.stored[row]),
                volume=volume,
                expected_age=float(law.expected_age[row]),
                entropy=float(law.entropy[row]),
            )
            for row, k in enumerate(members)
        ]

    def add_episodes(self, rows: list[EpisodeRow], replay: list[ReplayStatsRow]) -> None:
        """The episodes that ended on one env step and their members' replay stats, stored
        together (one transaction)."""
        if rows and self.store is not None:
            self.store.add_episodes(rows, replay)

    def unevaluated(self, members: list[int], summaries: list[MemberSummary]) -> list[int]:
        """The given members whose current policy has no evaluation yet."""
        return [k for k in members if self.evaluated_at[k] != summaries[k].env_steps]

    def add_evaluation(self, k: int, member: MemberSummary, returns: list[float]) -> None:
        """Member k's deterministic returns at its current env steps."""
        self.evaluated_at[k] = member.env_steps
        member.eval_return = float(np.mean(returns))
        if self.store is not None:
            self.store.add_eval(self.run_ids[k], member.episodes, member.env_steps, returns)

    def add_actor_file(self, k: int, member: MemberSummary, actor: nn.Module) -> None:
        """Write member k's actor (``actor`` is one of ``nets.ACTORS``, K members) to
        ``checkpoints/seed<s>/episode<e>-step<t>.pt`` and list it in the store (once per
        policy; nothing without an output folder)."""
        if self.out_dir is None or self.checkpointed_at[k] == member.env_steps:
            return
        self.checkpointed_at[k] = member.env_steps
        folder = self.out_dir / "checkpoints" / f"seed{member.seed}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"episode{member.episodes:05d}-step{member.env_steps:08d}.pt"
        self.write_actor(path, k, member, actor)
        if self.store is not None:
            rel = str(path.relative_to(self.out_dir))
            self.store.add_checkpoint(self.run_ids[k], member.episodes, member.env_steps, rel)

    def write_actor(self, path: Path, k: int, member: MemberSummary, actor: nn.Module) -> None:
        """Save member k's actor weights with what is needed to rebuild and run it."""
        cfg = self.config
        save_actor_file(
            path,
            env_id=cfg.env.id,
            seed=member.seed,
            episode=member.episodes,
            env_steps=member.env_steps,
            obs_dim=self.obs_dim,
            act_dim=self.act_dim,
            hidden=list(cfg.agent.hidden),
            actor_kind=cfg.agent.actor,
            max_episode_steps=cfg.env.max_episode_steps,
            actor_state=actor.member_state(k),
            env_kwargs=cfg.env.kwargs,
            action_bounds=cfg.env.model_dump(mode="json")["action_bounds"],
        )

    def fail_run(self, k: int, message: str) -> None:
        """Member k stopped on a fault; its run is marked failed with ``message``."""
        if self.store is not None:
            self.store.finish_run(self.run_ids[k], "failed", message)

    def finish_runs(self, failed: np.ndarray, error: str | None = None) -> None:
        """Every member not already failed ends: done, or failed with ``error``."""
        if self.store is None:
            return
        for run_id, was_failed in zip(self.run_ids, failed, strict=True):
            if not was_failed:  # keep the NaN or Inf that stopped it
                if error is None:
                    self.store.finish_run(run_id, "done")
                else:
                    self.store.finish_run(run_id, "failed", error)

    def rewind(self, members: list[MemberSummary], failed: np.ndarray) -> None:
        """After a resume: the store forgets what each run recorded after the saved state,
        and a member that a NaN or Inf had stopped stays failed with its message."""
        for run_id, member, was_failed in zip(self.run_ids, members, failed, strict=True):
            self.store.rewind_run(run_id, member.episodes, member.env_steps)
            if was_failed:
                self.store.finish_run(run_id, "failed", member.error)
