"""The queue's SQLite file (workspace/ftui.db): its two tables, their migrations, connections.

    with connect(path) as db: ...        # reads; rows are sqlite3.Row
    with transaction(path) as db: ...    # BEGIN IMMEDIATE: holds the write lock from the start

`runs` indexes the run folders and the queue (ftui.runs.jobs), with the Ray job id of a run
placed on a Ray cluster (ftui.runs.ray_queue); `leases` holds the GPU leases
of web-process work (ftui.runs.device_lease). Both are created on first use, and a column
added since an older ftui.db was written is added with ALTER TABLE ... ADD COLUMN, its rows
getting the column's default. WAL mode lets readers go on while one process writes; SQLite's
write lock orders every claim of a GPU, whichever process makes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATABASE = "ftui.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    device TEXT NOT NULL,
    model TEXT NOT NULL,
    method TEXT NOT NULL,
    dataset TEXT NOT NULL,
    created REAL NOT NULL,
    queued REAL NOT NULL,
    resume INTEGER NOT NULL DEFAULT 0,
    cwd TEXT NOT NULL,
    started REAL,
    finished REAL,
    steps INTEGER,
    train_loss REAL,
    eval_loss REAL,
    tokens REAL,
    error TEXT,
    server_token INTEGER NOT NULL DEFAULT 0,
    gpus_wanted INTEGER,
    gpus TEXT,
    ray_job TEXT
);
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    holder TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start_time REAL NOT NULL,
    acquired REAL NOT NULL,
    expires REAL NOT NULL,
    gpu TEXT
);
"""
# Columns newer than the first ftui.db, with what older rows get: no server token (the safe
# side); GPUs wanted unknown (read from the run's config.yaml); no GPU recorded; no Ray job.
ADDED_COLUMNS = {
    "runs": {
        "server_token": "INTEGER NOT NULL DEFAULT 0",
        "gpus_wanted": "INTEGER",
        "gpus": "TEXT",
        "ray_job": "TEXT",
    },
    "leases": {"gpu": "TEXT"},
}


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode (isolation_level=None), tables in place."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        db.execute("PRAGMA journal_mode=WAL")
        _ensure_tables(db)
        yield db
    finally:
        db.close()


@contextmanager
def transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """A write transaction that holds SQLite's lock from the start (BEGIN IMMEDIATE); rolled
    back when the block raises."""
    with connect(path) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _ensure_tables(db: sqlite3.Connection) -> None:
    """Create missing tables; add missing columns under the write lock (racing openers of an
    old file: the first adds them, the others find them there)."""
    db.executescript(SCHEMA)
    if not _missing_columns(db):
        return  # the usual case: a read, no write lock
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, name, definition in _missing_columns(db):
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _missing_columns(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
    missing = []
    for table, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        missing += [(table, name, kind) for name, kind in columns.items() if name not in present]
    return missing
