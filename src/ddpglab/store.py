"""SQLite results store: runs, episodes, evaluations and checkpoints.

One row in ``runs`` per member (seed), with its status (pending, running, done, failed),
host, library versions and the git commit of ddpglab (see :func:`git_commit`). Every
finished episode is one row in ``episodes``. Evaluations and checkpoints are keyed by env
steps: a run with a step budget can end mid-episode, after one at the same episode count.
Plots, tables and summaries are derived from this file.

Crash safety: the file is in WAL mode with ``synchronous=NORMAL`` and has one writer (the
trainer, or a study's driver); readers never block it. Every write method is one
transaction, so the episodes of one :meth:`ResultsStore.add_episodes` call (those that end
on the same env step) land together or not at all. A process killed at any moment, even
with SIGKILL, leaves a store that opens, passes ``PRAGMA integrity_check`` and holds every
committed transaction; only a power loss or OS crash can lose the last few commits, never
consistency. The schema is created in one transaction too.

Migration: stores written before ``runs.git_commit`` or the episodes' ``terminated``,
``q_start`` and ``discounted_return`` existed gain those (nullable) columns when opened by
:class:`ResultsStore`; their old rows keep NULL there. Stores older than ``replay_stats`` or
``segments`` gain the (empty) tables.

Provenance across resumes: ``runs.git_commit`` is the commit the run was created at; each
start and resume adds a ``segments`` row with the commit and host of the process that
wrote it, so a run continued at other code says so. Workers load the code when they start:
edits to the checkout while a run goes on are not seen here.
"""

from __future__ import annotations

import json
import platform
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from ddpglab.provenance import git_commit, library_versions
from ddpglab.store_probe import is_empty_store, is_results_store, read_study, study_row

__all__ = [
    "EpisodeRow",
    "ReplayStatsRow",
    "ResultsStore",
    "is_empty_store",
    "is_results_store",
    "read_study",
]

SCHEMA = """
BEGIN;
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
    git_commit  TEXT,  -- ddpglab's commit, "-dirty" if changed (see git_commit()); NULL if unknown
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
    terminated  INTEGER,  -- 1: ended by the env (e.g. a fall); 0: by the time limit
    q_start     REAL,  -- the critic's Q(s_0, mu(s_0)) when the episode began
    discounted_return REAL,  -- sum_t gamma^t r_t (+ gamma^T Q(s_T) at a time limit), q_start's aim
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
CREATE TABLE IF NOT EXISTS replay_stats (  -- each member's sampling law at its episode ends
    run_id       INTEGER NOT NULL REFERENCES runs(run_id),
    env_steps    INTEGER NOT NULL,
    stored       INTEGER NOT NULL,  -- transitions it can be sampled from (its window)
    volume       INTEGER NOT NULL,  -- transitions replayed per env step
    expected_age REAL NOT NULL,  -- E[age] of a replayed transition, env steps, 0 the newest
    entropy      REAL NOT NULL,  -- H(P) of the sampling law, nats
    PRIMARY KEY (run_id, env_steps)
);
CREATE TABLE IF NOT EXISTS segments (  -- each start or resume of a run: the code it ran
    run_id      INTEGER NOT NULL REFERENCES runs(run_id),
    episode     INTEGER NOT NULL,  -- the episodes the run had kept when the segment began
    started_at  REAL NOT NULL,
    host        TEXT,
    git_commit  TEXT,  -- the commit of the process that started it (see git_commit())
    PRIMARY KEY (run_id, episode)
);
COMMIT;
"""


BUSY_TIMEOUT_S = 30.0  # how long a write waits for another connection's lock


class EpisodeRow(NamedTuple):
    """One finished episode of one member, as a row of the ``episodes`` table."""

    run_id: int
    episode: int  # 1 for the member's first episode
    episode_return: float  # the column ``return`` (a Python keyword)
    length: int  # env steps in the episode
    env_steps: int  # the member's env steps so far, this episode included
    wall_s: float  # seconds since training started
    critic_loss: float | None  # mean over the episode's updates; None before any
    mean_q: float | None  # mean Q(s, a) over the episode's updates; None before any
    threshold: float | None  # stratified replay: the return threshold it was judged by
    terminated: int | None  # 1: ended by the env (e.g. a fall); 0: by the time limit
    q_start: float | None  # the critic's Q(s_0, mu(s_0)) when the episode began
    discounted_return: float | None  # sum_t gamma^t r_t (+ gamma^T Q(s_T) at a time limit)


class ReplayStatsRow(NamedTuple):
    """A member's sampling law at one of its episode ends, a row of ``replay_stats`` (see
    :mod:`ddpglab.replay.diagnostics`)."""

    run_id: int
    env_steps: int  # the member's env steps so far, as in its EpisodeRow
    stored: int  # transitions it can be sampled from (its window, if set)
    volume: int  # transitions replayed per env step: batch size x updates per step
    expected_age: float  # E[age] of a replayed transition in env steps, 0 the newest
    entropy: float  # H(P) of the sampling law in nats


#: The ``episodes`` columns, in :class:`EpisodeRow`'s order.
EPISODE_COLUMNS = tuple(
    "return" if field == "episode_return" else field for field in EpisodeRow._fields
)

#: Columns added after the first schema: (table, column, type), added on open if missing.
ADDED_COLUMNS = (
    ("runs", "git_commit", "TEXT"),
    ("episodes", "terminated", "INTEGER"),
    ("episodes", "q_start", "REAL"),
    ("episodes", "discounted_return", "REAL"),
)


class ResultsStore:
    """A connection to ``results.sqlite`` in WAL mode (one writer, any number of readers).

    Opening creates the file and its schema if needed and adds columns that older stores
    lack (see :data:`ADDED_COLUMNS`). Each write method commits one transaction.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        try:
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(
                    f"{self.path}: cannot use WAL mode here (journal_mode stays {mode!r})"
                )
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._create_tables()
            self._migrate()
        except BaseException:
            self.conn.close()
            raise

    def _create_tables(self) -> None:
        """The schema, in one transaction; tables added since (replay_stats) join an older
        store here. A read-only older store is read as it is."""
        try:
            self.conn.executescript(SCHEMA)
        except sqlite3.OperationalError as err:
            if "readonly" not in str(err):
                raise
            self.conn.rollback()

    def _migrate(self) -> None:
        """Add the columns of :data:`ADDED_COLUMNS` a store written before them lacks."""
        if all(column in self._columns(table) for table, column, _ in ADDED_COLUMNS):
            return
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")  # recheck under the write lock
                for table, column, kind in ADDED_COLUMNS:
                    if column not in self._columns(table):
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except sqlite3.OperationalError as err:
            if "readonly" not in str(err):  # a read-only store is read as it is
                raise

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}

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
        """Register a member's run as running (or ``pending``: not started), with this
        host, the library versions and ddpglab's git commit; returns its ``run_id``."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (env_id, seed, variant, config_json, status, host, versions,"
                " git_commit, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    env_id,
                    seed,
                    variant,
                    json.dumps(config, sort_keys=True),
                    status,
                    platform.node(),
                    json.dumps(library_versions()),
                    git_commit(),
                    time.time() if status == "running" else None,
                ),
            )
            if status == "running":
                self._begin_segment(int(cur.lastrowid), 0)
        return int(cur.lastrowid)

    def _begin_segment(self, run_id: int, episode: int) -> None:
        """Inside a write transaction: the run (re)starts after ``episode`` episodes here."""
        self.conn.execute(
            "DELETE FROM segments WHERE run_id = ? AND episode >= ?", (run_id, episode)
        )
        self.conn.execute(
            "INSERT INTO segments VALUES (?, ?, ?, ?, ?)",
            (run_id, episode, time.time(), platform.node(), git_commit()),
        )

    def start_run(self, run_id: int, config: dict[str, Any]) -> None:
        """A pending run starts, with the resolved config it runs."""
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET status = 'running', config_json = ?, started_at = ?"
                " WHERE run_id = ?",
                (json.dumps(config, sort_keys=True), time.time(), run_id),
            )
            self._begin_segment(run_id, 0)

    def delete_runs(self, run_ids: Iterable[int]) -> None:
        """Remove runs and everything recorded for them, in one transaction."""
        ids = [(run_id,) for run_id in run_ids]
        with self.conn:
            for table in ("episodes", "evals", "checkpoints", "replay_stats", "segments", "runs"):
                self.conn.executemany(f"DELETE FROM {table} WHERE run_id = ?", ids)

    def study(self) -> dict[str, Any] | None:
        """The study this store belongs to (name, spec_json, spec_hash), if any."""
        return study_row(self.conn)

    def set_study(self, name: str, spec_json: str, spec_hash: str) -> None:
        """Record the study this store belongs to."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO study VALUES (1, ?, ?, ?, ?)",
                (name, spec_json, spec_hash, time.time()),
            )

    def rewind_run(self, run_id: int, episodes: int, env_steps: int) -> None:
        """A run resumes from a saved state after ``episodes`` episodes and ``env_steps``
        steps: forget what it recorded after that, and mark it running, in one transaction."""
        with self.conn:
            self.conn.execute(
                "DELETE FROM episodes WHERE run_id = ? AND episode > ?", (run_id, episodes)
            )
            for table in ("evals", "checkpoints", "replay_stats"):
                self.conn.execute(
                    f"DELETE FROM {table} WHERE run_id = ? AND env_steps > ?", (run_id, env_steps)
                )
            self.conn.execute(
                "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL"
                " WHERE run_id = ?",
                (run_id,),
            )
            self._begin_segment(run_id, episodes)

    def finish_run(self, run_id: int, status: str = "done", error: str | None = None) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE run_id = ?",
                (status, error, time.time(), run_id),
            )

    def add_episodes(
        self, rows: Iterable[EpisodeRow], replay_stats: Iterable[ReplayStatsRow] = ()
    ) -> None:
        """Insert the episodes and their members' replay stats, all in one transaction:
        after a crash, all of them or none."""
        marks = ", ".join("?" * len(EPISODE_COLUMNS))
        with self.conn:
            self.conn.executemany(
                f"INSERT INTO episodes ({', '.join(EPISODE_COLUMNS)}) VALUES ({marks})", rows
            )
            self.conn.executemany(
                "INSERT INTO replay_stats VALUES (?, ?, ?, ?, ?, ?)", replay_stats
            )

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

    def stored_episodes(self, run_id: int, up_to: int) -> int:
        """How many of the run's episodes 1 .. ``up_to`` the store holds."""
        (count,) = self.conn.execute(
            "SELECT COUNT(*) FROM episodes WHERE run_id = ? AND episode <= ?", (run_id, up_to)
        ).fetchone()
        return int(count)

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

    def replay_stats_frame(self):
        """Every replay_stats row with its run's seed and variant, as a pandas DataFrame, in
        run and env-step order (empty for a store written before the table existed)."""
        import pandas as pd

        return pd.read_sql_query(
            "SELECT r.variant, r.seed, s.* FROM replay_stats s JOIN runs r USING (run_id)"
            " ORDER BY s.run_id, s.env_steps",
            self.conn,
        )

    def episodes_frame(self):
        """All episodes joined with their run's seed and variant, as a pandas DataFrame."""
        import pandas as pd

        return pd.read_sql_query(
            "SELECT r.variant, r.seed, e.* FROM episodes e JOIN runs r USING (run_id)"
            " ORDER BY e.run_id, e.episode",
            self.conn,
        )
