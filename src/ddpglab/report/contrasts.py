"""Contrasts of ``ddpglab report --contrast A:B``: how variant A compares with variant B,
beyond the table's one baseline (a 1e6 buffer against a 1e4 one, LAP against uniform + PAL),
and interactions, ``--interaction A:B C:D``: whether A gains more over B than C over D
(a sampler against uniform at low replay volume, and at high).

A side may name several variants, matched in order with the other side's
(``A1,A2:B1,B2``); the contrast is then averaged over the matched pairs, for claims across
samplers such as "a 1e6 buffer beats a 1e4 one". Such pairs can also be named by the part
of the name they differ in: ``cap1e6:cap1e4`` matches every variant with the fragment
``cap1e6`` with the one that has ``cap1e4`` in its place (:mod:`ddpglab.report.name_parts`).

For M matched pairs (A_m, B_m) of per-seed scores, a contrast is

    D = (1/M) sum_m (mean A_m - mean B_m)        (the drop as it is: lower is better)
    P = (1/M) sum_m P(X > Y), X ~ A_m, Y ~ B_m   (Mann-Whitney, ties 1/2; for the drop, a
                                                  smaller one is the better: P(X < Y))

and an interaction of contrasts c1 and c2 is D(c1) - D(c2) and P(c1) - P(c2). CIs are 95 %
percentile bootstrap intervals: every variant's seeds are resampled once per replicate
(Agarwal et al. 2021's resampling of runs), so a variant that appears in several pairs
(uniform against each sampler) moves together in all of them. A seed without a score (no
drop where the rolling mean never crossed the threshold) is left out, as the table does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ddpglab.config import ConfigError
from ddpglab.report import stats
from ddpglab.report.name_parts import with_part_replaced
from ddpglab.report.scores import oriented, run_score
from ddpglab.report.study_data import RunData, StudyRuns
from ddpglab.report.study_rows import rng_for, solve_threshold_for

NAN3 = (float("nan"),) * 3


@dataclass(frozen=True)
class Contrast:
    """Variants ``better`` against ``than``, matched in order (equal lengths)."""

    better: tuple[str, ...]
    than: tuple[str, ...]

    def __str__(self) -> str:
        return f"{','.join(self.better)}:{','.join(self.than)}"


def parse_contrast(text: str, option: str = "--contrast") -> Contrast:
    """``A:B`` or ``A1,A2:B1,B2``; ConfigError (one line) for anything else."""
    left, sep, right = text.partition(":")
    sides = [tuple(n.strip() for n in side.split(",") if n.strip()) for side in (left, right)]
    if not sep or ":" in right or not all(sides) or len(sides[0]) != len(sides[1]):
        raise ConfigError(
            f"{option} {text!r}: expected A:B or A1,A2:B1,B2 (as many variants on each side)"
        )
    return Contrast(*sides)


@dataclass(frozen=True)
class ContrastRow:
    """A contrast (``second`` None) or an interaction ``contrast`` - ``second``, in one env,
    for one score: the matched pairs and seeds counted, D and P with their CIs."""

    env_id: str
    contrast: Contrast
    second: Contrast | None
    pairs: tuple[int, ...]  # matched pairs of each contrast
    by_parts: tuple[bool, ...]  # whether each contrast matched its pairs by name parts
    score: str
    seeds: tuple[int, ...]  # seeds scored on each side (a variant once): (A, B) or (A, B, C, D)
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


def matched_variants(
    contrast: Contrast, known: Sequence[str], option: str = "--contrast"
) -> tuple[list[str], list[str]]:
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
            f"{option} {contrast}: no variant has the part '{part}' with a partner that has "
            f"'{other}' in its place (nor are they variants: {', '.join(known)})"
        )
    unknown = next(name for name in names if name not in known)
    choices = ", ".join(known)
    raise ConfigError(f"{option} {contrast}: no variant '{unknown}'; choose from {choices}")


def pair_statistics(
    scores: dict[str, np.ndarray], better: Sequence[str], than: Sequence[str], score: str
) -> tuple[np.ndarray, np.ndarray]:
    """(D, P) of the M matched pairs (A_m, B_m) = (better[m], than[m]):

        D = (1/M) sum_m (mean A_m - mean B_m)
        P = (1/M) sum_m P(X > Y), X ~ A_m, Y ~ B_m  (stats.probability_of_improvement on the
                                                     oriented scores: for the drop, P(X < Y))

    Vectorised over a leading replicate axis of the score arrays, (n,) or (n_boot, n)."""
    pairs = list(zip(better, than, strict=True))
    d = np.mean([scores[a].mean(-1) - scores[b].mean(-1) for a, b in pairs], axis=0)
    p = np.mean(
        [
            stats.probability_of_improvement(oriented(score, scores[a]), oriented(score, scores[b]))
            for a, b in pairs
        ],
        axis=0,
    )
    return d, p


def interaction(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """How much more the first contrast gains than the second: (D1 - D2, P1 - P2), from
    their :func:`pair_statistics` (D, P), vectorised like them."""
    return first[0] - second[0], first[1] - second[1]


def _estimate(point: np.ndarray, replicates: np.ndarray, spread: bool) -> tuple[float, ...]:
    if not spread:  # a side with one seed has no spread to resample
        return float(point), float("nan"), float("nan")
    return (float(point), *stats.percentile_interval(replicates))


def contrast_rows(
    study: StudyRuns,
    contrasts: Sequence[Contrast | tuple[Contrast, Contrast]],
    score_names: Sequence[str],
    *,
    threshold: float | None,
    last: int,
    window: int,
    n_boot: int,
) -> list[ContrastRow]:
    """Every contrast (or interaction: a pair of contrasts) x score, in each env where its
    variants have runs; name-part contrasts are matched within each env.

    ConfigError when a contrast names a variant (or a name part) the study lacks, or no env
    holds all of its variants."""
    rows = []
    for item in contrasts:
        parts = list(item) if isinstance(item, tuple) else [item]
        option = "--interaction" if len(parts) == 2 else "--contrast"
        found = []  # (env, its matched pairs) wherever every pair of every part ran
        for env_id in study.envs:
            try:
                matched = [matched_variants(c, study.variants(env_id), option) for c in parts]
            except ConfigError:
                continue
            found.append((env_id, matched))
        if not found:  # say why with every env's variants
            for contrast in parts:
                matched_variants(contrast, study.variants(), option)
            named = " ".join(map(str, parts))
            raise ConfigError(f"{option} {named}: no environment holds all of its variants")
        for (env_id, matched), score in ((f, s) for f in found for s in score_names):
            kwargs = {"last": last, "window": window}
            kwargs["threshold"] = solve_threshold_for(env_id, threshold)
            involved = dict.fromkeys(n for better, than in matched for n in better + than)
            scores = {n: defined_scores(study.group(env_id, n), score, **kwargs) for n in involved}
            rows.append(_row(env_id, parts, matched, score, scores, n_boot))
    return rows


def _row(
    env_id: str,
    parts: list[Contrast],
    matched: list[tuple[list[str], list[str]]],
    score: str,
    scores: dict[str, np.ndarray],
    n_boot: int,
) -> ContrastRow:
    """The row of one contrast, or of an interaction (two ``parts``), from each involved
    variant's defined scores."""
    second = parts[1] if len(parts) == 2 else None
    pairs = tuple(len(better) for better, _ in matched)
    by_parts = tuple(
        better != list(c.better) for c, (better, _) in zip(parts, matched, strict=True)
    )
    seeds = tuple(sum(scores[n].size for n in dict.fromkeys(side)) for m in matched for side in m)
    head = (env_id, parts[0], second, pairs, by_parts, score, seeds)
    if not all(values.size for values in scores.values()):
        return ContrastRow(*head, NAN3, NAN3)
    rng = rng_for(env_id, " ".join(map(str, parts)), score)
    boot = {n: stats.resample(values, n_boot, rng) for n, values in scores.items()}
    point = [pair_statistics(scores, *m, score) for m in matched]
    replicates = [pair_statistics(boot, *m, score) for m in matched]
    if second is not None:
        point, replicates = [interaction(*point)], [interaction(*replicates)]
    spread = min(values.size for values in scores.values()) >= 2
    (d, p), (d_boot, p_boot) = point[0], replicates[0]
    difference, p_better = _estimate(d, d_boot, spread), _estimate(p, p_boot, spread)
    return ContrastRow(*head, difference, p_better)


def _interval(point_lo_hi: tuple[float, float, float], digits: int) -> str:
    point, lo, hi = point_lo_hi
    if np.isnan(point):
        return "n/a"
    if np.isnan(lo):
        return f"{point:.{digits}f} [n/a]"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _listed(names: Sequence[str]) -> str:
    """Names in order, a repeated one once with its count: ``lap-vol16, uniform-vol16 x7``."""
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in Counter(names).items())


def _sides(contrast: Contrast, pairs: int, by_parts: bool) -> tuple[str, str]:
    a, b = _listed(contrast.better), _listed(contrast.than)
    if by_parts:  # name parts: say how many pairs they found
        found = f"{pairs} variant{'s' if pairs > 1 else ''}"
        return f"{a} ({found})", f"{b} ({found})"
    return a, b


def contrasts_markdown(rows: Sequence[ContrastRow], last: int, window: int, n_boot: int) -> str:
    """contrasts.md: what the columns mean, then one line per (env, contrast, score), and
    the interactions in a table of their own."""
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
        " resample every variant's seeds once per replicate.",
    ]
    contrasts = [row for row in rows if row.second is None]
    interactions = [row for row in rows if row.second is not None]
    if contrasts:
        lines += [
            "",
            "| env | A | B | score | seeds A / B | mean A - mean B [95% CI]"
            " | P(A better) [95% CI] |",
            "| --- | --- | --- | --- | ---: | ---: | ---: |",
        ]
    for row in contrasts:
        a, b = _sides(row.contrast, row.pairs[0], row.by_parts[0])
        lines.append(
            f"| {row.env_id} | {a} | {b} | {row.score} | {row.seeds[0]} / {row.seeds[1]}"
            f" | {_interval(row.difference, 1)} | {_interval(row.p_better, 2)} |"
        )
    if interactions:
        lines += [
            "",
            "## Interactions",
            "",
            "- (A:B) - (C:D): how much more A gains over B than C over D, as the difference of"
            " the two contrasts' mean differences and of their P(better); an interval that"
            " excludes 0 says the gains differ.",
            "",
            "| env | A:B | C:D | score | seeds A / B / C / D | difference of (mean A - mean B)"
            " [95% CI] | difference of P(better) [95% CI] |",
            "| --- | --- | --- | --- | ---: | ---: | ---: |",
        ]
    for row in interactions:
        first = ":".join(_sides(row.contrast, row.pairs[0], row.by_parts[0]))
        second = ":".join(_sides(row.second, row.pairs[1], row.by_parts[1]))
        lines.append(
            f"| {row.env_id} | {first} | {second} | {row.score} |"
            f" {' / '.join(map(str, row.seeds))} | {_interval(row.difference, 1)} |"
            f" {_interval(row.p_better, 2)} |"
        )
    return "\n".join(lines) + "\n"
