"""`SqliteCheckpointStore`: the embedded default, one SQLite file shared by any number of processes.

Settings: WAL journal, `synchronous=FULL` (the WAL is fsynced on every commit),
a busy timeout so several processes can share the file, one transaction per
save (the record's upsert, with its chunks and chunk refs). The store creates its
schema itself and refuses a file whose `user_version` it does not know.

```
stepgraph_checkpoints(seq INTEGER PRIMARY KEY,  -- rowid: save order, assigned in the write lock
            id TEXT UNIQUE, session_id, parent_id, superstep, created_at,
            full INTEGER, crc INTEGER, record BLOB)   -- record = `_record.pack(cp)`
index stepgraph_checkpoints_session ON (session_id, seq)
stepgraph_leases(session_id PRIMARY KEY, owner, token, expires_at)  -- version 2
stepgraph_records(session_id, base_id, key, data BLOB,
                  PRIMARY KEY (session_id, base_id, key))           -- version 3
stepgraph_chunks(session_id, id, data BLOB,
                 PRIMARY KEY (session_id, id)) WITHOUT ROWID        -- version 5
stepgraph_chunk_refs(session_id, checkpoint_id, chunk_id,
                     PRIMARY KEY (checkpoint_id, chunk_id)) WITHOUT ROWID
index stepgraph_chunk_refs_chunk ON (session_id, chunk_id)
```

Every table is prefixed `stepgraph_` (version 4; versions 1-3 used bare names and
are renamed on open), so the store can share a database with other tables.
Version 5 added the chunk tables: the store is a `ChunkStore` (`_sqlite_chunks`).
A save inserts the chunks its checkpoint brings (keeping held ones) and one ref
per chunk its record names, in the record's transaction (a fenced save writes
them only after its fenced insert happened); `load`/`latest` read the chain and
then the chunks the whole references with one `IN` query, in one read
transaction; `delete` drops the refs of what it deletes and frees the chunks
no remaining ref names, in its transaction; `delete_session` drops them all.

`seq` is the rowid: SQLite gives a new row `max(seq) + 1` while holding the
database's write lock, so it grows with save order across processes, and a
replaced id gets a new, highest `seq`. `load` walks delta records back to the
nearest full one in one recursive query (one snapshot, at most ~16 rows) and
checks each record's CRC-32, so a damaged blob raises `CheckpointDecodeError`
rather than loading wrong bytes. `list` reads columns only, and so does
`list_sessions` (a `SessionLister`): the heads, by a skip scan of the index. Activation
records (`RecordStore`) are rows of `stepgraph_records`: `save_record` is one upsert in
the group commit, `load_records` one query on the primary key; `delete` and
`delete_session` drop the records of what they delete in the same transaction.

Inline calls: measured on the dev machine, a save costs ~200 us inline
(almost all of it the WAL fsync) against ~300 us through a dedicated thread
(the hand-off and the wake-up after a blocking fsync add ~50-120 us); the
target is 400 us, so every call runs inline on the event loop's thread. The
price: the loop is blocked during the fsync, and for up to `busy_timeout`
while another process holds the write lock. The connection is opened on first
use, never at construction. Every `sqlite3.Error` becomes a `CheckpointError`
(`CheckpointDecodeError` for a file that is not a usable database).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

from .._checkpoint import Checkpoint, CheckpointInfo
from .._errors import CheckpointDecodeError, CheckpointError, CheckpointNotFoundError
from .._lease import Lease, LeaseLostError, LeaseStore
from .._store import SessionLister, not_listed
from . import _record, _sqlite_chunks
from ._sqlite_leases import SqliteLeases
from ._sqlite_schema import DAMAGED, SCHEMA_VERSION, first_read, migrate, transaction

__all__ = ["SCHEMA_VERSION", "SqliteCheckpointStore"]

_T = TypeVar("_T")
# Pages of a new database file. Records are a few hundred bytes (deltas) and chunks a
# few KiB, and each of the store's ten b-trees takes at least a page: 1 KiB pages keep
# a short session's file small (W4: ~1.15 KiB per superstep with 4 KiB pages) and each
# commit's WAL frames few bytes. An existing file keeps the page size it was made with.
PAGE_SIZE = 1024
# A fenced save: the row is inserted only while `lease` is the session's current one.
_FENCED_SAVE = """
INSERT INTO stepgraph_checkpoints
    (id, session_id, parent_id, superstep, created_at, full, crc, record)
SELECT ?, ?, ?, ?, ?, ?, ?, ?
WHERE EXISTS (SELECT 1 FROM stepgraph_leases WHERE session_id = ? AND token = ? AND owner = ?)
ON CONFLICT (id) DO UPDATE SET
    session_id = excluded.session_id, parent_id = excluded.parent_id,
    superstep = excluded.superstep, created_at = excluded.created_at,
    full = excluded.full, crc = excluded.crc, record = excluded.record
"""


# An upsert keeps a re-saved id at its place in the save order (its rowid): prune
# re-saves kept deltas whole, and the head must stay the newest checkpoint.
_SAVE = """
INSERT INTO stepgraph_checkpoints
    (id, session_id, parent_id, superstep, created_at, full, crc, record)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    session_id = excluded.session_id, parent_id = excluded.parent_id,
    superstep = excluded.superstep, created_at = excluded.created_at,
    full = excluded.full, crc = excluded.crc, record = excluded.record
"""

# The chain from one checkpoint back to the nearest full one, newest first.
_CHAIN = """
WITH RECURSIVE chain(id, parent_id, full, crc, record, n) AS (
    SELECT id, parent_id, full, crc, record, 0 FROM stepgraph_checkpoints WHERE {anchor}
    UNION ALL
    SELECT c.id, c.parent_id, c.full, c.crc, c.record, chain.n + 1
    FROM stepgraph_checkpoints AS c JOIN chain ON c.id = chain.parent_id
    WHERE chain.full = 0 AND chain.n < 10000
)
SELECT id, parent_id, full, crc, record FROM chain ORDER BY n
"""
_LOAD = _CHAIN.format(anchor="id = ?")
_LATEST = _CHAIN.format(
    anchor="seq = (SELECT max(seq) FROM stepgraph_checkpoints WHERE session_id = ?)"
)

_LIST = """
SELECT id, parent_id, session_id, superstep, created_at FROM stepgraph_checkpoints
WHERE session_id = ? ORDER BY seq DESC LIMIT ?
"""

# The head of each session, newest first: the distinct session ids by a skip scan of
# the (session_id, seq) index, each one's max(seq), then the page's rows by rowid.
# O(sessions x log checkpoints); a GROUP BY would read every index entry.
_SESSIONS = """
WITH RECURSIVE ids(sid) AS (
    SELECT min(session_id) FROM stepgraph_checkpoints
    UNION ALL
    SELECT (SELECT min(session_id) FROM stepgraph_checkpoints WHERE session_id > ids.sid)
    FROM ids WHERE ids.sid IS NOT NULL
), heads(seq) AS (
    SELECT (SELECT max(seq) FROM stepgraph_checkpoints WHERE session_id = ids.sid)
    FROM ids WHERE ids.sid IS NOT NULL
), page(seq) AS (
    SELECT seq FROM heads
    WHERE ?1 IS NULL OR seq < (SELECT max(seq) FROM stepgraph_checkpoints WHERE session_id = ?1)
    ORDER BY seq DESC LIMIT ?2
)
SELECT c.id, c.parent_id, c.session_id, c.superstep, c.created_at
FROM page JOIN stepgraph_checkpoints AS c ON c.seq = page.seq ORDER BY page.seq DESC
"""

_SAVE_RECORD = """
INSERT INTO stepgraph_records (session_id, base_id, key, data) VALUES (?, ?, ?, ?)
ON CONFLICT (session_id, base_id, key) DO UPDATE SET data = excluded.data
"""
# The records kept under checkpoints about to be deleted (run before deleting them).
_DELETE_RECORDS_UNDER = """
DELETE FROM stepgraph_records WHERE (session_id, base_id) IN
    (SELECT session_id, id FROM stepgraph_checkpoints WHERE id IN ({marks}))
"""


class SqliteCheckpointStore(SqliteLeases, LeaseStore, SessionLister):
    """Checkpoints in one SQLite database file (see the module docstring).

    Args:
        path: the database file; created, with its schema, on first use.
        busy_timeout: seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self._path: str = os.fspath(path)
        self._busy_ms = int(busy_timeout * 1000)
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._batch: list[_Pending] | None = None

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    async def save(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        """Insert `checkpoint` durably (fsynced) before returning, replacing a same id.

        Group commit: saves that other sessions make while this one waits one
        turn of the event loop are committed in the same transaction, so many
        concurrent sessions share one fsync. With `lease`, the save is fenced:
        `LeaseLostError` unless the lease is still the session's current one.
        """
        info = checkpoint.info
        record = _record.pack(checkpoint)
        row = (
            info.id,
            info.session_id,
            info.parent_id,
            info.superstep,
            info.created_at.isoformat(),
            int(checkpoint.is_full),
            zlib.crc32(record),
            record,
        )

        def write(conn: sqlite3.Connection) -> None:
            if lease is None:
                conn.execute(_SAVE, row)
                _sqlite_chunks.save_chunks(conn, checkpoint)
                return
            fence = (lease.session_id, lease.token, lease.owner)
            if conn.execute(_FENCED_SAVE, (*row, *fence)).rowcount == 0:
                raise LeaseLostError(  # before any other write: nothing of it commits
                    f"checkpoint {info.id!r} was not saved: session {lease.session_id!r} no "
                    f"longer holds lease token {lease.token}"
                )
            _sqlite_chunks.save_chunks(conn, checkpoint)

        await self._write(f"save checkpoint {info.id!r}", write)

    async def _write(self, doing: str, op: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run a write in the next group commit: one transaction (one fsync) for all the
        writes that sessions make while the first of them waits one turn of the loop.
        """
        item = _Pending(op)
        batch = self._batch
        if batch is not None:  # a leader is collecting: ride on its commit
            item.done = asyncio.get_running_loop().create_future()
            batch.append(item)
            await item.done
        else:
            self._batch = batch = [item]
            try:
                await asyncio.sleep(0)  # let concurrent writes join this commit
            finally:
                self._batch = None
                self._commit(doing, batch)  # synchronous: a cancelled leader still commits
        if item.error is not None:
            raise item.error
        return item.result

    def _commit(self, doing: str, batch: list[_Pending]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                for item in batch:
                    try:
                        item.result = item.op(conn)
                    except LeaseLostError as exc:  # refused alone; the others commit
                        item.error = exc

        what = doing if len(batch) == 1 else f"{doing} (with {len(batch) - 1} more writes)"
        try:
            self._run(what, write)
        except CheckpointError as exc:
            for item in batch:
                item.error = exc
        for item in batch:
            if item.done is not None and not item.done.done():
                item.done.set_result(None)

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The whole checkpoint; raises `CheckpointNotFoundError` for an unknown id."""
        cp = self._run(
            f"load checkpoint {checkpoint_id!r}", lambda c: self._read(c, _LOAD, checkpoint_id)
        )
        if cp is None:
            raise CheckpointNotFoundError(f"no checkpoint {checkpoint_id!r} in {self._path}")
        return cp

    async def list(self, session_id: str, limit: int | None = None) -> list[CheckpointInfo]:
        """The session's checkpoints, newest first by save order, at most `limit`."""
        n = -1 if limit is None else max(limit, 0)
        doing = f"list session {session_id!r}"
        rows = self._run(doing, lambda c: c.execute(_LIST, (session_id, n)).fetchall())
        return self._infos(rows, f"for session {session_id!r}")

    async def list_sessions(
        self, *, limit: int | None = None, before: str | None = None
    ) -> list[CheckpointInfo]:
        """The head of each session, newest first by save order (see `SessionLister`).

        One query on the `(session_id, seq)` index (see `_SESSIONS`), reading the
        columns of the page's heads only; with `before` unknown, one more to tell
        "no older session" from "no such session" (`CheckpointNotFoundError`).
        """
        n = -1 if limit is None else max(limit, 0)

        def page(c: sqlite3.Connection) -> tuple[list[Any], bool]:
            with _sqlite_chunks.snapshot(c):
                rows = c.execute(_SESSIONS, (before, n)).fetchall()
                known = bool(rows) or before is None or _has_session(c, before)
            return rows, known

        rows, known = self._run("list sessions", page)
        if not known:
            raise CheckpointNotFoundError(not_listed(str(before), self._path))
        return self._infos(rows, "listing sessions")

    def _infos(self, rows: list[Any], where: str) -> list[CheckpointInfo]:
        try:
            return [
                CheckpointInfo(cid, parent, sid, superstep, datetime.fromisoformat(at))
                for cid, parent, sid, superstep, at in rows
            ]
        except (TypeError, ValueError) as exc:
            raise CheckpointDecodeError(f"malformed row in {self._path} {where}: {exc}") from None

    async def latest(self, session_id: str) -> Checkpoint | None:
        """The session's most recently saved checkpoint, or None."""
        return self._run(
            f"read session {session_id!r}", lambda c: self._read(c, _LATEST, session_id)
        )

    def _read(self, conn: sqlite3.Connection, query: str, key: str) -> Checkpoint | None:
        """The whole checkpoint `query` anchors at, with its chunks, read in one snapshot."""
        with _sqlite_chunks.snapshot(conn):
            rows = conn.execute(query, (key,)).fetchall()
            if not rows:
                return None
            cp = self._resolve(rows)
            ids = cp.chunk_ids()
            found = _sqlite_chunks.fetch(conn, cp.info.session_id, ids) if ids else {}
        return _record.attach(cp, found)

    async def load_chunks(self, session_id: str, ids: Collection[str]) -> dict[str, bytes]:
        """The session's chunks among `ids`, by id (unknown ids are left out)."""
        return self._run(
            f"load chunks of session {session_id!r}",
            lambda c: _sqlite_chunks.fetch(c, session_id, ids),
        )

    async def delete(self, checkpoint_ids: Sequence[str]) -> None:
        """Delete checkpoints by id, with their records and the chunks only they named.

        One transaction; unknown ids are ignored.
        """
        ids = list(dict.fromkeys(checkpoint_ids))

        def delete(c: sqlite3.Connection) -> None:
            with transaction(c):
                freed: set[tuple[str, str]] = set()
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    marks = ",".join("?" * len(chunk))
                    c.execute(_DELETE_RECORDS_UNDER.format(marks=marks), chunk)
                    freed |= _sqlite_chunks.drop_refs(c, chunk)
                    c.execute(f"DELETE FROM stepgraph_checkpoints WHERE id IN ({marks})", chunk)
                _sqlite_chunks.free(c, freed)  # the chunks no remaining record names

        if ids:
            self._run("delete checkpoints", delete)

    async def delete_session(self, session_id: str) -> None:
        """Delete every checkpoint, record and chunk of the session, in one transaction."""

        def delete(c: sqlite3.Connection) -> None:
            with transaction(c):
                c.execute("DELETE FROM stepgraph_records WHERE session_id = ?", (session_id,))
                _sqlite_chunks.delete_session(c, session_id)
                c.execute("DELETE FROM stepgraph_checkpoints WHERE session_id = ?", (session_id,))

        self._run(f"delete session {session_id!r}", delete)

    async def save_record(self, session_id: str, base_id: str, key: str, data: bytes) -> None:
        """Upsert one activation record, committed (fsynced) before returning.

        Rides the group commit like `save`: records that concurrent activations
        finish in the same turn of the event loop share one transaction.
        """
        row = (session_id, base_id, key, bytes(data))
        await self._write(
            f"save record {key!r} of session {session_id!r}",
            lambda c: c.execute(_SAVE_RECORD, row),
        )

    async def load_records(self, session_id: str, base_id: str) -> dict[str, bytes]:
        """The session's records under checkpoint `base_id`, by key (one query)."""
        rows = self._run(
            f"load the records of session {session_id!r}",
            lambda c: c.execute(
                "SELECT key, data FROM stepgraph_records WHERE session_id = ? AND base_id = ?",
                (session_id, base_id),
            ).fetchall(),
        )
        return {str(key): bytes(data) for key, data in rows}

    async def delete_records(self, session_id: str, base_id: str | None = None) -> None:
        """Delete the session's records under `base_id`, or all of them when None."""
        query, args = "DELETE FROM stepgraph_records WHERE session_id = ?", (session_id,)
        if base_id is not None:
            query, args = f"{query} AND base_id = ?", (session_id, base_id)
        await self._write(
            f"delete the records of session {session_id!r}", lambda c: c.execute(query, args)
        )

    async def aclose(self) -> None:
        """Close the connection; the store refuses use afterwards."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise CheckpointError(f"could not close {self._path}: {exc}") from exc

    async def __aenter__(self) -> SqliteCheckpointStore:
        if self._closed:
            raise CheckpointError(f"this SqliteCheckpointStore ({self._path}) is closed")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing ---------------------------------------------------------------------

    def _run(self, doing: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise CheckpointError(f"this SqliteCheckpointStore ({self._path}) is closed")
        try:
            return fn(self._conn or self._connect())
        except sqlite3.Error as exc:
            name = str(getattr(exc, "sqlite_errorname", ""))
            cls = CheckpointDecodeError if name in DAMAGED else CheckpointError
            raise cls(f"could not {doing} in {self._path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        # Several processes opening a new file at once race to switch it to WAL and
        # create the schema; SQLite does not always apply the busy timeout there,
        # so retry "database is locked" for up to the busy timeout.
        deadline = time.monotonic() + self._busy_ms / 1000
        delay = 0.005
        while True:
            try:
                return self._open()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # a new file only: see PAGE_SIZE
            mode = str(first_read(conn, "PRAGMA journal_mode = WAL", self._path)[0])
            if mode.lower() != "wal":
                raise CheckpointError(f"{self._path}: cannot use WAL (journal mode {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn, self._path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _resolve(self, rows: list[Any]) -> Checkpoint:
        chain: list[Checkpoint] = []
        for cid, _parent, _full, crc, record in rows:
            if zlib.crc32(record) != crc:
                raise CheckpointDecodeError(
                    f"checkpoint {cid!r} in {self._path} is damaged (checksum mismatch)"
                )
            try:
                chain.append(_record.unpack(record))
            except CheckpointDecodeError as exc:
                raise CheckpointDecodeError(f"checkpoint {cid!r} in {self._path}: {exc}") from None
        if not chain[-1].is_full:
            missing = chain[-1].info.parent_id
            raise CheckpointDecodeError(
                f"checkpoint {chain[-1].info.id!r} is a delta of {missing!r}, which is missing "
                f"from {self._path}"
            )
        return _record.resolve(chain)


def _has_session(conn: sqlite3.Connection, session_id: str) -> bool:
    query = "SELECT 1 FROM stepgraph_checkpoints WHERE session_id = ? LIMIT 1"
    return conn.execute(query, (session_id,)).fetchone() is not None


class _Pending:
    """One write waiting for a group commit."""

    __slots__ = ("done", "error", "op", "result")

    def __init__(self, op: Callable[[sqlite3.Connection], Any]) -> None:
        self.op = op
        self.result: Any = None
        self.done: asyncio.Future[None] | None = None
        self.error: CheckpointError | None = None
