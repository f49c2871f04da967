"""What training reports: per-member results, the run's summary, learning statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from ddpglab.config import AgentConfig


@dataclass
class MemberSummary:
    """One member's (seed's) results."""

    seed: int
    episodes: int = 0
    env_steps: int = 0
    returns: list[float] = field(default_factory=list)
    eval_return: float | None = None
    error: str | None = None  # why the member stopped early (a NaN or Inf), if it did


@dataclass
class TrainSummary:
    """What ``summary.json`` holds."""

    env_id: str
    wall_s: float
    env_steps_per_s: float
    members: list[MemberSummary]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_warning(agent: AgentConfig, lockstep_steps: int, total_updates: int) -> str | None:
    """Why a finished run's returns say nothing about learning, if they do not: no gradient
    update ever happened, or every action was a uniform random one (the run ended within
    ``agent.learning_starts``). Then every replay kind gives the same returns; one line."""
    if total_updates == 0:
        if agent.updates_per_step == 0:
            why = "agent.updates_per_step is 0"
        elif agent.updates_per_step < 1 and lockstep_steps > agent.batch_size:
            why = (
                f"agent.updates_per_step {agent.updates_per_step} gives no update in the "
                f"{lockstep_steps - agent.batch_size} env steps after the buffer held a batch"
            )
        else:
            why = (
                f"updates start once the buffer holds more than one batch of "
                f"{agent.batch_size}, which it never did"
            )
        return f"no gradient update happened ({why}): the returns are those of the untrained policy"
    if lockstep_steps <= agent.learning_starts:
        return (
            f"the run ended after {lockstep_steps} env steps, within agent.learning_starts "
            f"({agent.learning_starts}): every action was uniform random, so the returns do "
            "not depend on what was learned"
        )
    return None


class LearningStats:
    """Per-member sums of critic loss and mean Q over the updates of the current episode."""

    def __init__(self, members: int, device: str | torch.device = "cpu"):
        self.total_updates = 0  # over the whole run: whether the agent learned at all
        self.updates = np.zeros(members, dtype=np.int64)
        self.loss_sum = torch.zeros(members, device=device)
        self.q_sum = torch.zeros(members, device=device)

    def add(self, critic_loss: torch.Tensor, mean_q: torch.Tensor) -> None:
        """Accumulate one update's statistics on the device (no conversion per step)."""
        self.loss_sum += critic_loss
        self.q_sum += mean_q
        self.updates += 1
        self.total_updates += 1

    def means(self, k: int) -> tuple[float | None, float | None]:
        """Member k's mean critic loss and mean Q this episode; None if it did not learn."""
        n = int(self.updates[k])
        if n == 0:
            return None, None
        return float(self.loss_sum[k]) / n, float(self.q_sum[k]) / n

    def reset(self, members: np.ndarray) -> None:
        self.updates[members] = 0
        self.loss_sum[members] = 0.0
        self.q_sum[members] = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "loss_sum": self.loss_sum,
            "q_sum": self.q_sum,
            "total_updates": self.total_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # -1: unknown (a state saved before the count was kept)
        self.total_updates = int(state.get("total_updates", -1))
        self.updates[...] = state["updates"]
        self.loss_sum.copy_(state["loss_sum"])
        self.q_sum.copy_(state["q_sum"])


class ValueTracker:
    """Per member: the critic's estimate Q(s_0, mu(s_0)) when its episode began, and the
    discounted return the episode then collected,

        G_0 = sum_{t<T} gamma^t r_t  [+ gamma^T Q(s_T, mu(s_T)) if the time limit cut it at s_T].

    The critic bootstraps through truncation, so a perfect critic's Q(s_0) equals G_0 only
    with the tail (without it, Pendulum's 200 steps at gamma 0.99 would show a perfect
    critic 13 % off). Side by side they show whether the critic over- or underestimates
    what its policy earns."""

    def __init__(self, members: int, gamma: float):
        self.gamma = gamma
        self.pending = np.ones(members, dtype=bool)  # episodes begun, Q(s_0) not yet taken
        self.q_start = np.full(members, np.nan)
        self.discounted_return = np.zeros(members)
        self.discount = np.ones(members)  # gamma^t at the episode's next step

    def start(self, q: np.ndarray) -> None:
        """Take Q(s_0, mu(s_0)) of the members whose episode just began from ``q``, (K,)."""
        self.q_start[self.pending] = q[self.pending]
        self.discounted_return[self.pending] = 0.0
        self.discount[self.pending] = 1.0
        self.pending[:] = False

    def add(self, rewards: np.ndarray) -> None:
        """G_0 += gamma^t r_t for every member."""
        self.discounted_return += self.discount * rewards
        self.discount *= self.gamma

    def add_tail(self, cut: np.ndarray, q_end: np.ndarray) -> None:
        """G_0 += gamma^T Q(s_T, mu(s_T)) for the members whose episode the time limit cut
        (``cut``, a (K,) mask), with ``q_end`` the critic's values at their last states."""
        self.discounted_return[cut] += self.discount[cut] * q_end[cut]

    def end(self, members: np.ndarray) -> None:
        """These members' episodes ended: their next one needs its Q(s_0)."""
        self.pending[members] = True

    def state_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "q_start": self.q_start,
            "discounted_return": self.discounted_return,
            "discount": self.discount,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            getattr(self, name)[...] = value
