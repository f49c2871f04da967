"""Contrasts of ``ddpglab report --contrast A:B``: how variant A compares with variant B,
beyond the table's one baseline (a 1e6 buffer against a 1e4 one, LAP against uniform + PAL).

A side may name several variants, matched in order with the other side's
(``A1,A2:B1,B2``); the contrast is then averaged over the matched pairs, each pair one
stratum of the bootstrap, for claims across samplers such as "a 1e6 buffer beats a 1e4 one".
Such pairs can also be named by the part of the name they differ in: ``cap1e6:cap1e4``
matches every variant with the fragment ``cap1e6`` with the one that has ``cap1e4`` in its
place (:mod:`ddpglab.report.name_parts`).
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
from ddpglab.report.name_parts import with_part_replaced
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
    pairs: int  # matched pairs of variants
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


def matched_variants(contrast: Contrast, known: Sequence[str]) -> tuple[list[str], list[str]]:
    """The variants a contrast compares, matched in order: its names as given when they all
    name variants, or for ``part:other`` (one name fragment a side, see
    :mod:`name_parts`) every variant with the fragment ``part`` and the one that has
    ``other`` in its place. ConfigError when a name is neither, or no pair is found."""
    names = (*contrast.better, *contrast.than)
    if all(name in known for name in names):
        return list(contrast.better), list(contrast.than)
    if len(contrast.better) == 1 and not any(name in known for name in names):
        (part,), (other,) = contrast.better, contrast.than
        partners = {v: with_part_replaced(v, part, other) for v in known}
        better = [v for v, partner in partners.items() if partner in known]
        if better:
            return better, [partners[v] for v in better]
        raise ConfigError(
            f"--contrast {contrast}: no variant has the part '{part}' with a partner that has "
            f"'{other}' in its place (nor are they variants: {', '.join(known)})"
        )
    unknown = next(name for name in names if name not in known)
    choices = ", ".join(known)
    raise ConfigError(f"--contrast {contrast}: no variant '{unknown}'; choose from {choices}")


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

    ConfigError when a contrast names a variant (or a name part) the study lacks, or has no
    env where all of its variants ran."""
    matched = [(c, *matched_variants(c, study.variants())) for c in contrasts]
    rows = []
    for contrast, better, than in matched:
        envs = [env for env in study.envs if all(study.group(env, n) for n in better + than)]
        if not envs:
            raise ConfigError(f"--contrast {contrast}: its variants share no environment")
        for env_id, score in ((e, s) for e in envs for s in score_names):
            kwargs = {"last": last, "window": window}
            kwargs["threshold"] = solve_threshold_for(env_id, threshold)
            a = [defined_scores(study.group(env_id, n), score, **kwargs) for n in better]
            b = [defined_scores(study.group(env_id, n), score, **kwargs) for n in than]
            seeds = (sum(x.size for x in a), sum(y.size for y in b))
            if not all(x.size for x in a + b):
                rows.append(
                    ContrastRow(env_id, contrast, len(a), score, seeds, (nan,) * 3, (nan,) * 3)
                )
                continue
            rng = rng_for(env_id, str(contrast), score)
            difference = stats.mean_difference_ci(a, b, n_boot, rng)
            p_better = stats.probability_of_improvement_ci(
                [oriented(score, x) for x in a], [oriented(score, y) for y in b], n_boot, rng
            )
            if min(x.size for x in a + b) < 2:  # one seed has no spread to resample
                difference, p_better = (difference[0], nan, nan), (p_better[0], nan, nan)
            rows.append(ContrastRow(env_id, contrast, len(a), score, seeds, difference, p_better))
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
        " matched in order and the contrast is the average over the matched pairs. A and B"
        " may also be parts of names (cap1e6:cap1e4): every variant with part A is matched"
        " with the one that has B in its place.",
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
        a, b = ", ".join(row.contrast.better), ", ".join(row.contrast.than)
        if row.pairs > len(row.contrast.better):  # name parts: say how many pairs they found
            a, b = f"{a} ({row.pairs} variants)", f"{b} ({row.pairs} variants)"
        lines.append(
            f"| {row.env_id} | {a} | {b} | {row.score} | {row.seeds[0]} / {row.seeds[1]}"
            f" | {_interval(row.difference, 1)} | {_interval(row.p_better, 2)} |"
        )
    return "\n".join(lines) + "\n"
