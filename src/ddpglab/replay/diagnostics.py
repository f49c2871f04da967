"""Replay diagnostics: what a member's sampling law implies, in three numbers.

Korniak et al. 2026 ("When Does Non-Uniform Replay Matter in RL?", arXiv:2605.10236) find
that replay volume, the expected recency of the replayed transitions and the entropy of
the sampling law govern whether a non-uniform sampler helps. Per member, at an episode end:

* ``stored``: transitions the member can be sampled from (its window, if one is set);
* ``expected_age``: E_P[age] = sum_i P(i) age_i, in env steps, age 0 the newest stored
  transition (members add one transition per env step, in lockstep);
* ``entropy``: H(P) = -sum_i P(i) ln P(i) in nats over the slots the law can draw;
  exp(H) is the effective number of transitions (|W| for uniform over W).

They are exact, from the law each strategy states (``probabilities``) and each slot's age
(:meth:`ReplayDiagnostics.slot_ages`): O(N) per member. Strategies whose law has a closed
form (uniform and window, geometric, ERE) override :meth:`ReplayDiagnostics.replay_stats`
with it, O(1) per member; CER's newest-transition mixture is applied to a closed form by
:func:`with_newest`. Volume is the trainer's (batch size x updates per step), not the law's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class ReplayStats(NamedTuple):
    """Per member asked for (arrays of K by default): what it can be sampled from, E[age]
    and H(P) of its law."""

    stored: np.ndarray  # (K,) int64
    expected_age: np.ndarray  # (K,) float64, env steps
    entropy: np.ndarray  # (K,) float64, nats


def law_stats(law: np.ndarray, ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E_P[age] and H(P) per row of ``law`` (K, slots), ``ages`` (K or 1, slots) in env steps.

    Only the slots the law can draw count (0 ln 0 = 0); a member at a time, so that at
    1e6 slots x 30 members no temporary of the whole (K, slots) is made."""
    expected, entropy = np.zeros(len(law)), np.zeros(len(law))
    for k, row in enumerate(law):
        expected[k] = row @ ages[k % len(ages)]  # ages are finite everywhere: 0 x age = 0
        logs = np.log(row, out=np.zeros_like(row), where=row > 0)
        entropy[k] = -(row @ logs)
    return expected, entropy


def uniform_stats(n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform over the n newest transitions: E[age] = (n - 1) / 2, H = ln n, P(newest) =
    1 / n, each (K,)."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    return (n - 1.0) / 2.0, np.log(n), 1.0 / n


def geometric_stats(p: float, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The geometric law P(a) = q^a p / (1 - q^n), q = 1 - p, truncated to ages [0, n):

    E[a] = q / p - n q^n / (1 - q^n),
    H = -sum_a P(a) ln P(a) = -(E[a] ln q + ln p - ln(1 - q^n)),
    P(newest) = p / (1 - q^n); each (K,). expm1 and log1p keep 1 - q^n exact for small p.
    """
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    log_q = np.log1p(-p)
    mass = -np.expm1(n * log_q)  # 1 - q^n
    q_n = np.exp(n * log_q)
    expected = (1.0 - p) / p - n * q_n / mass
    expected = np.clip(expected, 0.0, (n - 1.0) / 2.0)  # rounding: never past uniform's mean
    entropy = -(expected * log_q + np.log(p) - np.log(mass))
    return expected, entropy, p / mass


def with_newest(
    expected: np.ndarray, entropy: np.ndarray, p_newest: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """E[age] and H of CER's mixture P' = (1/B) [newest] + s P, s = (B - 1) / B, from those
    of the strategy's law P and its P(newest) = P_0 (the newest has age 0):

    E' = s E,   H' = -P'_0 ln P'_0 + s (H + P_0 ln P_0) - s (1 - P_0) ln s.
    """
    s = (batch_size - 1) / batch_size
    mixed_newest = 1.0 / batch_size + s * p_newest
    if s == 0.0:  # B = 1: every batch is the newest transition alone
        return np.zeros_like(expected), np.zeros_like(entropy)
    with np.errstate(divide="ignore", invalid="ignore"):
        newest_term = np.where(p_newest > 0, p_newest * np.log(p_newest), 0.0)
    others = s * (entropy + newest_term) - s * (1.0 - p_newest) * np.log(s)
    return s * expected, -mixed_newest * np.log(mixed_newest) + others


class ReplayDiagnostics:
    """The diagnostics half of :class:`~ddpglab.replay.storage.ReplayBuffer`: every
    strategy gets :meth:`replay_stats` from its ``probabilities`` for free."""

    members: int
    combined: bool

    def replay_stats(
        self, batch_size: int | None = None, members: Sequence[int] | None = None
    ) -> ReplayStats:
        """``stored``, ``expected_age`` and ``entropy`` of the law now (module docstring) of
        ``members`` (all by default), one row each in that order, for batches of
        ``batch_size`` (the law of stratified replay and CER's mixture depend on it).
        Exact; O(N) per member asked for, after ``probabilities`` for all K, unless a
        strategy overrides it."""
        rows = self.member_rows(members)
        ages = self.slot_ages()
        ages = ages if len(ages) == 1 else ages[rows]
        expected, entropy = law_stats(self.probabilities(batch_size)[rows], ages)
        return ReplayStats(self.sampleable_counts()[rows], expected, entropy)

    def member_rows(self, members: Sequence[int] | None) -> list[int]:
        """The members whose stats are asked for: all of them when ``members`` is None."""
        return list(range(self.members)) if members is None else list(members)

    def slot_ages(self) -> np.ndarray:
        """Age in env steps of the transition in each storage slot, (K or 1, slots): 0 for
        the newest. Where the law puts no mass the value is irrelevant. The ring's
        ages; strategies that keep other regions (stratified's FIFOs) override it."""
        return self.ring_ages()[None, :]

    def sampleable_counts(self) -> np.ndarray:
        """Transitions each member can be sampled from (K,): its window of what it stores."""
        return self.window_sizes().astype(np.int64)

    def closed_form_stats(
        self,
        expected: np.ndarray,
        entropy: np.ndarray,
        p_newest: np.ndarray,
        batch_size: int | None,
        members: Sequence[int] | None = None,
    ) -> ReplayStats:
        """A strategy's closed-form E[age], H and P(newest) of one draw, each (K,), as
        :meth:`replay_stats` gives them: with CER's newest transition mixed in when
        ``combined``, for ``members`` only. Members not asked for may hold zeros."""
        if self.combined and batch_size is not None:
            expected, entropy = with_newest(expected, entropy, p_newest, batch_size)
        rows = self.member_rows(members)
        return ReplayStats(self.sampleable_counts()[rows], expected[rows], entropy[rows])

    # Provided by the storage (ReplayBuffer); named here for readers and type checkers.
    def probabilities(self, batch_size: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def ring_ages(self) -> np.ndarray:
        raise NotImplementedError

    def window_sizes(self) -> np.ndarray:
        raise NotImplementedError
