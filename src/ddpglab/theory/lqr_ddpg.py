"""DDPG against the Riccati optimum: train on ``ddpglab/LQR-v0`` with the ordinary Trainer,
read each member's learned gain K off its linear actor, and compare it with K*.

The comparison is made where the two agree on the objective. DDPG's critic learns the
discounted infinite-horizon Q (it bootstraps through the time limit, which never
terminates an LQR episode), whose optimal policy is the discounted Riccati gain K* for the
same gamma. So the figures are: the relative Frobenius error |K - K*|_F / |K*|_F; the exact
discounted cost gap J(K) / J(K*) - 1; and, as the toolkit's users would measure it, the
undiscounted return of K and of K* on the same evaluation episodes (same initial states,
same noise draws, since the env's noise does not depend on the actions).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ddpglab.actor_file import read_actor_file
from ddpglab.config import Config, ConfigError
from ddpglab.envs import action_bounds, make_env
from ddpglab.theory.lqr import LQR, Array, cost, discounted_radius, relative_error, riccati
from ddpglab.theory.lqr_env import LQREnv

LQR_ENV_ID = "ddpglab/LQR-v0"
GAIN_TOLERANCE = 0.05  # relative Frobenius error of K
RETURN_TOLERANCE = 0.02  # shortfall of the return relative to K*'s


def actor_gain(weight: Array, action_high: Array) -> Array:
    """K with u = -K x for a linear actor a = W^T x in [-1, 1] units, rescaled onto the
    symmetric box [-h, h] as u = h a: K = -diag(h) W^T."""
    return -np.asarray(action_high, dtype=np.float64)[:, None] * np.asarray(weight).T


def gain_return(
    env_id: str,
    k: Array,
    episodes: int,
    seed: int,
    horizon: int | None,
    env_kwargs: dict | None = None,
) -> Array:
    """Undiscounted return of u = -K x per episode; episode i is reset with seed + i, so two
    gains evaluated with one seed meet the same initial states and noise. ``env_kwargs``
    (``env.kwargs``) set the env's system (its matrices A, B, Q, R, its noise)."""
    env = make_env(env_id, horizon, env_kwargs)
    returns = np.empty(episodes)
    try:
        for i in range(episodes):
            x, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                x, r, terminated, truncated, _ = env.step(-k @ x.astype(np.float64))
                total += float(r)
                done = terminated or truncated
            returns[i] = total
    finally:
        env.close()
    return returns


@dataclass
class MemberResult:
    """One seed's learned gain and how far it is from the optimum."""

    seed: int
    gain: list[list[float]]
    gain_error: float
    cost_gap: float  # J(K) / J(K*) - 1, exact and discounted
    eval_return: float  # mean undiscounted return of K
    optimal_return: float  # of K*, on the same episodes
    history: list[tuple[int, float]] = field(default_factory=list)  # (episode, gain error)

    @property
    def return_shortfall(self) -> float:
        """(R* - R) / |R*|: how much worse than K* the learned gain does, relatively."""
        return (self.optimal_return - self.eval_return) / abs(self.optimal_return)

    @property
    def passed(self) -> bool:
        return self.gain_error <= GAIN_TOLERANCE and self.return_shortfall <= RETURN_TOLERANCE


@dataclass
class LQRExperiment:
    """All members' results with the optimum they were compared to."""

    gamma: float
    optimal_gain: list[list[float]]
    optimal_cost: float
    eval_episodes: int
    wall_s: float
    members: list[MemberResult]

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.members)


def check_lqr_config(config: Config) -> None:
    """Refuse configs the comparison does not apply to, with a one-line reason."""
    if config.env.id != LQR_ENV_ID:
        raise ConfigError(f"the LQR experiment needs env.id={LQR_ENV_ID}, got {config.env.id}")
    if config.agent.actor != "linear":
        raise ConfigError("the LQR experiment reads K off a linear actor: set agent.actor=linear")
    if not 0.0 < config.agent.gamma < 1.0:
        raise ConfigError(f"agent.gamma must be in (0, 1) for K*, got {config.agent.gamma}")
    bounds = config.env.action_bounds
    if bounds is not None:
        low, high = np.broadcast_arrays(*(np.asarray(b, dtype=np.float64) for b in bounds))
        if not np.array_equal(low, -high):
            raise ConfigError(
                "the LQR experiment reads K = -diag(h) W^T off symmetric action bounds "
                f"[-h, h]: env.action_bounds {list(bounds)} are not"
            )


def _history(folder: Path, seed: int, high: Array, k_star: Array) -> list[tuple[int, float]]:
    """(episode, gain error) from the checkpoints the trainer wrote for one seed."""
    points = []
    for path in sorted((folder / "checkpoints" / f"seed{seed}").glob("*.pt")):
        saved = read_actor_file(path)  # the one reader: weights only, one-line refusals
        k = actor_gain(saved["actor"]["weight"].numpy(), high)
        points.append((int(saved["episode"]), relative_error(k, k_star)))
    return points


def run_lqr_experiment(
    config: Config, eval_episodes: int = 20, eval_seed: int = 10_000
) -> LQRExperiment:
    """Train ``config`` (one member per seed), then compare every member's gain with K*."""
    from ddpglab.training import Trainer

    check_lqr_config(config)
    probe = make_env(config.env.id, config.env.max_episode_steps, config.env.kwargs)
    env: LQREnv = probe.unwrapped  # type: ignore[assignment]
    try:  # the actor's [-1, 1] is rescaled to these, as the trainer does
        high = action_bounds(probe.action_space, config.env.action_bounds)[1].astype(np.float64)
    finally:
        probe.close()
    problem = env.problem(config.agent.gamma)
    k_star, _ = riccati(problem)
    horizon = config.env.max_episode_steps

    def returns_of(gain: Array) -> Array:
        return gain_return(
            config.env.id, gain, eval_episodes, eval_seed, horizon, config.env.kwargs
        )

    optimal = returns_of(k_star)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ddpglab-lqr-") as tmp:
        trainer = Trainer(config, out_dir=tmp)
        initial = trainer.agent.actor.weight.detach().numpy().copy()
        trainer.run()
        final = trainer.agent.actor.weight.detach().numpy()
        members = []
        for k, seed in enumerate(config.train.seeds):
            gain = actor_gain(final[k], high)
            start_error = relative_error(actor_gain(initial[k], high), k_star)
            history = [(0, start_error), *_history(Path(tmp), seed, high, k_star)]
            returns = returns_of(gain)
            members.append(
                MemberResult(
                    seed=seed,
                    gain=gain.tolist(),
                    gain_error=relative_error(gain, k_star),
                    cost_gap=_cost_gap(problem, gain, k_star),
                    eval_return=float(returns.mean()),
                    optimal_return=float(optimal.mean()),
                    history=history,
                )
            )
    return LQRExperiment(
        gamma=problem.gamma,
        optimal_gain=k_star.tolist(),
        optimal_cost=cost(problem, k_star),
        eval_episodes=eval_episodes,
        wall_s=time.perf_counter() - start,
        members=members,
    )


def _cost_gap(problem: LQR, gain: Array, k_star: Array) -> float:
    """J(K) / J(K*) - 1; infinite for a gain that does not stabilize."""
    if discounted_radius(problem, gain) >= 1.0:
        return float("inf")
    return cost(problem, gain) / cost(problem, k_star) - 1.0
