"""How many gradient updates each env step gets, for a rate that may be a fraction."""

from __future__ import annotations

from fractions import Fraction


class UpdateRate:
    """``agent.updates_per_step`` = u updates per env step, u any rate >= 0.

    Step t (1, 2, ...) gets floor(t u) - floor((t - 1) u) updates, so that the first T
    steps get floor(T u) in all: u = 0.25 updates on every 4th step, u = 1.5 alternates 1
    and 2, a whole u gives u every step. u is held as the simplest fraction within float
    precision of it (0.3 is 3/10 and 1/3 is 1/3, not the binary floats just below them;
    1e-7 stays 1/10^7), so the count is exact integer arithmetic, not float rounding.
    Replay volume, the transitions replayed per env step (Korniak et al. 2026), is
    batch size x u.
    """

    def __init__(self, rate: float):
        # A rate p/q with q up to about 1000 comes back exactly: any other fraction of
        # denominator <= 1e12 lies >= 1 / (q 1e12) >= 1e-15 from p/q, farther than the float
        # rounding of a rate of order 1 (about 1e-16).
        self.rate = Fraction(rate).limit_denominator(10**12)

    def due(self, step: int) -> int:
        """Updates that env step ``step`` (1-based, in lockstep) gets."""
        num, den = self.rate.numerator, self.rate.denominator
        return step * num // den - (step - 1) * num // den
