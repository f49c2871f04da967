"""How many gradient updates each env step gets, for a rate that may be a fraction."""

from __future__ import annotations

from fractions import Fraction


class UpdateRate:
    """``agent.updates_per_step`` = u updates per env step, u any rate >= 0.

    Step t (1, 2, ...) gets floor(t u) - floor((t - 1) u) updates, so that the first T
    steps get floor(T u) in all: u = 0.25 updates on every 4th step, u = 1.5 alternates 1
    and 2, a whole u gives u every step. u is held as a fraction (the nearest with a
    denominator up to 1e6), so the count is exact integer arithmetic, not float rounding.
    Replay volume, the transitions replayed per env step (Korniak et al. 2026), is
    batch size x u.
    """

    def __init__(self, rate: float):
        self.rate = Fraction(rate).limit_denominator(10**6)

    def due(self, step: int) -> int:
        """Updates that env step ``step`` (1-based, in lockstep) gets."""
        num, den = self.rate.numerator, self.rate.denominator
        return step * num // den - (step - 1) * num // den
