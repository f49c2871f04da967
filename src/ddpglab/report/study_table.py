"""The table of ``ddpglab report``: markdown for reading, csv (full precision) for reuse."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import numpy as np

from ddpglab.report.scores import SCORES
from ddpglab.report.study_data import StudyRuns
from ddpglab.report.study_rows import Row, ScoreSummary


def _num(value: float | None) -> str:
    """Full-precision text for the csv (repr round-trips a float exactly)."""
    if value is None or np.isnan(value):
        return ""
    return "inf" if np.isinf(value) else repr(float(value))


#: The final score's columns, as they were before the other scores (names kept for
#: readers of older tables); every other score ``s`` adds ``s_<column>`` for each of
#: SCORE_COLUMNS after them, so the csv stays one row per (env, variant).
CSV_COLUMNS = [
    "env_id", "variant", "replay_kind", "n_seeds", "last_episodes",
    "mean", "mean_ci_low", "mean_ci_high", "iqm", "iqm_ci_low", "iqm_ci_high",
    "threshold", "window", "median_first_episode", "not_reached",
    "baseline", "p_improvement", "p_ci_low", "p_ci_high",
]  # fmt: skip
FINAL_ONLY = {"last_episodes", *CSV_COLUMNS[5:11], *CSV_COLUMNS[16:]}
SCORE_COLUMNS = [
    "n_scored", "mean", "mean_ci_low", "mean_ci_high", "iqm", "iqm_ci_low", "iqm_ci_high",
    "p_improvement", "p_ci_low", "p_ci_high",
]  # fmt: skip


def csv_columns(score_names: Sequence[str]) -> list[str]:
    """The header of table.csv for the scores ``score_names``."""
    columns = [c for c in CSV_COLUMNS if "final" in score_names or c not in FINAL_ONLY]
    for name in score_names:
        if name != "final":
            columns += [f"{name}_{c}" for c in SCORE_COLUMNS]
    return columns


def table_csv(
    rows: list[Row], last: int, window: int, score_names: Sequence[str] = ("final",)
) -> str:
    """One line per row, floats in full precision, empty where undefined."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = csv_columns(score_names)
    writer.writerow(header)
    for r in rows:
        final = r.summaries["final"]
        p = final.p_improve or (None, None, None)
        cells = dict(zip(CSV_COLUMNS, [
            r.env_id, r.variant, r.replay_kind, r.n_seeds, last,
            *map(_num, final.mean), *map(_num, final.iqm),
            _num(r.threshold), window, _num(r.median_crossing),
            r.not_reached if r.threshold is not None else "",
            r.baseline or "", *map(_num, p),
        ], strict=True))  # fmt: skip
        for name in score_names:
            if name != "final":
                s = r.summaries[name]
                values = [s.n_scored, *map(_num, s.mean), *map(_num, s.iqm)]
                values += map(_num, s.p_improve or (None, None, None))
                cells.update(zip([f"{name}_{c}" for c in SCORE_COLUMNS], values, strict=True))
        writer.writerow([cells[c] for c in header])
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


def _better(name: str) -> str:
    """How P(improvement) compares a variant's seed X with the baseline's Y for score
    ``name``: X > Y, or X < Y where lower is better (the direction scores.SCORES states)."""
    return ">" if SCORES[name].higher_is_better else "<"


def _score_cells(s: ScoreSummary, n_seeds: int, baseline: str, variant: str, drop: bool) -> str:
    """The seeds, mean, IQM and P cells of one score's row (undefined shown as such)."""
    seeds = f"{s.n_scored} of {n_seeds}" if drop else f"{n_seeds}"
    if s.n_scored == 0:
        stat = "undefined (no seed crossed)" if drop else "undefined"
        mean = iqm = stat
    else:
        mean, iqm = _ci(s.mean, 1), _ci(s.iqm, 1)
    p = "baseline" if variant == baseline else (_ci(s.p_improve, 2) if s.p_improve else "-")
    return f"{seeds} | {mean} | {iqm} | {p}"


def _final_section(study: StudyRuns, rows: list[Row], baseline: str, last: int) -> list[str]:
    lines = [
        f"- Score of a seed: its mean return over its last {last} episodes"
        + _short_runs_note(study, last)
        + "; higher is better.",
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
    return lines


def _score_section(name: str, rows: list[Row], baseline: str, window: int) -> list[str]:
    """The auc or drop section: what the score is, then its table."""
    drop = name == "drop"
    if drop:
        note = (
            f"- Score of a seed: the largest fall of its rolling mean (the mean return of its"
            f" last {window} episodes, full windows only) below its running peak, from the"
            " episode c it first exceeds the threshold on,"
            " `max_{t >= c} (max_{c <= s <= t} m_s - m_t)`, in return units; 0 when it never"
            " fell after crossing. Undefined for a seed that never crossed: it is left out of"
            " the mean, IQM, CIs and P, and the seeds column says how many crossed. Lower is"
            f" better, so P(< {baseline}) is the probability that a seed of the variant drops"
            " less than a seed of the baseline. A run that learned, collapsed and recovered"
            " keeps its collapse here; its final score hides it."
        )
    else:
        note = (
            "- Score of a seed: the area under its learning curve against env steps divided by"
            " the env steps it spans, i.e. its mean return over its whole budget,"
            " `sum_i R_i L_i / sum_i L_i`: each episode's return R_i weighted by its L_i env"
            " steps (an exact step integral; episodes of different lengths weigh by the steps"
            " they took). Sample efficiency: a variant that learns sooner scores higher at the"
            " same final return. Higher is better."
        )
    seeds = "seeds crossed" if drop else "seeds"
    p = f"P({_better(name)} {baseline})"
    lines = [
        note,
        "",
        f"| env | variant | replay | {seeds} | mean [95% CI] | IQM [95% CI] | {p} [95% CI] |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cells = _score_cells(r.summaries[name], r.n_seeds, baseline, r.variant, drop)
        lines.append(f"| {r.env_id} | {r.variant} | {r.replay_kind} | {cells} |")
    return lines


def table_markdown(
    study: StudyRuns,
    rows: list[Row],
    baseline: str,
    last: int,
    window: int,
    n_boot: int,
    boot_seed: int,
    score_names: Sequence[str] = ("final",),
) -> str:
    """The table of each score in ``score_names``, a section each, with the notes that say
    how each number was computed."""
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
        f"- Runs counted: {which} ({counted} of {total} runs"
        + (" of the variants chosen (--variants)" if study.chosen else "")
        + " in the store"
        + (f"; {others}" if others else "")
        + ").",
        f"- Scores: {', '.join(f'`{n}`' for n in score_names)}, one number per seed each,"
        " in a section each below (`ddpglab report --score` chooses).",
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
        f" of the baseline `{baseline}` (ties 1/2), or lower where lower is better (the"
        " drop: P(X < Y)), with a 95% bootstrap CI resampling the seeds of both.",
    ]
    for name in score_names:
        lines += ["", f"## {SCORES[name].title}", ""]
        if name == "final":
            lines += _final_section(study, rows, baseline, last)
        else:
            lines += _score_section(name, rows, baseline, window)
    return "\n".join(lines) + "\n"
