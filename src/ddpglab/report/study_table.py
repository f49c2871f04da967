"""The table of ``ddpglab report``: markdown for reading, csv (full precision) for reuse."""

from __future__ import annotations

import csv
import io

import numpy as np

from ddpglab.report.study_data import StudyRuns
from ddpglab.report.study_rows import Row


def _num(value: float | None) -> str:
    """Full-precision text for the csv (repr round-trips a float exactly)."""
    if value is None or np.isnan(value):
        return ""
    return "inf" if np.isinf(value) else repr(float(value))


CSV_COLUMNS = [
    "env_id", "variant", "replay_kind", "n_seeds", "last_episodes",
    "mean", "mean_ci_low", "mean_ci_high", "iqm", "iqm_ci_low", "iqm_ci_high",
    "threshold", "window", "median_first_episode", "not_reached",
    "baseline", "p_improvement", "p_ci_low", "p_ci_high",
]  # fmt: skip


def table_csv(rows: list[Row], last: int, window: int) -> str:
    """One line per row, floats in full precision, empty where undefined."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        p = r.p_improve or (None, None, None)
        writer.writerow(
            [r.env_id, r.variant, r.replay_kind, r.n_seeds, last,
             *map(_num, r.mean), *map(_num, r.iqm),
             _num(r.threshold), window, _num(r.median_crossing),
             r.not_reached if r.threshold is not None else "",
             r.baseline or "", *map(_num, p)]
        )  # fmt: skip
    return out.getvalue()


def _ci(triple: tuple[float, float, float], digits: int) -> str:
    point, lo, hi = triple
    if np.isnan(lo):
        return f"{point:.{digits}f} (1 seed, no CI)"
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _crossing_text(r: Row) -> str:
    if r.threshold is None:
        return "-"
    never = f"not reached by {r.not_reached}/{r.n_seeds}"
    if r.median_crossing is None or np.isinf(r.median_crossing):
        return never
    return f"{r.median_crossing:g}" + (f" ({never})" if r.not_reached else "")


def _short_runs_note(study: StudyRuns, last: int) -> str:
    """Says how many counted runs have fewer than ``last`` episodes (unfinished ones): their
    score is the mean of all they have, early training included."""
    short = sum(r.returns.size < last for r in study.runs)
    if not short:
        return ""
    return f"; {short} counted run(s) have fewer and are scored on all their episodes"


def table_markdown(
    study: StudyRuns,
    rows: list[Row],
    baseline: str,
    last: int,
    window: int,
    n_boot: int,
    boot_seed: int,
) -> str:
    """The table with the notes that say how each number was computed."""
    counted = len(study.runs)
    total = sum(study.status_counts.values())
    others = ", ".join(f"{n} {s}" for s, n in sorted(study.status_counts.items()) if s != "done")
    which = (
        "every run with episodes" if study.include_unfinished else "runs with status 'done' only"
    )
    thresholds = sorted({(r.env_id, r.threshold) for r in rows if r.threshold is not None})
    lines = [
        "# Study results",
        "",
        f"- Runs counted: {which} ({counted} of {total} runs in the store"
        + (f"; {others}" if others else "")
        + ").",
        f"- Score of a seed: its mean return over its last {last} episodes"
        + _short_runs_note(study, last)
        + ".",
        "- Mean and IQM (interquartile mean, 25% trimmed) over seeds, each with a 95%"
        f" percentile bootstrap CI over seeds ({n_boot} replicates, fixed RNG seed"
        f" {boot_seed}). Rows are per environment, so the stratified bootstrap of"
        " Agarwal et al. (2021) has one stratum per row.",
        f"- First crossing: the first episode at which the mean return of the last {window}"
        f" episodes exceeds the threshold (full windows only: episode {window} or later; "
        + (", ".join(f"{e}: {t:g}" for e, t in thresholds) or "none known")
        + "); median over seeds, where a seed that never crossed counts as crossing later"
        " than any other (so the median is 'not reached' when half the seeds or more never"
        " crossed).",
        f"- P(improvement): P(X > Y) that a seed of the variant scores higher than a seed"
        f" of the baseline `{baseline}` (ties 1/2), with a 95% bootstrap CI resampling"
        " the seeds of both.",
        "",
        f"| env | variant | replay | seeds | mean [95% CI] | IQM [95% CI] "
        f"| first episode, rolling mean > threshold (median) | P(> {baseline}) [95% CI] |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        p = "baseline" if r.variant == baseline else (_ci(r.p_improve, 2) if r.p_improve else "-")
        lines.append(
            f"| {r.env_id} | {r.variant} | {r.replay_kind} | {r.n_seeds} | {_ci(r.mean, 1)} "
            f"| {_ci(r.iqm, 1)} | {_crossing_text(r)} | {p} |"
        )
    return "\n".join(lines) + "\n"
