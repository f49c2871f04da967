"""Where a run or study folder stands, read from its store: per variant (per seed in a
``ddpglab train`` folder) its runs by status, how far its members are towards their budget
and, for the runs going on now, their rate and the time they have left.

Safe while the study runs: it takes no lock and writes no rows (opening a store of an
older ddpglab adds the tables it lacks, as every command does). A run stopped by a signal
(SIGINT, SIGTERM; its state is saved) reads as ``stopped``, not ``failed``. A process
killed outright (SIGKILL, power loss) leaves its runs ``running`` in the store; where
nothing holds the folder's lock (Linux: ``/proc/locks``) they read as ``no process``.
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
STATUSES = ("done", "running", "no process", "stopped", "failed", "pending")
#: The rate is the one of each run's latest this many seconds of training (its episodes'
#: wall_s, which goes on across a resume): recent, and past the fast random first steps.
RATE_WINDOW_S = 600.0


@dataclass(frozen=True)
class RunProgress:
    """One run (member): its variant, seed and status, its budget in ``unit`` (``steps``
    or ``episodes``), how much of it is done, and its recent rate in units per second
    (:func:`recent_rate`; None when it is not running or has fewer than two episodes)."""

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
    budget: int | None  # None: its runs' budgets differ (budgets_differ), or none is recorded
    budgets_differ: bool
    least: int
    most: int
    fraction: float | None
    seconds_left: float | None


def run_status(status: str, error: str | None, locked: bool | None = None) -> str:
    """The store's status, with the failures that were a stop by a signal read as such,
    and a ``running`` run in a folder whose lock nobody holds (``locked`` False) read as
    having no process."""
    if status == "failed" and error and error.startswith(STOPPED_PREFIXES):
        return "stopped"
    if status == "running" and locked is False:
        return "no process"
    return status


def recent_rate(
    units: list[int], walls: list[float], window_s: float = RATE_WINDOW_S
) -> float | None:
    """Units per second over a run's episodes of its latest ``window_s`` seconds of
    training (cumulative units and wall seconds, in order); at least its last two
    episodes; None with fewer or no time between them."""
    if len(walls) < 2:
        return None
    start = min(
        next(i for i, wall in enumerate(walls) if wall >= walls[-1] - window_s), len(walls) - 2
    )
    elapsed = walls[-1] - walls[start]
    return (units[-1] - units[start]) / elapsed if elapsed > 0 else None


def read_progress(conn: sqlite3.Connection, locked: bool | None = None) -> list[RunProgress]:
    """Every run of a store, in run order (read only); ``locked``: whether a process holds
    its folder's lock (:func:`~ddpglab.run_control.folder_locked`)."""
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
        status = run_status(status, error, locked)
        rate = recent_rate(units, [w for *_, w in rows]) if status == "running" else None
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
        budgets = {m.budget for m in members}
        budget = members[0].budget if len(budgets) == 1 else None
        left = [max(m.budget - m.done, 0) / m.rate for m in members if m.rate and m.budget]
        variants.append(
            VariantProgress(
                variant=name,
                statuses=Counter(m.status for m in members),
                unit=members[0].unit,
                budget=budget,
                budgets_differ=len(budgets) > 1,
                least=min(m.done for m in members),
                most=max(m.done for m in members),
                fraction=share_done(members),
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
        if not shared:
            done += f" of {v.budget} {v.unit}" if v.budget else f" {v.unit}"
            done += " (budgets differ)" if v.budgets_differ else ""
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


def share_done(runs: list[RunProgress]) -> float | None:
    """The mean over ``runs`` of the fraction of its budget each has done, at most 1 (None
    when a run has no budget)."""
    if not runs or not all(run.budget for run in runs):
        return None
    return sum(min(run.done / run.budget, 1.0) for run in runs) / len(runs)


def read_commits(conn: sqlite3.Connection) -> tuple[str, list[tuple[str, int]]]:
    """The code the runs ran: each commit they were started or resumed at (``segments``)
    with how many times, in the order first used; for a store written before segments, the
    commits its started runs were created at, with how many runs."""
    rows = conn.execute(
        "SELECT COALESCE(git_commit, 'unknown'), COUNT(*) FROM segments"
        " GROUP BY git_commit ORDER BY MIN(started_at)"
    ).fetchall()
    if rows:
        return "started or resumed at", rows
    rows = conn.execute(
        "SELECT COALESCE(git_commit, 'unknown'), COUNT(*) FROM runs WHERE status != 'pending'"
        " GROUP BY git_commit ORDER BY MIN(run_id)"
    ).fetchall()
    return "runs created at", rows


def short_commit(commit: str) -> str:
    """The first 7 hex digits, with ``-dirty`` kept: ``c981d82``, ``5da13f7-dirty``."""
    head, dirty, _ = commit.partition("-dirty")
    return head[:7] + dirty


def print_status(folder: Path) -> None:
    """The status table of a run or study folder and the share of all budgets done;
    ConfigError when the folder holds no store (nothing written)."""
    from ddpglab.report.study_data import open_store
    from ddpglab.run_control import folder_locked

    locked = folder_locked(folder)
    with open_store(folder) as store:
        study = store.study()
        runs = read_progress(store.conn, locked)
        how, commits = read_commits(store.conn)
    title = f"study {study['name']}" if study else f"run folder {folder.resolve().name}"
    console = Console()
    if not runs:
        console.print(f"{title}: no runs yet")
        return
    variants = by_variant(runs)
    console.print(status_table(f"{title}: {len(runs)} run(s)", variants))
    budget = shared_budget(variants)
    if budget is not None:
        console.print(f"budget: {budget} per run")
    fraction = share_done(runs)
    if fraction is not None:
        console.print(f"{100 * fraction:.1f} % of all runs' budgets done")
    if any(v.seconds_left is not None for v in variants):
        minutes = round(RATE_WINDOW_S / 60)
        console.print(f"left: at each running member's rate over its last {minutes} min")
    if any(v.statuses["no process"] for v in variants):
        console.print("no process: running in the store, but no process holds the folder")
    if commits:
        used = ", ".join(f"{short_commit(commit)} ({n}x)" for commit, n in commits)
        console.print(f"code: {how} {used}")
