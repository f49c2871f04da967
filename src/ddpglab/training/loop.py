"""The training loop: act, step, store, learn, record, evaluate, save state.

K members (one per seed) run in lockstep: one batched actor forward picks every member's
action, each member steps its own env, and one batched update trains all members at
once. Member k's numbers depend on its own seed only.
"""

from __future__ import annotations

import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddpglab.agent import DDPGAgent
from ddpglab.config import Config, ConfigError
from ddpglab.envs import MemberEnvs
from ddpglab.evaluation import MemberEvaluator
from ddpglab.machine import preflight, training_device
from ddpglab.noise import make_noise
from ddpglab.progress import TrainProgress
from ddpglab.replay import build_buffer
from ddpglab.run_control import handle_stop_signals
from ddpglab.seeding import member_rngs
from ddpglab.state_files import load_state, save_state
from ddpglab.store import EpisodeRow, ResultsStore
from ddpglab.summary import LearningStats, MemberSummary, TrainSummary, ValueTracker
from ddpglab.training.faults import (
    Fault,
    UpdateWatch,
    action_fault,
    check_every,
    env_fault,
    finite_or_none,
    zero_nonfinite,
)
from ddpglab.training.recorder import Recorder
from ddpglab.training.state import (
    STATE_FILE,
    TrainingInterrupted,
    full_state,
    restore_full_state,
    state_save_due,
)
from ddpglab.training.update_rate import UpdateRate


class Trainer:
    """Train K independent DDPG members, one per seed in ``config.train.seeds``.

    Args:
        config: a validated :class:`~ddpglab.config.Config`.
        out_dir: where actor files go (``out_dir/checkpoints``); None keeps none.
        store: results store receiving every episode, evaluation and actor file; optional.
        progress: show a live progress bar (only when stderr is a terminal).
        state_path: where the full training state is saved every ``train.state_every``
            episodes and when SIGINT or SIGTERM stops the run (default
            ``out_dir/state.npz``; None without ``out_dir``). Removed when the run finishes,
            unless ``train.keep_state``: then it holds the final state, to continue from.
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
        self.progress = progress
        self.seeds = list(config.train.seeds)
        if config.train.torch_threads is not None:
            torch.set_num_threads(config.train.torch_threads)
        self.device = training_device(config.train.device)
        env = config.env
        self.envs = MemberEnvs(
            env.id, self.seeds, env.max_episode_steps, env.kwargs, env.action_bounds
        )
        obs_dim, act_dim = self.envs.obs_dim, self.envs.act_dim
        try:  # the device is checked above: it is this trainer's before its envs are made
            preflight(config, dims=(obs_dim, act_dim), check_device=False)
        except ConfigError:
            self.envs.close()
            raise
        self.agent = DDPGAgent(
            obs_dim, act_dim, config.agent, self.seeds, self.device, config.train.precision
        )
        self.buffer = build_buffer(
            config.replay, obs_dim, act_dim, self.seeds, config.agent.gamma, self.device
        )
        self.noise = make_noise(config.noise, act_dim, self.seeds)
        self.random_action_rngs = member_rngs(self.seeds, "random_actions")
        self.evaluator = MemberEvaluator.beside(self.envs)
        self.recorder = Recorder(config, store, self.out_dir, obs_dim, act_dim)
        k_members = len(self.seeds)
        self.members = [MemberSummary(seed=s) for s in self.seeds]
        # Loop state: which members still spend their budget, and their env steps so far.
        self.active = np.ones(k_members, dtype=bool)
        self.failed = np.zeros(k_members, dtype=bool)  # stopped by a NaN or Inf
        self.env_steps = np.zeros(k_members, dtype=np.int64)
        self.learning = LearningStats(k_members, self.device)
        every = check_every(config.train.finite_check_every, self.device)
        self.update_watch = UpdateWatch(k_members, every, self.device)
        self.values = ValueTracker(k_members, config.agent.gamma)
        self.step = 0  # env steps taken in lockstep (each member's budget counts its own)
        self.state_saved_at = 0  # mean episodes per member at the latest state save
        self.wall_before = 0.0  # wall time spent before a resume
        self.started_at = time.perf_counter()
        self._stop_signal: int | None = None

    # -- acting ---------------------------------------------------------------------------

    def _explore(self, obs: np.ndarray, step: int) -> np.ndarray:
        """Uniform random actions before ``learning_starts``, then clip(mu(s) + noise, -1, 1)."""
        if step < self.config.agent.learning_starts:
            dim = self.envs.act_dim
            uniform = [rng.uniform(-1.0, 1.0, dim) for rng in self.random_action_rngs]
            return np.stack(uniform).astype(np.float32)
        actions = np.clip(self.agent.act(obs) + self.noise(), -1.0, 1.0)
        finite = np.isfinite(actions).all(axis=1)
        if not finite[self.active].all():
            self._check_finite_updates()  # an update that broke the actor is named first
            if (fault := action_fault(actions, self.env_steps)) is not None:
                self._fail_nonfinite(fault)  # before its env steps
        actions[self.failed | ~finite] = 0.0  # failed, or NaN once done
        return actions

    def evaluate(self, members: list[int]) -> dict[int, list[float]]:
        """Deterministic returns (no noise) of ``eval_episodes`` episodes per given member,
        each on its own eval env (see :class:`~ddpglab.evaluation.MemberEvaluator`)."""
        return self.evaluator.returns(self.agent.act, members, self.config.train.eval_episodes)

    def save_actor(self, k: int, path: Path) -> None:
        """Save member k's actor with what is needed to rebuild and run it."""
        self.recorder.write_actor(path, k, self.members[k], self.agent.actor)

    # -- full state, to resume from ---------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything the loop needs to continue exactly (see :mod:`ddpglab.training.state`)."""
        return full_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`, on a Trainer freshly made with the same config.

        Raises:
            ConfigError: the state belongs to another config or to another ddpglab format.
        """
        restore_full_state(self, state)

    def save_state(self) -> None:
        """Write :meth:`state_dict` to ``state_path`` atomically (nothing without a path),
        after a look at the updates not yet checked: a state holds no pending fault."""
        if self.state_path is not None:
            self._check_finite_updates()
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
        self.recorder.rewind(self.members, self.failed)

    def _signals_stop_the_loop(self) -> AbstractContextManager[None]:
        """SIGINT and SIGTERM end the loop at the end of a step, with the state saved."""
        if self.state_path is None:
            return nullcontext()

        def note(signum: int) -> None:
            self._stop_signal = signum

        return handle_stop_signals(note)

    def _save_state_when_due(self) -> None:
        """Every ``train.state_every`` episodes per member, on average over members."""
        if self.state_path is None:
            return
        saved_at = state_save_due(self.config.train.state_every, self.members, self.state_saved_at)
        if saved_at is not None:
            self.state_saved_at = saved_at
            self.save_state()

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> TrainSummary:
        """Train until every member has spent its budget; returns the summary."""
        self.recorder.register_runs()
        try:
            with self._signals_stop_the_loop():
                summary = self._loop()
        except BaseException as err:
            self.recorder.finish_runs(self.failed, error=f"{type(err).__name__}: {err}".strip())
            raise
        finally:
            self.envs.close()
            self.evaluator.close()
        self.recorder.finish_runs(self.failed)
        if self.state_path is not None:
            if self.config.train.keep_state:
                self.save_state()
            else:
                self.state_path.unlink(missing_ok=True)
        return summary

    def _loop(self) -> TrainSummary:
        cfg = self.config
        budget_steps = cfg.train.steps
        batch_size, update_rate = cfg.agent.batch_size, UpdateRate(cfg.agent.updates_per_step)
        self.started_at = time.perf_counter() - self.wall_before
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
                    for _ in range(update_rate.due(step)):
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
                if ended.size or step % 1000 == 0 or not self.active.any():
                    elapsed = time.perf_counter() - self.started_at
                    bar.update(elapsed, step, int(self.env_steps.sum()))
                if ended.size and self.active.any():
                    self._save_state_when_due()
                if self._stop_signal is not None:
                    self.save_state()
                    raise TrainingInterrupted(self._stop_signal, self.state_path)
        self._check_finite_updates()

        wall = time.perf_counter() - self.started_at
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
        if self.update_watch.add(self.env_steps, stats):
            self._check_finite_updates()
        if self.buffer.needs_priorities:
            td_error = stats.td_error.cpu().numpy()
            # Keeps the sum trees finite: of a failed member, and of one struck since the
            # latest look (finite_check_every > 1), whose TD errors may be NaN.
            td_error[self.failed] = 0.0
            zero_nonfinite(td_error)
            self.buffer.update_priorities(batch.indices, td_error)

    # -- faults -----------------------------------------------------------------------------

    def _check_finite_updates(self) -> None:
        """Look at the losses and Q of the updates since the latest look (every
        ``train.finite_check_every`` updates, and before anything of a member is recorded
        or saved): a member whose numbers went NaN or Inf is failed."""
        fault = self.update_watch.look()
        if fault is not None:
            self._fail_nonfinite(fault)

    def _check_finite_env(self, obs: np.ndarray, next_obs: np.ndarray, rewards: np.ndarray) -> None:
        """A non-finite reward or observation fails its member; the values are zeroed in place
        so that replay structures (reward bins, strata) stay finite for every member."""
        fault = env_fault(next_obs, rewards, self.env_steps)
        if fault is None:
            return
        self._check_finite_updates()  # an update that broke the member earlier is named first
        self._fail_nonfinite(fault)
        zero_nonfinite(obs, next_obs, rewards)

    def _fail_nonfinite(self, fault: Fault) -> None:
        """Stop the members the fault struck that still spend their budget (one past it
        steps on in lockstep, its run done), naming each one's first non-finite quantity."""
        for k in np.flatnonzero(fault.struck & self.active):
            member = self.members[k]
            message = fault.message(k, member.seed)
            member.error = message
            self.failed[k], self.active[k] = True, False
            print(f"ddpglab: warning: {message}; the other members go on", file=sys.stderr)
            self.recorder.fail_run(k, message)

    # -- episode ends and budgets -------------------------------------------------------------

    def _end_episodes(self, ended: np.ndarray, terminated: np.ndarray) -> None:
        """Record the episodes that just ended, then evaluate, checkpoint or finish members."""
        self._check_finite_updates()  # a member struck since the latest look records nothing
        budget = self.config.train.episodes
        eval_every, ckpt_every = self.config.train.eval_every, self.config.train.checkpoint_every
        rows, to_eval, finished, recorded = [], [], [], []
        for k in ended:
            if not self.active[k]:
                continue  # a member past its budget keeps stepping in lockstep, unrecorded
            recorded.append(k)
            member = self.members[k]
            ret = float(self.buffer.last_episode_return[k])
            loss, q = self.learning.means(k)
            member.episodes += 1
            member.env_steps = int(self.env_steps[k])
            member.returns.append(ret)
            rows.append(
                EpisodeRow(
                    run_id=self.recorder.run_ids[k],
                    episode=member.episodes,
                    episode_return=ret,
                    length=int(self.buffer.last_episode_length[k]),
                    env_steps=member.env_steps,
                    wall_s=time.perf_counter() - self.started_at,
                    critic_loss=loss,
                    mean_q=q,
                    threshold=self._episode_threshold(k),
                    terminated=int(terminated[k]),
                    q_start=finite_or_none(self.values.q_start[k]),
                    discounted_return=finite_or_none(self.values.discounted_return[k]),
                )
            )
            if budget is not None and member.episodes >= budget:
                finished.append(k)
                continue
            if eval_every and member.episodes % eval_every == 0:
                to_eval.append(k)
            if ckpt_every and member.episodes % ckpt_every == 0:
                self.recorder.add_actor_file(k, self.members[k], self.agent.actor)
        self.learning.reset(ended)
        self.values.end(ended)
        # The recorded members' sampling laws (at most O(N) each): at episode ends, never per step.
        law = self.buffer.replay_stats(self.config.agent.batch_size, recorded) if recorded else None
        self.recorder.add_episodes(rows, self.recorder.replay_rows(law, recorded, self.members))
        self._record_eval(to_eval)
        self._finish(finished)

    def _episode_threshold(self, k: int) -> float | None:
        """The return threshold member k's episode was classified by (stratified replay)."""
        thresholds = self.buffer.last_episode_threshold
        return None if thresholds is None else float(thresholds[k])

    def _record_eval(self, members: list[int]) -> None:
        members = self.recorder.unevaluated(members, self.members)
        if not members:
            return
        for k, returns in self.evaluate(members).items():
            self.recorder.add_evaluation(k, self.members[k], returns)

    def _finish(self, members: list[int]) -> None:
        """Members that spent their budget: final evaluation and actor file, then inactive."""
        self._check_finite_updates()
        members = [k for k in members if not self.failed[k]]  # struck since the latest look
        for k in members:
            self.members[k].env_steps = int(self.env_steps[k])
            self.active[k] = False
        self._record_eval(members)
        for k in members:
            self.recorder.add_actor_file(k, self.members[k], self.agent.actor)
