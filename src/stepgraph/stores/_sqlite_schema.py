"""The SQLite store's schema: its tables, their migrations and the checks of a file.

`migrate` creates the schema on a fresh file, upgrades an older one version by
version (each in one transaction, re-read inside it, so processes opening an
old file at once are safe) and refuses a file of another application or a
newer version. See `sqlite.py` for the tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

from .._errors import CheckpointDecodeError, CheckpointError
from . import _sqlite_chunks

__all__ = ["DAMAGED", "SCHEMA_VERSION", "first_read", "migrate", "transaction"]

SCHEMA_VERSION = 5
"""The `user_version` of a database this store created; others are refused."""
_APPLICATION_ID = 0x53474350  # "SGCP"
DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})  # the file, not the call, is wrong

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS stepgraph_checkpoints (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    parent_id TEXT,
    superstep INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    full INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS stepgraph_checkpoints_session
    ON stepgraph_checkpoints (session_id, seq);
CREATE TABLE IF NOT EXISTS stepgraph_leases (
    session_id TEXT PRIMARY KEY,
    owner TEXT,
    token INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS stepgraph_records (
    session_id TEXT NOT NULL,
    base_id TEXT NOT NULL,
    key TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (session_id, base_id, key)
);
"""
    + _sqlite_chunks.SCHEMA
)

# Upgrades by the version they start from, each in one transaction.
_MIGRATIONS = {
    # Version 1 files get the leases table (tokens start at 1 for every session).
    1: """CREATE TABLE IF NOT EXISTS leases (
        session_id TEXT PRIMARY KEY, owner TEXT, token INTEGER NOT NULL, expires_at REAL NOT NULL
    )""",
    # Version 2 files get the activation records table.
    2: """CREATE TABLE IF NOT EXISTS records (
        session_id TEXT NOT NULL, base_id TEXT NOT NULL, key TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (session_id, base_id, key)
    )""",
    # Version 3 files get the `stepgraph_` prefix, so the store shares a database
    # with other tables (an application's own `checkpoints`, say).
    3: """ALTER TABLE checkpoints RENAME TO stepgraph_checkpoints;
    DROP INDEX IF EXISTS checkpoints_session;
    CREATE INDEX IF NOT EXISTS stepgraph_checkpoints_session
        ON stepgraph_checkpoints (session_id, seq);
    ALTER TABLE leases RENAME TO stepgraph_leases;
    ALTER TABLE records RENAME TO stepgraph_records""",
    # Version 4 files get the chunk tables (`_sqlite_chunks`); their checkpoints hold none.
    4: _sqlite_chunks.SCHEMA,
}


def first_read(conn: sqlite3.Connection, sql: str, path: str) -> Any:
    """The first read of a file: one that is not SQLite at all is named as such."""
    try:
        return conn.execute(sql).fetchone()
    except sqlite3.DatabaseError as exc:
        if str(getattr(exc, "sqlite_errorname", "")) not in DAMAGED:
            raise
        raise CheckpointDecodeError(
            f"{path} is not a stepgraph database (SQLite says: {exc}); give the "
            "store a new file or one that stepgraph created"
        ) from exc


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Create the schema on a fresh file, upgrade an older one; refuse foreign or newer ones."""
    app = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if app not in (0, _APPLICATION_ID):
        raise CheckpointDecodeError(
            f"{path} is not a stepgraph database (its SQLite application_id is "
            f"{app:#x}); give the store a new file or one that stepgraph created"
        )
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == 0:
        with transaction(conn):
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                version = SCHEMA_VERSION
    while version in _MIGRATIONS:
        with transaction(conn):  # another process may have migrated meanwhile
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) == version:
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version != SCHEMA_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint schema version {version}; this stepgraph "
            f"reads version {SCHEMA_VERSION} (upgrade stepgraph or use another file)"
        )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Generator[None]:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` when the block raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a failed COMMIT (busy) leaves it open
            conn.execute("ROLLBACK")
        raise
