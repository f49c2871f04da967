"""``ddpglab report DIR1 DIR2 ... --out DIR``: several run or study folders in one report.

Each input folder becomes a variant named by its label (the folder's name, or its
``--label``); a study folder's own variants become ``label/variant``. The runs of all
inputs then go through the study report's table and figures, as the variants of one study
would. ``--out`` receives the report's files and ``inputs.txt`` (label and folder of each
input), and is replaced whole on the next comparison written there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from ddpglab.config import ConfigError
from ddpglab.report.contrasts import Contrast
from ddpglab.report.scores import select_scores
from ddpglab.report.study_data import SINGLE_RUN_VARIANT, StudyRuns
from ddpglab.report.study_report import LAST, N_BOOT, WINDOW, load_counted_runs, write_report_folder

#: The file that marks a folder as a comparison's (and lists its inputs).
INPUTS_FILE = "inputs.txt"


def comparison_labels(dirs: list[Path], labels: list[str] | None) -> list[str]:
    """One label per input folder: ``labels`` as given, or the folders' names; refused
    (ConfigError) when the counts differ or two labels are the same."""
    if labels and len(labels) != len(dirs):
        raise ConfigError(
            f"--label given {len(labels)} time(s) for {len(dirs)} folders; give one per folder"
        )
    chosen = list(labels) if labels else [Path(d).resolve().name for d in dirs]
    for i, label in enumerate(chosen):
        if not label.strip():
            raise ConfigError(f"empty label for {dirs[i]}")
        if label in chosen[:i]:
            hint = "" if labels else "; name each with --label"
            raise ConfigError(f"two inputs have the label '{label}'{hint}")
    return chosen


def check_out(out: Path, dirs: list[Path]) -> None:
    """Refuse an ``out`` that is an input, holds one, or holds files that are not an earlier
    comparison's: the report folder is replaced whole, and must clobber nothing else."""
    target = out.resolve()
    for folder in dirs:
        source = Path(folder).resolve()
        if target == source or target in source.parents:
            raise ConfigError(f"--out {out} would replace the input {folder}; choose another")
    try:
        if target.exists() and not target.is_dir():
            raise ConfigError(f"--out {out} exists and is not a folder")
        if target.is_dir() and any(target.iterdir()) and not (target / INPUTS_FILE).is_file():
            raise ConfigError(
                f"--out {out} holds other files (not an earlier comparison); choose a new folder"
            )
    except OSError as err:
        raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None


def load_compared_runs(
    dirs: list[Path], labels: list[str], include_unfinished: bool = False
) -> StudyRuns:
    """The counted runs of every input, each run's variant renamed after its input."""
    runs, counts, by_variant = [], {}, {}

    def renamed(variant: str, label: str) -> str:
        return label if variant == SINGLE_RUN_VARIANT else f"{label}/{variant}"

    for folder, label in zip(dirs, labels, strict=True):
        study = load_counted_runs(Path(folder), include_unfinished)
        for run in study.runs:
            runs.append(dataclasses.replace(run, variant=renamed(run.variant, label)))
        for status, count in study.status_counts.items():
            counts[status] = counts.get(status, 0) + count
        for variant, statuses in study.status_by_variant.items():
            by_variant[renamed(variant, label)] = statuses
    return StudyRuns(runs, counts, include_unfinished, by_variant)


def write_comparison(
    dirs: list[Path],
    out: Path,
    labels: list[str] | None = None,
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
    """Write the report of several run or study folders into ``out`` and return it.

    Raises ConfigError (nothing written) for a folder without a store or without counted
    runs, labels that are not one per folder or not distinct, an ``out`` that would
    clobber an input or other files, a ``baseline`` or a contrast (``contrasts``: those
    contrasts.md reports) that names no variant, or ``scores`` that name an unknown score
    (None: every score). ``colour_by``, ``variants`` (``label/variant`` names): as for
    :func:`write_report`.
    """
    score_names = select_scores(scores)
    out = Path(out)
    chosen = comparison_labels(dirs, labels)
    check_out(out, dirs)
    study = load_compared_runs(dirs, chosen, include_unfinished)
    inputs = "".join(f"{label}\t{folder}\n" for label, folder in zip(chosen, dirs, strict=True))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot use --out {out}: {err.strerror or err}") from None
    write_report_folder(
        study,
        out,
        baseline,
        solve_threshold,
        last,
        window,
        n_boot,
        extra_files={INPUTS_FILE: inputs},
        scores=score_names,
        contrasts=contrasts,
        colour_by=colour_by,
        variants=variants,
    )
    return out
