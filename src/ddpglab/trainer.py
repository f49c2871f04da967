"""The training loop: act, step, store, learn, log, evaluate, checkpoint.

K members (one per seed) run in lockstep: one batched actor forward picks every member's
action, each member steps its own env, and one batched update trains all members at
once. Member k's numbers depend on its own seed only.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddpglab.agent import DDPGAgent
from ddpglab.checkpoint import handle_stop_signals, load_state, save_state, write_text_atomic
from ddpglab.config import Config, ConfigError, same_run_config
from ddpglab.envs import MemberEnvs
from ddpglab.evaluation import MemberEvaluator
from ddpglab.machine import check_buffer_fits, training_device
from ddpglab.noise import make_noise
from ddpglab.progress import TrainProgress
from ddpglab.replay import build_buffer
from ddpglab.seeding import member_rngs, rng_states, set_rng_states
from ddpglab.store import ResultsStore
from ddpglab.summary import LearningStats, MemberSummary, TrainSummary, ValueTracker

STATE_FILE = "state.npz"
STATE_FORMAT = 1


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped training, after the full state was saved."""

    def __init__(self, signum: int, state_path: Path | None):
        self.signum, self.state_path = signum, state_path
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class Trainer:
    """Train K independent DDPG members, one per seed in ``config.train.seeds``.

    Args:
        config: a validated :class:`~ddpglab.config.Config`.
        out_dir: where checkpoints go (``out_dir/checkpoints``); None keeps no checkpoints.
        store: results store receiving every episode, evaluation and checkpoint; optional.
        progress: show a live progress bar (only when stderr is a terminal).
        state_path: where the full training state is saved every ``train.state_every``
            episodes and when SIGINT or SIGTERM stops the run (default
            ``out_dir/state.npz``; None without ``out_dir``). Removed when the run finishes.
    """

    def __init__(
        self,
        config: Config,
        out_dir: str | Path | None = None,
        store: ResultsStore | None = None,
        progress: bool = False,
        state_path: str | Path | None = None,
    ):
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if state_path is None and self.out_dir is not None:
            state_path = self.out_dir / STATE_FILE
        self.state_path = Path(state_path) if state_path is not None else None
        self.store = store
        self.progress = progress
        self.seeds = list(config.train.seeds)
        if config.train.torch_threads is not None:
            torch.set_num_threads(config.train.torch_threads)
        self.device = training_device(config.train.device)
        self.envs = MemberEnvs(config.env.id, self.seeds, config.env.max_episode_steps)
        obs_dim, act_dim = self.envs.obs_dim, self.envs.act_dim
        try:
            check_buffer_fits(
                config.replay.kind, config.replay.capacity, obs_dim, act_dim, len(self.seeds)
            )
        except ConfigError:
            self.envs.close()
            raise
        self.agent = DDPGAgent(obs_dim, act_dim, config.agent, self.seeds, self.device)
        self.buffer = build_buffer(
            config.replay, obs_dim, act_dim, self.seeds, config.agent.gamma, self.device
        )
        self.noise = make_noise(config.noise, act_dim, self.seeds)
        self.random_action_rngs = member_rngs(self.seeds, "random_actions")
        self.evaluator = MemberEvaluator(
            config.env.id,
            config.env.max_episode_steps,
            self.seeds,
            obs_dim,
            self.envs.low,
            self.envs.high,
        )
        k_members = len(self.seeds)
        self.members = [MemberSummary(seed=s) for s in self.seeds]
        self.run_ids: list[int | None] = [None] * k_members
        # Loop state: which members still spend their budget, and their env steps so far.
        self.active = np.ones(k_members, dtype=bool)
        self.failed = np.zeros(k_members, dtype=bool)  # stopped by a NaN or Inf
        self.env_steps = np.zeros(k_members, dtype=np.int64)
        self.learning = LearningStats(k_members, self.device)
        self.values = ValueTracker(k_members, config.agent.gamma)
        # env_steps at each member's latest evaluation / checkpoint: never twice per policy.
        self._evaluated_at = np.full(k_members, -1, dtype=np.int64)
        self._checkpointed_at = np.full(k_members, -1, dtype=np.int64)
        self.step = 0  # env steps taken in lockstep (each member's budget counts its own)
        self._state_saved_at = 0  # mean episodes per member at the latest state save
        self._wall_before = 0.0  # wall time spent before a resume
        self._start = time.perf_counter()
        self._stop_signal: int | None = None

    # -- acting ---------------------------------------------------------------------------

    def _explore(self, obs: np.ndarray, step: int) -> np.ndarray:
        """Uniform random actions before ``learning_starts``, then clip(mu(s) + noise, -1, 1)."""
        if step < self.config.agent.learning_starts:
            act_dim = self.envs.act_dim
            return np.stack(
                [rng.uniform(-1.0, 1.0, act_dim) for rng in self.random_action_rngs]
            ).astype(np.float32)
        actions = np.clip(self.agent.act(obs) + self.noise(), -1.0, 1.0)
        actions[self.failed] = 0.0  # a failed member's policy may be NaN; its env need not be
        return actions

    def evaluate(self, members: list[int]) -> dict[int, list[float]]:
        """Deterministic returns (no noise) of ``eval_episodes`` episodes per given member,
        each on its own eval env (see :class:`~ddpglab.evaluation.MemberEvaluator`)."""
        return self.evaluator.returns(self.agent.act, members, self.config.train.eval_episodes)

    # -- bookkeeping ----------------------------------------------------------------------

    def _checkpoint(self, k: int) -> None:
        member = self.members[k]
        if self.out_dir is None or self._checkpointed_at[k] == member.env_steps:
            return
        self._checkpointed_at[k] = member.env_steps
        folder = self.out_dir / "checkpoints" / f"seed{member.seed}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"episode{member.episodes:05d}-step{member.env_steps:08d}.pt"
        self.save_actor(k, path)
        if self.store is not None:
            rel = str(path.relative_to(self.out_dir))
            self.store.add_checkpoint(self.run_ids[k], member.episodes, member.env_steps, rel)

    def save_actor(self, k: int, path: Path) -> None:
        """Save member k's actor with what is needed to rebuild and run it."""
        member = self.members[k]
        torch.save(
            {
                "env_id": self.config.env.id,
                "seed": member.seed,
                "episode": member.episodes,
                "env_steps": member.env_steps,
                "obs_dim": self.envs.obs_dim,
                "act_dim": self.envs.act_dim,
                "hidden": list(self.config.agent.hidden),
                "actor_kind": self.config.agent.actor,
                "max_episode_steps": self.config.env.max_episode_steps,
                "actor": self.agent.actor.member_state(k),
            },
            path,
        )

    def _record_eval(self, members: list[int]) -> None:
        members = [k for k in members if self._evaluated_at[k] != self.members[k].env_steps]
        if not members:
            return
        for k, returns in self.evaluate(members).items():
            member = self.members[k]
            self._evaluated_at[k] = member.env_steps
            member.eval_return = float(np.mean(returns))
            if self.store is not None:
                self.store.add_eval(self.run_ids[k], member.episodes, member.env_steps, returns)

    # -- full state, to resume from ---------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything the loop needs to continue exactly: networks and optimisers, replay
        contents and strategy state, noise, every RNG, each env's episode so far, counters."""
        return {
            "format": STATE_FORMAT,
            "config": self.config.model_dump(mode="json"),
            "step": self.step,
            "wall_s": time.perf_counter() - self._start,
            "run_ids": self.run_ids,
            "members": [asdict(m) for m in self.members],
            "active": self.active,
            "failed": self.failed,
            "env_steps": self.env_steps,
            "evaluated_at": self._evaluated_at,
            "checkpointed_at": self._checkpointed_at,
            "state_saved_at": self._state_saved_at,
            "learning": self.learning.state_dict(),
            "values": self.values.state_dict(),
            "agent": self.agent.state_dict(),
            "buffer": self.buffer.state_dict(),
            "noise": self.noise.state_dict(),
            "random_actions": rng_states(self.random_action_rngs),
            "envs": self.envs.state_dict(),
            "eval_envs": self.evaluator.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`, on a Trainer freshly made with the same config.

        Raises:
            ConfigError: the state belongs to another config or to another ddpglab format.
        """
        if state.get("format") != STATE_FORMAT:
            raise ConfigError(f"saved state has format {state.get('format')}, not {STATE_FORMAT}")
        if not same_run_config(state["config"], self.config.model_dump(mode="json")):
            raise ConfigError("saved state belongs to a different config")
        self.step, self._wall_before = int(state["step"]), float(state["wall_s"])
        self.run_ids = list(state["run_ids"])
        self.members = [MemberSummary(**m) for m in state["members"]]
        self.active[...] = state["active"]
        self.failed[...] = state["failed"]
        self.env_steps[...] = state["env_steps"]
        self._evaluated_at[...] = state["evaluated_at"]
        self._checkpointed_at[...] = state["checkpointed_at"]
        self._state_saved_at = int(state["state_saved_at"])
        self.learning.load_state_dict(state["learning"])
        if "values" in state:  # states saved before per-episode values have none
            self.values.load_state_dict(state["values"])
        self.agent.load_state_dict(state["agent"])
        self.buffer.load_state_dict(state["buffer"])
        self.noise.load_state_dict(state["noise"])
        set_rng_states(self.random_action_rngs, state["random_actions"])
        self.envs.load_state_dict(state["envs"])
        self.evaluator.load_state_dict(state["eval_envs"])
        torch.set_rng_state(state["torch_rng"])

    def save_state(self) -> None:
        """Write :meth:`state_dict` to ``state_path`` atomically (nothing without a path)."""
        if self.state_path is not None:
            save_state(self.state_path, self.state_dict())

    def resume(self) -> bool:
        """Load the state saved at ``state_path``, if there is one; True if it was."""
        if self.state_path is None or not self.state_path.exists():
            return False
        self.load_state_dict(load_state(self.state_path))
        return True

    def rewind_store(self) -> None:
        """After :meth:`resume`: the store forgets what each run recorded after the saved
        state, and a member that a NaN or Inf had stopped stays failed with its message."""
        for run_id, member, failed in zip(self.run_ids, self.members, self.failed, strict=True):
            self.store.rewind_run(run_id, member.episodes, member.env_steps)
            if failed:
                self.store.finish_run(run_id, "failed", member.error)

    def _signals_stop_the_loop(self) -> AbstractContextManager[None]:
        """SIGINT and SIGTERM end the loop at the end of a step, with the state saved."""
        if self.state_path is None:
            return nullcontext()

        def note(signum: int) -> None:
            self._stop_signal = signum

        return handle_stop_signals(note)

    def _save_state_when_due(self) -> None:
        """Every ``train.state_every`` episodes per member, on average over members."""
        every = self.config.train.state_every
        if not every or self.state_path is None:
            return
        episodes = sum(m.episodes for m in self.members) // len(self.members)
        if episodes >= self._state_saved_at + every:
            self._state_saved_at = episodes - episodes % every
            self.save_state()

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> TrainSummary:
        """Train until every member has spent its budget; returns the summary."""
        cfg = self.config
        if self.store is not None and self.run_ids[0] is None:
            resolved = cfg.model_dump(mode="json")
            # Each member's row holds the config that reproduces it alone: its seed only.
            self.run_ids = [
                self.store.add_run(
                    cfg.env.id, s, {**resolved, "train": {**resolved["train"], "seeds": [s]}}
                )
                for s in self.seeds
            ]
        try:
            with self._signals_stop_the_loop():
                summary = self._loop()
        except BaseException as err:
            if self.store is not None:
                reason = f"{type(err).__name__}: {err}".strip()
                for run_id, failed in zip(self.run_ids, self.failed, strict=True):
                    if not failed:  # keep the NaN or Inf that stopped it
                        self.store.finish_run(run_id, "failed", reason)
            raise
        finally:
            self.envs.close()
            self.evaluator.close()
        if self.store is not None:
            for run_id, failed in zip(self.run_ids, self.failed, strict=True):
                if not failed:
                    self.store.finish_run(run_id, "done")
        if self.state_path is not None:
            self.state_path.unlink(missing_ok=True)
        return summary

    def _loop(self) -> TrainSummary:
        cfg = self.config
        budget_steps = cfg.train.steps
        batch_size, updates_per_step = cfg.agent.batch_size, cfg.agent.updates_per_step
        self._start = time.perf_counter() - self._wall_before
        obs = self.envs.obs
        bar = TrainProgress(self.members, cfg.train.episodes, budget_steps, self.progress)

        with bar:
            while self.active.any():
                if self.values.pending.any():
                    self.values.start(self.agent.value_estimate(obs))
                actions = self._explore(obs, self.step)
                obs_after, next_obs, rewards, terminated, truncated = self.envs.step(actions)
                self.step += 1
                step = self.step
                self.env_steps += self.active
                self._check_finite_env(obs_after, next_obs, rewards)
                self.values.add(rewards)
                cut = truncated & ~terminated
                if cut.any():
                    self.values.add_tail(cut, self.agent.value_estimate(next_obs))
                self.buffer.add(obs, actions, rewards, next_obs, terminated, truncated)
                obs = obs_after
                if len(self.buffer) > batch_size:
                    for _ in range(updates_per_step):
                        self._learn(batch_size)

                ended = np.flatnonzero(terminated | truncated)
                if ended.size:
                    self.noise.reset(ended)
                    self._end_episodes(ended, terminated)
                if budget_steps is not None and step >= budget_steps:
                    self._finish(list(np.flatnonzero(self.active)))
                # Every step, so a member's schedules depend on its own progress only (not on
                # when the other members happen to end episodes).
                if self.buffer.follows_progress:
                    self.buffer.set_progress(self._progress())
                if ended.size or step % 1000 == 0:
                    bar.update(time.perf_counter() - self._start, step, int(self.env_steps.sum()))
                if ended.size and self.active.any():
                    self._save_state_when_due()
                if self._stop_signal is not None:
                    self.save_state()
                    raise TrainingInterrupted(self._stop_signal, self.state_path)

        wall = time.perf_counter() - self._start
        total_steps = sum(m.env_steps for m in self.members)
        return TrainSummary(
            env_id=cfg.env.id,
            wall_s=wall,
            env_steps_per_s=total_steps / wall if wall > 0 else 0.0,
            members=self.members,
        )

    def _progress(self) -> np.ndarray:
        """Each member's fraction of its budget spent, in env steps or in episodes."""
        if self.config.train.steps is not None:
            return self.env_steps / self.config.train.steps
        episodes = np.array([m.episodes for m in self.members], dtype=np.float64)
        return episodes / self.config.train.episodes

    def _learn(self, batch_size: int) -> None:
        """One update of every member on a fresh minibatch; TD errors back to the buffer."""
        batch = self.buffer.sample(batch_size)
        stats = self.agent.update(batch)
        self.learning.add(stats.critic_loss, stats.mean_q)
        finite = (
            stats.critic_loss.isfinite() & stats.actor_loss.isfinite() & stats.mean_q.isfinite()
        )
        if not finite.all():
            self._fail_nonfinite(
                ~finite.cpu().numpy(),
                {
                    "critic loss": stats.critic_loss,
                    "actor loss": stats.actor_loss,
                    "Q": stats.mean_q,
                },
            )
        if self.buffer.needs_priorities:
            td_error = stats.td_error.cpu().numpy()
            td_error[self.failed] = 0.0  # keeps a failed member's sum tree finite
            self.buffer.update_priorities(batch.indices, td_error)

    def _check_finite_env(self, obs: np.ndarray, next_obs: np.ndarray, rewards: np.ndarray) -> None:
        """A non-finite reward or observation fails its member; the values are zeroed in place
        so that replay structures (reward bins, strata) stay finite for every member."""
        finite = np.isfinite(rewards) & np.isfinite(next_obs).all(axis=1)
        if finite.all():
            return
        quantities = {"reward": rewards, "observation": np.abs(next_obs).max(axis=1)}
        self._fail_nonfinite(~finite, quantities)
        for array in (obs, next_obs, rewards):
            np.nan_to_num(array, copy=False, nan=0.0, posinf=0.0, neginf=0.0)

    def _fail_nonfinite(self, struck: np.ndarray, quantities: dict[str, Any]) -> None:
        """Stop the members ``struck`` (K,) that have not failed yet, naming the first
        non-finite quantity of each; the others go on."""
        for k in np.flatnonzero(struck & ~self.failed):
            name, value = next(
                (name, float(values[k]))
                for name, values in quantities.items()
                if not math.isfinite(float(values[k]))
            )
            member = self.members[k]
            kind = "nan" if math.isnan(value) else "inf"
            message = (
                f"member {k} (seed {member.seed}): {name} is {kind} at env step {self.env_steps[k]}"
            )
            member.error = message
            self.failed[k], self.active[k] = True, False
            print(f"ddpglab: warning: {message}; the other members go on", file=sys.stderr)
            if self.store is not None:
                self.store.finish_run(self.run_ids[k], "failed", message)

    def _end_episodes(self, ended: np.ndarray, terminated: np.ndarray) -> None:
        """Record the episodes that just ended, then evaluate, checkpoint or finish members."""
        budget = self.config.train.episodes
        eval_every, ckpt_every = self.config.train.eval_every, self.config.train.checkpoint_every
        rows, to_eval, finished = [], [], []
        for k in ended:
            if not self.active[k]:
                continue  # a member past its budget keeps stepping in lockstep, unrecorded
            member = self.members[k]
            ret = float(self.buffer.last_episode_return[k])
            loss, q = self.learning.means(k)
            member.episodes += 1
            member.env_steps = int(self.env_steps[k])
            member.returns.append(ret)
            wall = time.perf_counter() - self._start
            length = int(self.buffer.last_episode_length[k])
            threshold = self._episode_threshold(k)
            row = (member.episodes, ret, length, member.env_steps, wall, loss, q, threshold)
            values = (int(terminated[k]), _finite(self.values.q_start[k]))
            values += (_finite(self.values.discounted_return[k]),)
            rows.append((self.run_ids[k], *row, *values))
            if budget is not None and member.episodes >= budget:
                finished.append(k)
                continue
            if eval_every and member.episodes % eval_every == 0:
                to_eval.append(k)
            if ckpt_every and member.episodes % ckpt_every == 0:
                self._checkpoint(k)
        self.learning.reset(ended)
        self.values.end(ended)
        if rows and self.store is not None:
            self.store.add_episodes(rows)
        self._record_eval(to_eval)
        self._finish(finished)

    def _episode_threshold(self, k: int) -> float | None:
        """The return threshold member k's episode was classified by (stratified replay)."""
        thresholds = self.buffer.last_episode_threshold
        return None if thresholds is None else float(thresholds[k])

    def _finish(self, members: list[int]) -> None:
        """Members that spent their budget: final evaluation and checkpoint, then inactive."""
        for k in members:
            self.members[k].env_steps = int(self.env_steps[k])
            self.active[k] = False
        self._record_eval(members)
        for k in members:
            self._checkpoint(k)


def _finite(value: float) -> float | None:
    """A value for the store: None where it is NaN or infinite."""
    return float(value) if math.isfinite(value) else None


def train(
    config: Config,
    out: str | Path | None = None,
    progress: bool = False,
    tensorboard: bool = False,
    resume: bool = False,
) -> TrainSummary:
    """Train one member per seed in ``config.train.seeds``; the Python API of ``ddpglab train``.

    With ``out``, writes ``config.yaml``, ``results.sqlite``, ``checkpoints/``, ``curve.png``
    and ``summary.json`` there (the folder is created; existing run files are not checked,
    see the CLI for that), and with ``tensorboard`` also each member's scalars in
    ``out/tensorboard/``. While training, ``out/state.npz`` holds the latest full state;
    with ``resume``, training continues from it (when present) as if it never stopped,
    and the store forgets what the runs recorded after it. Without ``out``, nothing is
    written and only the summary is returned.
    """
    if out is None:
        if tensorboard or resume:
            raise ConfigError("tensorboard logging and resuming need an output folder")
        return Trainer(config, progress=progress).run()
    from ddpglab.config import to_yaml
    from ddpglab.report.curves import plot_learning_curves

    out = Path(out)
    # Envs, networks and buffer first: a config the machine cannot hold fails before any file.
    trainer = Trainer(config, out, progress=progress)
    resumed = resume and trainer.resume()
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.yaml", to_yaml(config))
    with ResultsStore(out / "results.sqlite") as store:
        if tensorboard:
            from ddpglab.tensorboard import LOG_DIR, TensorBoardStore

            trainer.store = TensorBoardStore(store, out / LOG_DIR)
        else:
            trainer.store = store
        if resumed:
            trainer.rewind_store()
        try:
            summary = trainer.run()
        finally:
            if tensorboard:
                trainer.store.close_writers()
        plot_learning_curves(store, out / "curve.png", title=config.env.id)
    write_text_atomic(out / "summary.json", json.dumps(summary.to_dict(), indent=2))
    return summary
