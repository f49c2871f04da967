"""``ddpglab export DIR``: the episodes of a store as csv files (the 2023 layout) or parquet.

csv: ``<to>/runs/<env>/<variant>_<seed>/loss.csv``, one line per episode, no header:
``episode, return`` or, for runs that record a stratified threshold,
``episode, return, threshold`` (``nan`` where the episode had none yet). This is the
layout the 2023 study's plotting scripts read with ``np.loadtxt(path, delimiter=",")``.
Returns are written with ``repr`` so that reading them back gives the stored floats.
A run that recorded its sampling law also gets ``replay_stats.csv`` beside it, with a
header: ``env_steps,stored,volume,expected_age,entropy``, one line per episode end.

parquet: one table (``table``): every episode column, or every ``replay_stats`` column,
joined with its run's env, variant, seed and status (pandas + pyarrow, extra ``parquet``).

Only runs with status 'done' are exported unless ``include_unfinished``. Output is built
beside its target and renamed into place, so a failed export leaves nothing half-written.
A csv export replaces only an earlier export's ``runs/`` (it carries the file
:data:`EXPORT_MARKER`), never a folder of anything else's, a study's own ``runs/`` say.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np

from ddpglab.config import ConfigError
from ddpglab.report.folder_swap import swap_in, temporary_folder_for
from ddpglab.report.study_data import RunData, load_study_runs, open_store, variant_label

FORMATS = ("csv", "parquet")
TABLES = ("episodes", "replay_stats")  # what a parquet export can hold
REPLAY_STATS_COLUMNS = ("env_steps", "stored", "volume", "expected_age", "entropy")
EXPORT_MARKER = ".ddpglab-export"  # in runs/: an earlier export, safe to replace
# Every exported column with a fixed type, so that exports of different stores (a column all
# NULL in one of them) read back and concatenate alike; "Int64" keeps NULL as <NA>.
PARQUET_TYPES = {
    "run_id": "int64",
    "seed": "int64",
    "episode": "int64",
    "length": "int64",
    "env_steps": "int64",
    "terminated": "Int64",
    **{c: "float64" for c in ("return", "wall_s", "critic_loss", "mean_q", "threshold")},
    **{c: "float64" for c in ("q_start", "discounted_return")},
    "stored": "int64",
    "volume": "int64",
    "expected_age": "float64",
    "entropy": "float64",
}


def safe_name(text: str) -> str:
    """A path component: separators (as in namespaced env ids like ``ns/Env-v0``) become _."""
    cleaned = text.replace("/", "_").replace("\\", "_")
    return "_" if cleaned in ("", ".", "..") else cleaned


def loss_csv(run: RunData) -> str:
    """``episode, return[, threshold]`` lines; the threshold column only when the run has one."""
    with_threshold = bool(np.isfinite(run.thresholds).any())
    lines = []
    for episode, ret, threshold in zip(run.episodes, run.returns, run.thresholds, strict=True):
        fields = [str(int(episode)), repr(float(ret))]
        if with_threshold:
            fields.append("nan" if math.isnan(threshold) else repr(float(threshold)))
        lines.append(", ".join(fields))
    return "\n".join(lines) + "\n"


def replay_stats_csv(run: RunData) -> str | None:
    """The run's sampling law at its episode ends, a header line first; None when the run
    recorded none (no replay_stats rows)."""
    trace = run.replay
    if trace is None or not len(trace.env_steps):
        return None
    lines = [",".join(REPLAY_STATS_COLUMNS)]
    for steps, stored, volume, age, entropy in zip(
        *(getattr(trace, c) for c in REPLAY_STATS_COLUMNS), strict=True
    ):
        lines.append(f"{int(steps)},{int(stored)},{int(volume)},{float(age)!r},{float(entropy)!r}")
    return "\n".join(lines) + "\n"


def run_folders(runs: list[RunData]) -> dict[int, Path]:
    """``runs/<env>/<variant>_<seed>`` per run; a repeated (env, variant, seed), possible
    when unfinished runs are included, gets its run id appended."""
    folders: dict[int, Path] = {}
    taken: set[Path] = set()
    for run in runs:
        folder = Path("runs", safe_name(run.env_id), safe_name(f"{run.variant}_{run.seed}"))
        if folder in taken:
            folder = folder.with_name(f"{folder.name}_run{run.run_id}")
        taken.add(folder)
        folders[run.run_id] = folder
    return folders


def export_csv(study_dir: Path, to: Path, include_unfinished: bool = False) -> Path:
    """Write ``to/runs/...`` (replacing an earlier export there); returns ``to/runs``."""
    study = load_study_runs(study_dir, include_unfinished)
    if not study.runs:
        raise ConfigError(f"{study_dir}/results.sqlite holds no run to export")
    target = to / "runs"
    try:
        if to.exists() and not to.is_dir():
            raise ConfigError(f"--to {to} exists and is not a folder")
        if target.exists() and not (target / EXPORT_MARKER).is_file():
            raise ConfigError(
                f"--to {to}: {target} exists and is not an earlier export; choose another --to"
            )
        to.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot use --to {to}: {err.strerror or err}") from None
    tmp = temporary_folder_for(target)
    try:
        (tmp / EXPORT_MARKER).write_text("written by ddpglab export; replaced by the next one\n")
        folders = run_folders(study.runs)
        for run in study.runs:
            path = tmp / folders[run.run_id].relative_to("runs") / "loss.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(loss_csv(run))
            if (stats := replay_stats_csv(run)) is not None:
                path.with_name("replay_stats.csv").write_text(stats)
        swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_table(table: str) -> None:
    """Refuse (ConfigError) a table a parquet export cannot hold."""
    if table not in TABLES:
        raise ConfigError(f"unknown table '{table}'; choose from {', '.join(TABLES)}")


def table_frame(study_dir: Path, table: str = "episodes", include_unfinished: bool = False):
    """Every row of ``table`` (episodes or replay_stats) joined with its run's identity, as
    a pandas DataFrame."""
    import pandas as pd

    check_table(table)  # the name goes into the query below
    order = "t.run_id, t.episode" if table == "episodes" else "t.run_id, t.env_steps"
    with open_store(study_dir) as store:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        if store.conn.execute(query, (table,)).fetchone() is None:
            return pd.DataFrame()  # a store from before the table: none of its rows
        frame = pd.read_sql_query(
            f"SELECT r.env_id, r.variant, r.seed, r.status, t.* FROM {table} t"
            f" JOIN runs r USING (run_id) ORDER BY {order}",
            store.conn,
        )
    if not include_unfinished:
        frame = frame[frame["status"] == "done"].reset_index(drop=True)
    frame["variant"] = frame["variant"].map(variant_label)
    return frame.astype({c: t for c, t in PARQUET_TYPES.items() if c in frame.columns})


def export_parquet(
    study_dir: Path, to: Path, table: str = "episodes", include_unfinished: bool = False
) -> Path:
    """Write ``table`` (episodes or replay_stats) to the parquet file ``to``; returns it."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("parquet export needs pyarrow: pip install 'ddpglab[parquet]'") from None
    frame = table_frame(study_dir, table, include_unfinished)
    if frame.empty:
        what = "run" if table == "episodes" else "replay_stats row of a run"
        raise ConfigError(f"{study_dir}/results.sqlite holds no {what} to export")
    if to.is_dir():
        raise ConfigError(f"--to {to} is a folder; parquet export writes one file")
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.tmp-{os.getpid()}")
    try:
        frame.to_parquet(tmp, engine="pyarrow", index=False)
        os.replace(tmp, to)
    finally:
        tmp.unlink(missing_ok=True)
    return to


def export(
    study_dir: Path,
    fmt: str,
    to: Path | None = None,
    include_unfinished: bool = False,
    table: str | None = None,
) -> Path:
    """Export in ``fmt`` ('csv' or 'parquet'); ``to`` defaults to ``study_dir/export``
    (csv) or ``study_dir/export/<table>.parquet``. ``table`` (parquet only: csv writes
    both) is 'episodes' (default) or 'replay_stats'."""
    study_dir = Path(study_dir)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'; choose from {', '.join(FORMATS)}")
    if table is not None:
        check_table(table)
    if fmt == "csv" and table is not None:
        raise ConfigError("--table is for parquet: a csv export writes every table a run has")
    open_store(study_dir).close()  # refuse a folder without a store before creating anything
    if fmt == "csv":
        return export_csv(study_dir, Path(to or study_dir / "export"), include_unfinished)
    table = table or "episodes"
    default = study_dir / "export" / f"{table}.parquet"
    return export_parquet(study_dir, Path(to or default), table, include_unfinished)
