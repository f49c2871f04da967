"""Contrasts of ``ddpglab report --contrast A:B``: how variant A compares with variant B,
beyond the table's one baseline (a 1e6 buffer against a 1e4 one, LAP against uniform + PAL).

A side may name several variants, matched in order with the other side's
(``A1,A2:B1,B2``); the contrast is then averaged over the matched pairs, each pair one
stratum of the bootstrap, for claims across samplers such as "a 1e6 buffer beats a 1e4 one".
For each score, ``contrasts.md`` gives the difference of means (the drop as it is: lower is
better) and P(A > B), the probability that a seed of A does better than a seed of B, each
with a 95 % bootstrap CI over seeds (:func:`stats.mean_difference_ci`,
:func:`stats.probability_of_improvement_ci`). A seed without a score (no drop where the
rolling mean never crossed the threshold) is left out, as the table leaves it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddpglab.config import ConfigError
from ddpglab.report import stats
from ddpglab.report.scores import oriented, run_score
from ddpglab.report.study_data import RunData, StudyRuns
from ddpglab.report.study_rows import rng_for, solve_threshold_for

nan = float("nan")


@dataclass(frozen=True)
class Contrast:
    """Variants ``better`` against ``than``, matched in order (equal lengths)."""

    better: tuple[str, ...]
    than: tuple[str, ...]

    def __str__(self) -> str:
        return f"{','.join(self.better)}:{','.join(self.than)}"


def parse_contrast(text: str) -> Contrast:
    """``A:B`` or ``A1,A2:B1,B2``; ConfigError (one line) for anything else."""
    left, sep, right = text.partition(":")
    sides = [tuple(n.strip() for n in side.split(",") if n.strip()) for side in (left, right)]
    if not sep or ":" in right or not all(sides) or len(sides[0]) != len(sides[1]):
        raise ConfigError(
            f"--contrast {text!r}: expected A:B or A1,A2:B1,B2 (as many variants on each side)"
        )
    return Contrast(*sides)


@dataclass(frozen=True)
class ContrastRow:
    """One contrast in one env, for one score: seeds counted, D and P(A > B) with CIs."""

    env_id: str
    contrast: Contrast
    score: str
    seeds: tuple[int, int]
    difference: tuple[float, float, float]
    p_better: tuple[float, float, float]


def defined_scores(
    runs: Sequence[RunData], score: str, *, threshold: float | None, last: int, window: int
) -> np.ndarray:
    """Score ``score`` of each run where it is defined."""
    values = np.array(
        [run_score(score, r, last=last, window=window, threshold=threshold) for r in runs],
        dtype=float,
    )
    return values[~np.isnan(values)]


def contrast_rows(
    study: StudyRuns,
    contrasts: Sequence[Contrast],
    score_names: Sequence[str],
    *,
    threshold: float | None,
    last: int,
    window: int,
    n_boot: int,
) -> list[ContrastRow]:
    """Every contrast x score, in each env where all of its variants have runs.

    ConfigError when a contrast names a variant the study lacks, or has no env where all of
    its variants ran."""
    known = study.variants()
    for contrast in contrasts:
        for name in (*contrast.better, *contrast.than):
            if name not in known:
                raise ConfigError(
                    f"--contrast {contrast}: no variant '{name}'; choose from {', '.join(known)}"
                )
    rows = []
    for contrast in contrasts:
        envs = [
            env
            for env in study.envs
            if all(study.group(env, n) for n in (*contrast.better, *contrast.than))
        ]
        if not envs:
            raise ConfigError(f"--contrast {contrast}: its variants share no environment")
        for env_id, score in ((e, s) for e in envs for s in score_names):
            kwargs = {"last": last, "window": window}
            kwargs["threshold"] = solve_threshold_for(env_id, threshold)
            a = [defined_scores(study.group(env_id, n), score, **kwargs) for n in contrast.better]
            b = [defined_scores(study.group(env_id, n), score, **kwargs) for n in contrast.than]
            seeds = (sum(x.size for x in a), sum(y.size for y in b))
            if not all(x.size for x in a + b):
                rows.append(ContrastRow(env_id, contrast, score, seeds, (nan,) * 3, (nan,) * 3))
                continue
            rng = rng_for(env_id, str(contrast), score)
            difference = stats.mean_difference_ci(a, b, n_boot, rng)
            p_better = stats.probability_of_improvement_ci(
                [oriented(score, x) for x in a], [oriented(score, y) for y in b], n_boot, rng
            )
            if min(x.size for x in a + b) < 2:  # one seed has no spread to resample
                difference, p_better = (difference[0], nan, nan), (p_better[0], nan, nan)
            rows.append(ContrastRow(env_id, contrast, score, seeds, difference, p_better))
    return rows


def _interval(point_lo_hi: tuple[float, float, float], digits: int) -> str:
    point, lo, hi = point_lo_hi
    if np.isnan(point):
        return "n/a"
    if np.isnan(lo):
        return f"{point:.{digits}f} [n/a]"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def contrasts_markdown(rows: Sequence[ContrastRow], last: int, window: int, n_boot: int) -> str:
    """contrasts.md: what the columns mean, then one line per (env, contrast, score)."""
    lines = [
        "# Contrasts",
        "",
        "- A:B compares variant A with variant B; with several variants a side, they are"
        " matched in order and the contrast is the average over the matched pairs.",
        f"- Scores of a seed: final (mean return of its last {last} episodes), auc (area under"
        f" the learning curve), drop (largest fall of the {window}-episode rolling mean after"
        " its first crossing of the threshold; lower is better; seeds that never crossed"
        " have none).",
        "- mean A - mean B: the difference of the variants' means over seeds (averaged over"
        " pairs); P(A better): P(X > Y) that a seed of A does better than a seed of B (for"
        f" the drop: P(X < Y)), ties 1/2. 95% percentile bootstrap CIs ({n_boot} replicates)"
        " resample the seeds of A and of B independently, each pair one stratum.",
        "",
        "| env | A | B | score | seeds A / B | mean A - mean B [95% CI] | P(A better) [95% CI] |",
        "| --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.env_id} | {', '.join(row.contrast.better)} | {', '.join(row.contrast.than)}"
            f" | {row.score} | {row.seeds[0]} / {row.seeds[1]}"
            f" | {_interval(row.difference, 1)} | {_interval(row.p_better, 2)} |"
        )
    return "\n".join(lines) + "\n"
