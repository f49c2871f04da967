"""``ddpglab report DIR``: figures and a statistics table for a study, from the store alone.

Writes ``DIR/report/``: ``curves.png`` (by episode), ``curves_steps.png`` (by env step),
``final.png``, ``table.md``, ``table.csv``; ``thresholds.png`` when some variant records
stratified thresholds, ``diagnostics.png`` when runs recorded episode values. The folder
is built beside the old one and swapped in whole, so a failed report leaves the previous
one intact. The bootstrap draws from fixed seeds (one stream per environment, variant and
statistic), so the same store gives byte-identical tables.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sqlite3
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ddpglab.config import ConfigError
from ddpglab.report import stats, study_table
from ddpglab.store import ResultsStore, is_results_store

#: The score of a run: its mean return over its last ``LAST`` episodes.
LAST = 50
#: Episodes in the rolling mean of the curves and of the first-crossing episode.
WINDOW = 10
N_BOOT = 10_000
BOOT_SEED = 20210527  # fixed: a report must not change between regenerations
#: Return that counts as "solved enough" per env; gymnasium's reward_threshold otherwise.
SOLVE_THRESHOLDS = {"Pendulum-v1": -400.0, "BipedalWalker-v3": 300.0}
SINGLE_RUN_VARIANT = "run"  # how a plain ``ddpglab train`` run (variant '') is labelled


@dataclass
class RunData:
    """One counted run: its identity and its episodes in order."""

    run_id: int
    env_id: str
    variant: str
    seed: int
    status: str
    replay_kind: str | None
    episodes: np.ndarray
    returns: np.ndarray
    thresholds: np.ndarray  # NaN where the store holds NULL
    env_steps: np.ndarray | None = None  # at each episode's end
    lengths: np.ndarray | None = None
    terminated: np.ndarray | None = None  # 1.0: the env ended it; NaN: not recorded
    q_start: np.ndarray | None = None  # Q(s_0, mu(s_0)); NaN: not recorded
    discounted_return: np.ndarray | None = None  # NaN: not recorded


@dataclass
class Study:
    """The runs a report counts, and how many runs of each status the store holds."""

    runs: list[RunData]
    status_counts: dict[str, int]
    include_unfinished: bool
    envs: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.envs = list(dict.fromkeys(r.env_id for r in self.runs))

    def variants(self, env_id: str | None = None) -> list[str]:
        """Variants in the order of their first run."""
        return list(dict.fromkeys(r.variant for r in self.runs if env_id in (None, r.env_id)))

    def group(self, env_id: str, variant: str) -> list[RunData]:
        return [r for r in self.runs if r.env_id == env_id and r.variant == variant]


def variant_label(raw: str) -> str:
    return raw if raw else SINGLE_RUN_VARIANT


def open_store(study_dir: Path) -> ResultsStore:
    """The store of a run or study folder; ConfigError when there is none (nothing created)."""
    path = Path(study_dir) / "results.sqlite"
    if not Path(study_dir).is_dir():
        raise ConfigError(f"{study_dir} is not a folder")
    if not path.is_file():
        raise ConfigError(f"{study_dir} holds no results.sqlite (not a run or study folder)")
    if not is_results_store(path):
        raise ConfigError(f"{path} is not a ddpglab results store")
    try:
        return ResultsStore(path)
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"{path} is not a ddpglab results store ({err})") from None


def load_study(study_dir: Path, include_unfinished: bool = False) -> Study:
    """Counted runs (status 'done', or every run with episodes) with their episodes."""
    with open_store(study_dir) as store:
        runs = store.runs()
        frame = store.episodes_frame()
    counts: dict[str, int] = {}
    for row in runs:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    by_run = {run_id: rows for run_id, rows in frame.groupby("run_id", sort=False)}
    kept = []
    for row in runs:
        rows = by_run.get(row["run_id"])
        if rows is None or (row["status"] != "done" and not include_unfinished):
            continue
        try:
            kind = json.loads(row["config_json"]).get("replay", {}).get("kind")
        except (json.JSONDecodeError, AttributeError):
            kind = None
        kept.append(
            RunData(
                run_id=int(row["run_id"]),
                env_id=row["env_id"],
                variant=variant_label(row["variant"]),
                seed=int(row["seed"]),
                status=row["status"],
                replay_kind=kind,
                episodes=rows["episode"].to_numpy(dtype=int),
                returns=rows["return"].to_numpy(dtype=float),
                thresholds=rows["threshold"].to_numpy(dtype=float, na_value=np.nan),
                env_steps=rows["env_steps"].to_numpy(dtype=float),
                lengths=rows["length"].to_numpy(dtype=float),
                **{
                    name: rows[name].to_numpy(dtype=float, na_value=np.nan)
                    for name in ("terminated", "q_start", "discounted_return")
                },
            )
        )
    return Study(kept, counts, include_unfinished)


def solve_threshold_for(env_id: str, override: float | None) -> float | None:
    """``override``, else the known threshold of the env, else gymnasium's reward_threshold.

    An id written ``module:EnvId`` (which makes gymnasium import the module) is looked up
    as ``EnvId``, after importing the module as ``gym.make`` would."""
    if override is not None:
        return override
    import gymnasium as gym

    module, _, name = env_id.rpartition(":")
    if name in SOLVE_THRESHOLDS:
        return SOLVE_THRESHOLDS[name]
    try:
        if module:
            importlib.import_module(module)
        value = gym.spec(name).reward_threshold
    except (ImportError, gym.error.Error):  # a module or an id this machine does not know
        return None
    return None if value is None else float(value)


def default_baseline(study: Study) -> str:
    """The first variant whose runs use uniform replay, else the first variant."""
    for variant in study.variants():
        if any(r.replay_kind == "uniform" for r in study.runs if r.variant == variant):
            return variant
    return study.variants()[0]


def rng_for(*names: str) -> np.random.Generator:
    """An RNG that depends only on the names (not on which other rows a report has)."""
    keys = [BOOT_SEED, *(zlib.crc32(n.encode()) for n in names)]
    return np.random.default_rng(np.random.SeedSequence(keys))


def run_score(run: RunData, last: int) -> float:
    """Mean return of the run's last ``last`` episodes (all of them if it has fewer)."""
    return float(run.returns[-last:].mean())


@dataclass
class Row:
    """One (env, variant) line of the table."""

    env_id: str
    variant: str
    replay_kind: str
    n_seeds: int
    scores: np.ndarray
    mean: tuple[float, float, float]
    iqm: tuple[float, float, float]
    threshold: float | None
    median_crossing: float | None  # inf when more than half never crossed
    not_reached: int
    baseline: str | None
    p_improve: tuple[float, float, float] | None


def first_crossings(runs: list[RunData], threshold: float, window: int) -> list[int | None]:
    """Per run, the episode at which the mean return of its last ``window`` episodes first
    exceeds ``threshold``; only full windows count, so one lucky early episode does not."""
    crossings: list[int | None] = []
    for run in runs:
        full_windows = stats.rolling_mean(run.returns, window)[window - 1 :]
        index = stats.first_crossing(full_windows, threshold)
        crossings.append(None if index is None else int(run.episodes[index + window - 1]))
    return crossings


def _with_ci(point_lo_hi: tuple[float, float, float], n: int) -> tuple[float, float, float]:
    """One seed has no spread to resample: its CI is undefined (NaN), not zero-width."""
    return point_lo_hi if n >= 2 else (point_lo_hi[0], float("nan"), float("nan"))


def make_row(
    study: Study,
    env_id: str,
    variant: str,
    baseline: str,
    threshold: float | None,
    last: int,
    window: int,
    n_boot: int,
) -> Row:
    runs = study.group(env_id, variant)
    scores = np.array([run_score(r, last) for r in runs])
    base_scores = np.array([run_score(r, last) for r in study.group(env_id, baseline)])
    # One task per row: raw returns of different envs are not on one scale, so the
    # stratified bootstrap has a single stratum here (resampling the seeds of this env).
    mean = stats.bootstrap_ci(
        [scores], stats.aggregate_mean, n_boot, rng_for(env_id, variant, "mean")
    )
    iqm = stats.bootstrap_ci([scores], stats.aggregate_iqm, n_boot, rng_for(env_id, variant, "iqm"))
    p = None
    if variant != baseline and base_scores.size:
        p = stats.probability_of_improvement_ci(
            [scores], [base_scores], n_boot, rng_for(env_id, variant, "p", baseline)
        )
        p = _with_ci(p, min(scores.size, base_scores.size))
    crossings = first_crossings(runs, threshold, window) if threshold is not None else []
    return Row(
        env_id=env_id,
        variant=variant,
        replay_kind="/".join(sorted({r.replay_kind or "?" for r in runs})),
        n_seeds=len(runs),
        scores=scores,
        mean=_with_ci(mean, scores.size),
        iqm=_with_ci(iqm, scores.size),
        threshold=threshold,
        median_crossing=stats.median_crossing(crossings) if crossings else None,
        not_reached=sum(c is None for c in crossings),
        baseline=baseline if base_scores.size else None,
        p_improve=p,
    )


def table_rows(
    study: Study, baseline: str, threshold: float | None, last: int, window: int, n_boot: int
) -> list[Row]:
    """One row per (env, variant), envs and variants in the order of their first run."""
    return [
        make_row(
            study,
            env_id,
            variant,
            baseline,
            solve_threshold_for(env_id, threshold),
            last,
            window,
            n_boot,
        )  # fmt: skip
        for env_id in study.envs
        for variant in study.variants(env_id)
    ]


def temporary_folder_for(target: Path) -> Path:
    """A fresh hidden folder beside ``target`` (unique, so concurrent writers never meet),
    with the permissions of any new folder: mkdtemp's 0700 would hide the result from the
    other users of a shared file system."""
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    return folder


def swap_in(built: Path, target: Path) -> None:
    """Put the folder ``built`` in the place of ``target``; the old ``target`` is moved aside
    first and deleted only once the new one is in place."""
    old = built.with_name(f"{built.name}-old")
    if target.exists():
        target.rename(old)
    built.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_report(
    study_dir: Path,
    baseline: str | None = None,
    solve_threshold: float | None = None,
    *,
    last: int = LAST,
    window: int = WINDOW,
    n_boot: int = N_BOOT,
    include_unfinished: bool = False,
) -> Path:
    """Write ``study_dir/report/`` from the store and return that folder.

    Raises ConfigError (nothing written) when the folder holds no store, the store no
    counted run, or ``baseline`` names no variant.
    """
    from ddpglab.report import study_figures

    study_dir = Path(study_dir)
    study = load_study(study_dir, include_unfinished)
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
    if baseline is None:
        baseline = default_baseline(study)
    elif baseline not in study.variants():
        raise ConfigError(
            f"unknown baseline variant '{baseline}'; choose from {', '.join(study.variants())}"
        )
    rows = table_rows(study, baseline, solve_threshold, last, window, n_boot)

    target = study_dir / "report"
    tmp = temporary_folder_for(target)
    try:
        (tmp / "table.md").write_text(
            study_table.table_markdown(study, rows, baseline, last, window, n_boot, BOOT_SEED)
        )
        (tmp / "table.csv").write_text(study_table.table_csv(rows, last, window))
        study_figures.plot_curves(study, tmp / "curves.png", window, n_boot)
        study_figures.plot_curves(study, tmp / "curves_steps.png", window, n_boot, "env steps")
        study_figures.plot_final(rows, tmp / "final.png", last)
        study_figures.plot_thresholds(study, tmp / "thresholds.png", window)
        study_figures.plot_diagnostics(study, tmp / "diagnostics.png", window)
        swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
