"""SQLite results store: runs, episodes, evaluations and checkpoints.

One row in ``runs`` per member (seed). Every finished episode is one row in ``episodes``;
the episodes that end on the same env step are written in one transaction, so a killed
process leaves only whole episodes behind. Evaluations and checkpoints are keyed by env
steps: a run with a step budget can end mid-episode, after one at the same episode count.
Plots, tables and summaries are derived from this file.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      INTEGER PRIMARY KEY,
    env_id      TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    variant     TEXT NOT NULL DEFAULT '',
    config_json TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    error       TEXT,
    host        TEXT,
    versions    TEXT,
    started_at  REAL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS episodes (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id),
    episode     INTEGER NOT NULL,
    return      REAL NOT NULL,
    length      INTEGER NOT NULL,
    env_steps   INTEGER NOT NULL,
    wall_s      REAL NOT NULL,
    critic_loss REAL,
    mean_q      REAL,
    threshold   REAL,  -- stratified replay: the return threshold the episode was judged by
    PRIMARY KEY (run_id, episode)
);
CREATE TABLE IF NOT EXISTS evals (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id),
    episode     INTEGER NOT NULL,
    env_steps   INTEGER NOT NULL,
    mean_return REAL NOT NULL,
    returns     TEXT NOT NULL,
    PRIMARY KEY (run_id, env_steps)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id      INTEGER NOT NULL REFERENCES runs(run_id),
    episode     INTEGER NOT NULL,
    env_steps   INTEGER NOT NULL,
    path        TEXT NOT NULL,
    PRIMARY KEY (run_id, env_steps)
);
CREATE TABLE IF NOT EXISTS study (  -- a study's store: the spec it runs, one row
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    name        TEXT NOT NULL,
    spec_json   TEXT NOT NULL,  -- the canonical spec (see ddpglab.study.spec)
    spec_hash   TEXT NOT NULL,
    created_at  REAL NOT NULL
);
"""


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape a run's numbers."""
    import gymnasium
    import numpy
    import torch

    import ddpglab

    return {
        "python": platform.python_version(),
        "ddpglab": ddpglab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
    }


def read_study(path: str | Path) -> dict[str, Any] | None:
    """The study recorded in an existing store file (see :meth:`ResultsStore.study`), without
    changing the file; None if it holds no study (a ``ddpglab train`` store, say)."""
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=rw", uri=True)
    except sqlite3.OperationalError:  # no such file: never create one here
        return None
    try:
        return _study_row(conn)
    except sqlite3.DatabaseError:  # no study table, or not a store at all
        return None
    finally:
        conn.close()


def _study_row(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT name, spec_json, spec_hash FROM study").fetchone()
    return None if row is None else dict(zip(("name", "spec_json", "spec_hash"), row, strict=True))


class ResultsStore:
    """A connection to ``results.sqlite`` in WAL mode (one writer, any number of readers)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_run(
        self,
        env_id: str,
        seed: int,
        config: dict[str, Any],
        variant: str = "",
        status: str = "running",
    ) -> int:
        """Register a member's run as running (or ``pending``: not started); returns its
        ``run_id``."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (env_id, seed, variant, config_json, status, host, versions,"
                " started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    env_id,
                    seed,
                    variant,
                    json.dumps(config, sort_keys=True),
                    status,
                    platform.node(),
                    json.dumps(library_versions()),
                    time.time() if status == "running" else None,
                ),
            )
        return int(cur.lastrowid)

    def start_run(self, run_id: int, config: dict[str, Any]) -> None:
        """A pending run starts, with the resolved config it runs."""
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET status = 'running', config_json = ?, started_at = ?"
                " WHERE run_id = ?",
                (json.dumps(config, sort_keys=True), time.time(), run_id),
            )

    def delete_runs(self, run_ids: Iterable[int]) -> None:
        """Remove runs and everything recorded for them, in one transaction."""
        ids = [(run_id,) for run_id in run_ids]
        with self.conn:
            for table in ("episodes", "evals", "checkpoints", "runs"):
                self.conn.executemany(f"DELETE FROM {table} WHERE run_id = ?", ids)

    def study(self) -> dict[str, Any] | None:
        """The study this store belongs to (name, spec_json, spec_hash), if any."""
        return _study_row(self.conn)

    def set_study(self, name: str, spec_json: str, spec_hash: str) -> None:
        """Record the study this store belongs to."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO study VALUES (1, ?, ?, ?, ?)",
                (name, spec_json, spec_hash, time.time()),
            )

    def finish_run(self, run_id: int, status: str = "done", error: str | None = None) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                (status, error, time.time(), run_id),
            )

    def add_episodes(self, rows: Iterable[tuple]) -> None:
        """Insert (run_id, episode, return, length, env_steps, wall_s, critic_loss, mean_q,
        threshold) rows."""
        with self.conn:
            self.conn.executemany("INSERT INTO episodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def add_eval(self, run_id: int, episode: int, env_steps: int, returns: list[float]) -> None:
        mean = sum(returns) / len(returns)
        with self.conn:
            self.conn.execute(
                "INSERT INTO evals VALUES (?, ?, ?, ?, ?)",
                (run_id, episode, env_steps, mean, json.dumps(returns)),
            )

    def add_checkpoint(self, run_id: int, episode: int, env_steps: int, path: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                (run_id, episode, env_steps, path),
            )

    def runs(self) -> list[dict[str, Any]]:
        cur = self.conn.execute("SELECT * FROM runs ORDER BY run_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def returns(self, run_id: int) -> list[float]:
        """Every episode return of a run, in episode order."""
        cur = self.conn.execute(
            "SELECT return FROM episodes WHERE run_id = ? ORDER BY episode", (run_id,)
        )
        return [row[0] for row in cur.fetchall()]

    def checkpoints(self, run_id: int) -> list[dict[str, Any]]:
        """A run's checkpoints (episode, env_steps, path relative to the store's folder),
        in training order."""
        cur = self.conn.execute(
            "SELECT episode, env_steps, path FROM checkpoints WHERE run_id = ? ORDER BY env_steps",
            (run_id,),
        )
        return [{"episode": e, "env_steps": s, "path": p} for e, s, p in cur.fetchall()]

    def episodes_frame(self):
        """All episodes joined with their run's seed and variant, as a pandas DataFrame."""
        import pandas as pd

        return pd.read_sql_query(
            "SELECT r.variant, r.seed, e.* FROM episodes e JOIN runs r USING (run_id)"
            " ORDER BY e.run_id, e.episode",
            self.conn,
        )
