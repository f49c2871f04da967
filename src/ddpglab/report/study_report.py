"""``ddpglab report DIR``: figures and a statistics table for a study, from the store alone.

Writes ``DIR/report/``: ``curves.png`` (by episode), ``curves_steps.png`` (by env step),
``final.png``, ``table.md`` and ``table.csv`` (the scores of :mod:`ddpglab.report.scores`,
all three unless ``scores`` chooses); ``thresholds.png`` when some variant records
stratified thresholds, ``diagnostics.png`` when runs recorded episode values,
``replay_stats.png`` and ``recency_entropy.png`` when runs recorded their sampling law at
episode ends (replay_stats rows; stores written before them have none); ``contrasts.md``
when contrasts between variants are asked for (:mod:`ddpglab.report.contrasts`). The folder
is built beside the old one and swapped in whole, so a failed report leaves the previous
one intact.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from ddpglab.config import ConfigError
from ddpglab.report import study_figures, study_table
from ddpglab.report.contrasts import Contrast, contrast_rows, contrasts_markdown
from ddpglab.report.folder_swap import swap_in, temporary_folder_for
from ddpglab.report.name_parts import name_part
from ddpglab.report.scores import select_scores
from ddpglab.report.study_data import StudyRuns, load_study_runs
from ddpglab.report.study_rows import BOOT_SEED, LAST, default_baseline, table_rows

#: Episodes in the rolling mean of the curves and of the first-crossing episode.
WINDOW = 10
N_BOOT = 10_000


def write_report(
    study_dir: Path,
    baseline: str | None = None,
    solve_threshold: float | None = None,
    *,
    last: int = LAST,
    window: int = WINDOW,
    n_boot: int = N_BOOT,
    include_unfinished: bool = False,
    scores: Sequence[str] | None = None,
    contrasts: Sequence[Contrast | tuple[Contrast, Contrast]] = (),
    colour_by: str | None = None,
    variants: Sequence[str] | None = None,
) -> Path:
    """Write ``study_dir/report/`` from the store and return that folder; ``scores``: the
    scores table.md and table.csv report (scores.SCORES' names; None: all of them);
    ``contrasts``: the contrasts and interactions (pairs of contrasts) contrasts.md reports
    (none: no contrasts.md); ``colour_by``: the name label recency_entropy.png colours
    variants by (None: a colour each); ``variants``: the variants to report (None: all).

    Raises ConfigError (nothing written) when the folder holds no store, the store no
    counted run, ``baseline`` or a contrast names no variant or ``scores`` an unknown
    score.
    """
    score_names = select_scores(scores)
    study_dir = Path(study_dir)
    study = load_counted_runs(study_dir, include_unfinished)
    target = study_dir / "report"
    write_report_folder(
        study,
        target,
        baseline,
        solve_threshold,
        last,
        window,
        n_boot,
        scores=score_names,
        contrasts=contrasts,
        colour_by=colour_by,
        variants=variants,
    )
    return target


def load_counted_runs(study_dir: Path, include_unfinished: bool = False) -> StudyRuns:
    """The runs a report of ``study_dir`` counts; ConfigError when there are none."""
    study = load_study_runs(study_dir, include_unfinished)
    if not study.runs:
        total = sum(study.status_counts.values())
        what = (
            "no runs"
            if not total
            else "no run with episodes"
            if include_unfinished
            else (
                f"no finished run with episodes ({total} runs, none 'done'; "
                "--include-unfinished counts the others)"
            )
        )
        raise ConfigError(f"{study_dir}/results.sqlite holds {what}")
    return study


def write_report_folder(
    study: StudyRuns,
    target: Path,
    baseline: str | None,
    solve_threshold: float | None,
    last: int = LAST,
    window: int = WINDOW,
    n_boot: int = N_BOOT,
    extra_files: dict[str, str] | None = None,
    scores: Sequence[str] | None = None,
    contrasts: Sequence[Contrast | tuple[Contrast, Contrast]] = (),
    colour_by: str | None = None,
    variants: Sequence[str] | None = None,
) -> None:
    """Write the report of ``study`` (tables of ``scores``, figures, recency_entropy.png
    coloured by the name label ``colour_by`` if given, contrasts.md of ``contrasts`` if
    any, and ``extra_files``: name -> text) into ``target``, built beside it and swapped in
    whole; with ``variants``, of those variants only.

    Raises ConfigError (nothing written) when ``variants``, ``baseline`` or a contrast names
    no variant or ``scores`` an unknown score.
    """
    score_names = select_scores(scores)
    if variants:
        study = study.only(variants)
    if colour_by is not None:
        check_colour_label(study, colour_by)
    if baseline is None:
        baseline = default_baseline(study)
    elif baseline not in study.variants():
        raise ConfigError(
            f"unknown baseline variant '{baseline}'; choose from {', '.join(study.variants())}"
        )
    rows = table_rows(study, baseline, solve_threshold, last, window, n_boot, score_names)
    contrasted = contrast_rows(
        study,
        contrasts,
        score_names,
        threshold=solve_threshold,
        last=last,
        window=window,
        n_boot=n_boot,
    )

    tmp = temporary_folder_for(target)
    try:
        (tmp / "table.md").write_text(
            study_table.table_markdown(
                study, rows, baseline, last, window, n_boot, BOOT_SEED, score_names
            )
        )
        (tmp / "table.csv").write_text(study_table.table_csv(rows, last, window, score_names))
        study_figures.plot_curves(study, tmp / "curves.png", window, n_boot)
        study_figures.plot_curves(study, tmp / "curves_steps.png", window, n_boot, "env steps")
        study_figures.plot_final(rows, tmp / "final.png", last)
        study_figures.plot_thresholds(study, tmp / "thresholds.png", window)
        study_figures.plot_diagnostics(study, tmp / "diagnostics.png", window)
        study_figures.plot_replay_stats(study, tmp / "replay_stats.png", n_boot)
        study_figures.plot_recency_entropy(
            study, rows, tmp / "recency_entropy.png", last, n_boot, colour_by
        )
        if contrasts:
            text = contrasts_markdown(contrasted, last, window, n_boot)
            (tmp / "contrasts.md").write_text(text)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_colour_label(study: StudyRuns, label: str) -> None:
    """Refuse (ConfigError) a ``--colour-by`` label that no variant's name has a part for."""
    names = study.variants()
    if not label or all(name_part(v, label) == f"(no {label})" for v in names):
        raise ConfigError(
            f"--colour-by {label!r}: no variant's name has a part that starts with it "
            f"(variants: {', '.join(names)})"
        )
