"""Optional TensorBoard scalars for ``train --tensorboard`` and ``study --tensorboard``.

The results store stays the record; TensorBoard only mirrors it. :class:`TensorBoardStore`
wraps a :class:`~ddpglab.store.ResultsStore`, passes every call through, and writes each
episode, replay-stats row (``replay/expected_age``, ``replay/entropy``, ``replay/stored``)
and evaluation that lands as scalars of its member, one event folder per member
(``seed<s>`` for a run, ``<variant>/seed<s>`` in a study), with the member's env steps as
the x axis so that variants with different episode lengths line up. Open it with
``tensorboard --logdir OUT/tensorboard``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddpglab.config import ConfigError
from ddpglab.store import EpisodeRow, ReplayStatsRow, ResultsStore

LOG_DIR = "tensorboard"

# EpisodeRow fields -> TensorBoard tag.
EPISODE_SCALARS = {
    "episode_return": "episode/return",
    "length": "episode/length",
    "critic_loss": "learning/critic_loss",
    "mean_q": "learning/q_mean",
    "threshold": "replay/threshold",
}

# ReplayStatsRow fields -> TensorBoard tag.
REPLAY_SCALARS = {
    "expected_age": "replay/expected_age",
    "entropy": "replay/entropy",
    "stored": "replay/stored",
}


def require_tensorboard() -> None:
    """Fail with a one-line message, before anything is written, if TensorBoard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--tensorboard needs the tensorboard package: pip install 'ddpglab[tensorboard]'"
        ) from None


def member_folder(variant: str, seed: int) -> str:
    """A member's event folder, relative to the log directory."""
    return f"{variant}/seed{seed}" if variant else f"seed{seed}"


class TensorBoardStore:
    """A results store that also writes each member's scalars for TensorBoard.

    Args:
        store: the store every call goes to first.
        log_dir: the TensorBoard log directory; a member's folder there is emptied when its
            first scalar is written, so a rerun (a resumed study) never mixes two attempts;
            a run resumed from a saved state (:meth:`rewind_run`) keeps its events up to it.
    """

    def __init__(self, store: ResultsStore, log_dir: str | Path):
        from torch.utils.tensorboard import SummaryWriter

        self._store = store
        self.log_dir = Path(log_dir)
        self._writer_type = SummaryWriter
        self._writers: dict[int, Any] = {}
        self._resumed_after: dict[int, int] = {}  # run_id -> env steps it resumes after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _writer(self, run_id: int) -> Any:
        writer = self._writers.get(run_id)
        if writer is None:
            run = next(r for r in self._store.runs() if r["run_id"] == run_id)
            folder = self.log_dir / member_folder(run["variant"], run["seed"])
            resumed_after = self._resumed_after.get(run_id)
            if resumed_after is None:
                shutil.rmtree(folder, ignore_errors=True)
                writer = self._writer_type(log_dir=str(folder), flush_secs=10)
            else:  # keep the events up to the saved state, hide the later ones
                writer = self._writer_type(
                    log_dir=str(folder), flush_secs=10, purge_step=resumed_after + 1
                )
            self._writers[run_id] = writer
        return writer

    def rewind_run(self, run_id: int, episodes: int, env_steps: int) -> None:
        """The run resumes from a saved state: TensorBoard hides its events after it."""
        self._store.rewind_run(run_id, episodes, env_steps)
        self._resumed_after[run_id] = env_steps

    def add_episodes(
        self, rows: list[EpisodeRow], replay_stats: Sequence[ReplayStatsRow] = ()
    ) -> None:
        """Store the episode and replay-stats rows, then write their non-empty fields as
        scalars."""
        self._store.add_episodes(rows, replay_stats)
        pairs = [(row, EPISODE_SCALARS) for row in rows]
        pairs += [(row, REPLAY_SCALARS) for row in replay_stats]
        for row, scalars in pairs:
            writer = self._writer(row.run_id)
            for field, tag in scalars.items():
                value = getattr(row, field)
                if value is not None:
                    writer.add_scalar(tag, value, row.env_steps)

    def add_eval(self, run_id: int, episode: int, env_steps: int, returns: list[float]) -> None:
        """Store the evaluation, then write its mean return as ``eval/return``."""
        self._store.add_eval(run_id, episode, env_steps, returns)
        self._writer(run_id).add_scalar("eval/return", sum(returns) / len(returns), env_steps)

    def finish_run(self, run_id: int, status: str = "done", error: str | None = None) -> None:
        """Store the run's end and flush its events to disk."""
        self._store.finish_run(run_id, status, error)
        writer = self._writers.pop(run_id, None)
        if writer is not None:
            writer.close()

    def close_writers(self) -> None:
        """Flush and close every member's event file (the store stays open)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
