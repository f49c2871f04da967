"""The scores of a run: one number per seed that ``ddpglab report`` summarises over seeds.

Each score reads one run's learning curve (its episode returns in order, with the env-step
count at each episode's end) and asks a different question of it:

- ``final``: how good is the agent at the end? (the mean return of the last episodes)
- ``auc``: how fast did it get there? (sample efficiency: the mean return over the whole
  budget in env steps, the normalised area under the learning curve)
- ``drop``: did it keep what it learned? (stability: the largest fall of the rolling mean
  after it first crossed the task's threshold; a final score hides a collapse that
  recovered, and an early collapse that never did looks like slow learning)

Whether a higher or a lower value is better is said once, in :data:`SCORES`;
:func:`oriented` turns every score into a higher-is-better one, so that one P(X > Y)
serves all three as the probability of improvement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ddpglab.config import ConfigError
from ddpglab.report import stats
from ddpglab.report.study_data import RunData

#: The final score of a run: the mean return of its last ``LAST`` episodes (all of them
#: when it has fewer). ``ddpglab report`` and train's closing table both score runs so.
LAST = 50


@dataclass(frozen=True)
class Score:
    """What a score is called, what it measures, and which direction is better."""

    name: str
    title: str  # the heading of its section in table.md
    higher_is_better: bool


#: Every score ``ddpglab report --score`` knows, in the order its sections are written.
SCORES: dict[str, Score] = {
    s.name: s
    for s in (
        Score("final", "Final score", higher_is_better=True),
        Score("auc", "Area under the learning curve (sample efficiency)", higher_is_better=True),
        Score("drop", "Largest drop after the first crossing (stability)", higher_is_better=False),
    )
}


def mean_of_last(returns: Sequence[float] | np.ndarray, last: int = LAST) -> float:
    """Final score: the mean of the last ``last`` returns (all of them when there are fewer),

    final = 1/L * sum_{i=n-L+1}^{n} R_i,   L = min(last, n).
    """
    return float(np.mean(np.asarray(returns, dtype=float)[-last:]))


def area_under_curve(
    returns: Sequence[float] | np.ndarray,
    env_steps: Sequence[float] | np.ndarray,
    start_step: float = 0.0,
) -> float:
    """Sample efficiency: the area under the learning curve against env steps, divided by
    the env steps it spans, i.e. the mean return over the run's budget:

    AUC = sum_{i=1}^{n} R_i (s_i - s_{i-1}) / (s_n - s_0)

    with R_i the return of episode i, s_i the env-step count at its end and s_0 =
    ``start_step`` the count before the first episode (0 for a run from scratch). It is the
    exact integral of a step curve: episode i's return holds over the env steps
    (s_{i-1}, s_i] it was earned in. So AUC is the return of the episode in progress at an
    env step drawn uniformly from the budget; it is in the units of a return, whatever the
    budget, so runs of different lengths compare, and it integrates against env steps, not
    episodes, because env steps are the budget: seeds whose episodes differ in length
    (a walker that falls early) are weighed by the steps they spent.

    A step integral rather than the trapezoid rule: a trapezoid between episode ends would
    average two different policies' returns as if the return moved linearly between them,
    and it has no value at s_0, so it would drop the first episode's steps or invent a
    return there; the step integral covers [s_0, s_n] exactly and invents nothing.

    Korniak et al. 2026 (arXiv:2605.10236, "When Does Non-Uniform Replay Matter in
    Reinforcement Learning?") compare samplers by sample efficiency; their abstract and
    introduction (v3, read from the arXiv HTML page) say so, but the section that defines
    their metric could not be read here, so this normalisation is ddpglab's own and is
    not claimed to be theirs.
    """
    returns = np.asarray(returns, dtype=float)
    ends = np.asarray(env_steps, dtype=float)
    widths = np.diff(ends, prepend=float(start_step))
    return float(np.sum(returns * widths) / (ends[-1] - start_step))


def full_window_means(returns: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """The rolling mean of the last ``window`` returns at every episode that has a full
    window (episode ``window`` onwards), so one lucky early episode counts for no more
    than a 1/window share: m_t = 1/w * sum_{i=t-w+1}^{t} R_i for t >= w."""
    return stats.rolling_mean(np.asarray(returns, dtype=float), window)[window - 1 :]


def largest_drop(returns: Sequence[float] | np.ndarray, threshold: float, window: int) -> float:
    """Stability: the largest fall of the rolling mean from its running peak after it
    first crossed ``threshold`` (the maximum drawdown of m after c, as in finance:
    Magdon-Ismail and Atiya 2004, "Maximum drawdown", Risk 17(10)):

    D = max_{t >= c} ( max_{c <= s <= t} m_s - m_t ),   c = min {t : m_t > threshold}

    with m the full-window rolling mean of :func:`full_window_means` (the one the report's
    first crossing uses). D >= 0, in the units of a return; D = 0 when m never falls after
    c; NaN (undefined) when m never exceeds ``threshold``: a run that never learned the
    task has nothing to lose. Lower is better. A run that learned, collapsed and recovered
    keeps its collapse in D, which its final score would hide.
    """
    means = full_window_means(returns, window)
    crossing = stats.first_crossing(means, threshold)
    if crossing is None:
        return float("nan")
    after = means[crossing:]
    return float(np.max(np.maximum.accumulate(after) - after))


def run_score(name: str, run: RunData, *, last: int, window: int, threshold: float | None) -> float:
    """Score ``name`` of one run. The run started at env_steps[0] - lengths[0] env steps
    (0 from scratch); its drop is NaN when the env has no threshold."""
    if name == "final":
        return mean_of_last(run.returns, last)
    if name == "auc":
        return area_under_curve(run.returns, run.env_steps, run.env_steps[0] - run.lengths[0])
    if threshold is None:
        return float("nan")
    return largest_drop(run.returns, threshold, window)


def oriented(name: str, values: np.ndarray) -> np.ndarray:
    """``values`` of score ``name`` turned so that higher is better: as they are, or negated
    for a score where lower is better (the drop). P(X' > Y') on oriented scores is then the
    probability of improvement for every score: for the drop, P(X < Y), a smaller drop."""
    values = np.asarray(values, dtype=float)
    return values if SCORES[name].higher_is_better else -values


def select_scores(names: Iterable[str] | None = None) -> tuple[str, ...]:
    """The scores ``names`` asks for, each once, in :data:`SCORES`' order; every score for
    None. ConfigError for an unknown name or an empty selection."""
    if names is None:
        return tuple(SCORES)
    wanted = list(names)
    for name in wanted:
        if name not in SCORES:
            raise ConfigError(f"unknown score '{name}'; choose from {', '.join(SCORES)}")
    if not wanted:
        raise ConfigError(f"no score given; choose from {', '.join(SCORES)}")
    return tuple(name for name in SCORES if name in wanted)


def parse_score_list(text: str) -> list[str]:
    """``--score auc`` or ``--score final,drop``: the names in a comma-separated list,
    checked (ConfigError for an unknown one or none)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    select_scores(names)
    return names
