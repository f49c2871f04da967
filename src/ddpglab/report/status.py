"""Where a run or study folder stands, read from its store: per variant (per seed in a
``ddpglab train`` folder) its runs by status, how far its members are towards their budget
and, for the runs going on now, their rate and the time they have left.

Safe while the study runs: it only reads ``results.sqlite`` (WAL: the study writes on). A
run stopped by a signal (SIGINT, SIGTERM; its state is saved) reads as ``stopped``, not
``failed``. A process killed outright (SIGKILL, power loss) cannot say so: its runs stay
``running`` in the store, and their rate is that of their last segment.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

#: Error messages of runs stopped by a signal: the study's and ``ddpglab train``'s.
STOPPED_PREFIXES = ("KeyboardInterrupt", "TrainingInterrupted")
#: Display order of the statuses.
STATUSES = ("done", "running", "stopped", "failed", "pending")


@dataclass(frozen=True)
class RunProgress:
    """One run (member): its variant, seed and status, its budget in ``unit`` (``steps``
    or ``episodes``), how much of it is done, and its rate in units per second over the
    latest segment of training (None when it is not running or has no two episodes)."""

    variant: str
    seed: int
    status: str
    unit: str
    budget: int | None
    done: int
    rate: float | None


@dataclass(frozen=True)
class VariantProgress:
    """A variant's runs: how many in each status, the least and most done of its members,
    the fraction of its whole budget done, and, while some of it runs, the seconds its
    slowest running member needs at its latest rate."""

    variant: str
    statuses: Counter[str]
    unit: str
    budget: int | None
    least: int
    most: int
    fraction: float | None
    seconds_left: float | None


def run_status(status: str, error: str | None) -> str:
    """The store's status, with the failures that were a stop by a signal read as such."""
    if status == "failed" and error and error.startswith(STOPPED_PREFIXES):
        return "stopped"
    return status


def segment_rate(steps: list[int], walls: list[float]) -> float | None:
    """Units per second over the latest segment of a run's episodes (their cumulative
    units and wall seconds, in order). A resume starts the wall clock again, so the
    segment begins after the last episode whose wall time is below its predecessor's."""
    start = max((i for i in range(1, len(walls)) if walls[i] < walls[i - 1]), default=0)
    elapsed = walls[-1] - walls[start] if walls else 0.0
    return (steps[-1] - steps[start]) / elapsed if elapsed > 0 else None


def read_progress(conn: sqlite3.Connection) -> list[RunProgress]:
    """Every run of a store, in run order (read only)."""
    runs = conn.execute(
        "SELECT run_id, COALESCE(variant, ''), seed, status, error, config_json FROM runs"
        " ORDER BY run_id"
    ).fetchall()
    episodes: dict[int, list[tuple[int, int, float]]] = {}
    for run_id, episode, env_steps, wall_s in conn.execute(
        "SELECT run_id, episode, env_steps, wall_s FROM episodes ORDER BY run_id, episode"
    ):
        episodes.setdefault(run_id, []).append((episode, env_steps, wall_s))
    progress = []
    for run_id, variant, seed, status, error, config_json in runs:
        train = json.loads(config_json).get("train", {})  # none: shown without a share done
        unit = "steps" if train.get("steps") is not None else "episodes"
        rows = episodes.get(run_id, [])
        units = [steps if unit == "steps" else episode for episode, steps, _ in rows]
        status = run_status(status, error)
        rate = segment_rate(units, [w for *_, w in rows]) if status == "running" else None
        done = units[-1] if units else 0
        progress.append(RunProgress(variant, seed, status, unit, train.get(unit), done, rate))
    return progress


def by_variant(runs: list[RunProgress]) -> list[VariantProgress]:
    """The runs grouped by variant (by seed where a folder has no variants), in run order."""
    groups: dict[str, list[RunProgress]] = {}
    for run in runs:
        groups.setdefault(run.variant or f"seed {run.seed}", []).append(run)
    variants = []
    for name, members in groups.items():
        budget = members[0].budget if len({m.budget for m in members}) == 1 else None
        fraction = None
        if all(m.budget for m in members):
            fraction = sum(min(m.done / m.budget, 1.0) for m in members) / len(members)
        left = [(m.budget - m.done) / m.rate for m in members if m.rate and m.budget]
        variants.append(
            VariantProgress(
                variant=name,
                statuses=Counter(m.status for m in members),
                unit=members[0].unit,
                budget=budget,
                least=min(m.done for m in members),
                most=max(m.done for m in members),
                fraction=fraction,
                seconds_left=max(left, default=None),
            )
        )
    return variants


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def status_table(title: str, variants: list[VariantProgress]) -> Table:
    """One row per variant: runs by status, its members' progress, the time it has left at
    its rate; each row's budget too unless all share it (:func:`shared_budget`)."""
    shared = shared_budget(variants) is not None
    table = Table(title=title)
    for column in ("variant", "runs", "done", "progress", "left"):
        table.add_column(column, justify="left" if column in ("variant", "runs") else "right")
    for v in variants:
        statuses = ", ".join(f"{v.statuses[s]} {s}" for s in STATUSES if v.statuses[s])
        done = f"{v.least}" if v.least == v.most else f"{v.least}-{v.most}"
        done += "" if shared else f" of {v.budget or '?'} {v.unit}"
        fraction = "-" if v.fraction is None else f"{100 * v.fraction:.0f} %"
        left = "-" if v.seconds_left is None else _duration(v.seconds_left)
        table.add_row(v.variant, statuses, done, fraction, left)
    return table


def shared_budget(variants: list[VariantProgress]) -> str | None:
    """The budget every run of every variant has (``1000 steps``), else None."""
    budgets = {(v.budget, v.unit) for v in variants}
    if len(budgets) != 1 or variants[0].budget is None:
        return None
    return f"{variants[0].budget} {variants[0].unit}"


def overall_fraction(runs: list[RunProgress]) -> float | None:
    """The fraction of all runs' budgets done (None when a run has no budget)."""
    if not runs or not all(run.budget for run in runs):
        return None
    return sum(min(run.done / run.budget, 1.0) for run in runs) / len(runs)


def print_status(folder: Path) -> None:
    """The status table of a run or study folder and the share of all budgets done;
    ConfigError when the folder holds no store (nothing written)."""
    from ddpglab.report.study_data import open_store

    with open_store(folder) as store:
        study = store.study()
        runs = read_progress(store.conn)
    title = f"study {study['name']}" if study else f"run folder {folder.name}"
    variants = by_variant(runs)
    console = Console()
    console.print(status_table(f"{title}: {len(runs)} run(s)", variants))
    budget = shared_budget(variants)
    if budget is not None:
        console.print(f"budget: {budget} per run")
    fraction = overall_fraction(runs)
    if fraction is not None:
        console.print(f"{100 * fraction:.1f} % of all runs' budgets done")
    console.print("left: at the running members' rate since their latest start or resume")
