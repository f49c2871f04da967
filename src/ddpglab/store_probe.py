"""Looking at a file that may be a results store, without changing it: is it a ddpglab
store, is it an empty one, and which study it records.

Opening a :class:`~ddpglab.store.ResultsStore` creates the file and adds its tables, so
anything that must first decide whether a path is a store (``study`` refusing to write
into someone else's database, ``report`` refusing a folder) asks here. Re-exported by
:mod:`ddpglab.store`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def _connect_existing(path: str | Path) -> sqlite3.Connection | None:
    """A connection to an existing database file, None if there is none (never creates
    one). Read-write, since a read-only reader of a WAL store leaves its -wal and -shm
    files behind; the callers below only read."""
    try:
        return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=rw", uri=True)
    except sqlite3.OperationalError:
        return None


def read_study(path: str | Path) -> dict[str, Any] | None:
    """The study recorded in an existing store file (what ``ResultsStore.study`` gives),
    without changing the file; None if it holds no study (a ``ddpglab train`` store, say)."""
    conn = _connect_existing(path)
    if conn is None:
        return None
    try:
        return study_row(conn)
    except sqlite3.DatabaseError:  # no study table, or not a store at all
        return None
    finally:
        conn.close()


def is_results_store(path: str | Path) -> bool:
    """Whether an existing file is a ddpglab store (it has ``runs`` and ``episodes``
    tables), looked at without changing it: opening a ResultsStore would add our
    tables to someone else's database."""
    conn = _connect_existing(path)
    if conn is None:
        return False
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError:  # not a database at all
        return False
    finally:
        conn.close()
    return {"runs", "episodes"} <= tables


def is_empty_store(path: str | Path) -> bool:
    """Whether an existing file is a store that records nothing: no tables at all, or a
    ``runs`` table without rows (what a process killed while creating it leaves). False for
    any other file, an SQLite database of someone else's or not a database at all. Never
    creates the file."""
    conn = _connect_existing(path)
    if conn is None:
        return False
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if not tables:
            return True
        return "runs" in tables and conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def study_row(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The ``study`` table's row (name, spec_json, spec_hash) on ``conn``, None if empty."""
    row = conn.execute("SELECT name, spec_json, spec_hash FROM study").fetchone()
    return None if row is None else dict(zip(("name", "spec_json", "spec_hash"), row, strict=True))
