"""Chunks for `SqliteCheckpointStore` (schema version 5): what makes it a `ChunkStore`.

```
stepgraph_chunks(session_id, id, data BLOB, PRIMARY KEY (session_id, id)) WITHOUT ROWID
stepgraph_chunk_refs(session_id, checkpoint_id, chunk_id,
                     PRIMARY KEY (checkpoint_id, chunk_id)) WITHOUT ROWID
index stepgraph_chunk_refs_chunk ON (session_id, chunk_id)
```

A chunk is kept once per session. The refs name, for each stored record, the
chunks that keep it alive: the ones its record names (`_record.mentioned`)
and the ones its save brought (`Checkpoint.chunks`), so no chunk is ever held
without a ref. Everything here runs inside the caller's transaction: `save`
writes the record, its chunks and its refs in one; `delete` drops the refs of
the records it deletes and then every chunk among them that no ref names any
more (found on the `(session_id, chunk_id)` index).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Generator, Iterable
from contextlib import contextmanager

from .._checkpoint import Checkpoint
from . import _record

__all__ = [
    "SCHEMA",
    "delete_session",
    "drop_refs",
    "fetch",
    "free",
    "save_chunks",
    "snapshot",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS stepgraph_chunks (
    session_id TEXT NOT NULL,
    id TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (session_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stepgraph_chunk_refs (
    session_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    PRIMARY KEY (checkpoint_id, chunk_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stepgraph_chunk_refs_chunk
    ON stepgraph_chunk_refs (session_id, chunk_id);
"""

_BATCH = 500  # ids per `IN (...)`: well under SQLite's bound on parameters

_INSERT_CHUNK = """
INSERT INTO stepgraph_chunks (session_id, id, data) VALUES (?, ?, ?)
ON CONFLICT (session_id, id) DO NOTHING
"""
_INSERT_REF = """
INSERT INTO stepgraph_chunk_refs (session_id, checkpoint_id, chunk_id) VALUES (?, ?, ?)
ON CONFLICT (checkpoint_id, chunk_id) DO NOTHING
"""
_FREE = """
DELETE FROM stepgraph_chunks WHERE session_id = ? AND id = ? AND NOT EXISTS
    (SELECT 1 FROM stepgraph_chunk_refs WHERE session_id = ? AND chunk_id = ?)
"""

Candidates = set[tuple[str, str]]
"""(session id, chunk id) pairs that may have lost their last ref."""


def save_chunks(conn: sqlite3.Connection, cp: Checkpoint) -> None:
    """Insert `cp.chunks` (keeping held ones) and make `cp`'s refs exactly what it names.

    Call after the record's insert, in its transaction. A re-saved id's old
    refs are replaced; chunks only they named are freed.
    """
    sid, cid = cp.info.session_id, cp.info.id
    names = _record.mentioned(cp) | cp.chunks.keys()
    old = conn.execute(
        "DELETE FROM stepgraph_chunk_refs WHERE checkpoint_id = ? RETURNING session_id, chunk_id",
        (cid,),
    ).fetchall()
    if cp.chunks:
        conn.executemany(_INSERT_CHUNK, [(sid, i, data) for i, data in cp.chunks.items()])
    if names:
        conn.executemany(_INSERT_REF, [(sid, cid, i) for i in names])
    if old:
        free(conn, {(str(s), str(i)) for s, i in old} - {(sid, i) for i in names})


def drop_refs(conn: sqlite3.Connection, checkpoint_ids: list[str]) -> Candidates:
    """Delete the refs of these records (at most `_BATCH`); the chunks they named."""
    marks = ",".join("?" * len(checkpoint_ids))
    rows = conn.execute(
        f"DELETE FROM stepgraph_chunk_refs WHERE checkpoint_id IN ({marks}) "
        "RETURNING session_id, chunk_id",
        checkpoint_ids,
    ).fetchall()
    return {(str(s), str(i)) for s, i in rows}


def free(conn: sqlite3.Connection, candidates: Iterable[tuple[str, str]]) -> None:
    """Delete each candidate chunk that no ref names any more."""
    conn.executemany(_FREE, [(s, i, s, i) for s, i in candidates])


def fetch(conn: sqlite3.Connection, session_id: str, ids: Collection[str]) -> dict[str, bytes]:
    """The session's chunks among `ids`, by id (one query per `_BATCH` ids)."""
    wanted = list(dict.fromkeys(ids))
    found: dict[str, bytes] = {}
    for start in range(0, len(wanted), _BATCH):
        part = wanted[start : start + _BATCH]
        marks = ",".join("?" * len(part))
        rows = conn.execute(
            f"SELECT id, data FROM stepgraph_chunks WHERE session_id = ? AND id IN ({marks})",
            (session_id, *part),
        ).fetchall()
        found.update((str(i), bytes(data)) for i, data in rows)
    return found


def delete_session(conn: sqlite3.Connection, session_id: str) -> None:
    """Delete every chunk and ref of the session (in the caller's transaction)."""
    conn.execute("DELETE FROM stepgraph_chunk_refs WHERE session_id = ?", (session_id,))
    conn.execute("DELETE FROM stepgraph_chunks WHERE session_id = ?", (session_id,))


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Generator[None]:
    """A read transaction: every query in the block sees one state of the file."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:  # it only read: ending it either way undoes nothing
            conn.execute("ROLLBACK")
