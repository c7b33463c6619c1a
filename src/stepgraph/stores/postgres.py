"""`PostgresCheckpointStore`: checkpoints and session leases in PostgreSQL (extra `postgres`).

Any number of processes and hosts share one database; leases with fencing
tokens (`stepgraph._lease`) decide who runs, and writes to, a session. The store
creates and migrates its tables itself on first use, in one schema (`public`
unless `schema=` says otherwise), under an advisory lock so that processes
starting together do not race:

```
stepgraph_schema(version PRIMARY KEY, applied_at)  -- one row per applied migration
stepgraph_checkpoints(id TEXT PRIMARY KEY, seq BIGSERIAL, session_id, parent_id,
                      superstep, created_at TEXT, is_full, crc, record BYTEA)
    index (session_id, seq)                         -- history and head of a session
stepgraph_leases(session_id PRIMARY KEY, owner, token, expires_at)
stepgraph_records(session_id, base_id, key, data BYTEA,            -- version 2
                  PRIMARY KEY (session_id, base_id, key))
stepgraph_chunks(session_id, id, data BYTEA, PRIMARY KEY (session_id, id))  -- version 3
stepgraph_chunk_refs(session_id, checkpoint_id, chunk_id,
                     PRIMARY KEY (checkpoint_id, chunk_id))
    index (session_id, chunk_id)
```

`record` is `_record.pack(cp)` as in the SQLite store (a delta holds only its
changed parts); `load` and `latest` rebuild the whole with ONE recursive query
and check each record's CRC-32; `list` reads columns only, and so does
`list_sessions` (a `SessionLister`): the heads, by a skip scan of the index. A save first locks
its session (an advisory lock; a fenced save: the lease row), so a session's
`seq` order is its commit order; a re-saved id keeps its `seq` (its place).
Activation records (`RecordStore`): `save_record` is one upsert, `load_records`
one query on the primary key, and `delete`/`delete_session` drop the records
of what they delete in the same statement. It is a `ChunkStore`
(`_postgres_chunks`): a save writes the chunks its checkpoint brings and the
refs its record names in its one statement (a fenced save: only when the
fenced insert happened); `load`/`latest` then read the chunks the whole
references with one more query; `delete` frees, in its statement, the chunks
no remaining record names, and `delete_session` all of them. The SQL lives
in `_postgres_sql` and `_postgres_chunks`, the lease methods in `_postgres_leases`.
Lease expiry is judged by the server's clock, never the clients'. A lease whose
owner (`host:pid:...`) is a process of this host that no longer exists is taken
over at once, as in the SQLite store; a holder on another host blocks for its ttl.

Connections come from a `psycopg_pool.AsyncConnectionPool` (autocommit), made
on first use, and are held only for a call's statements: a waiting `acquire`
waits on one extra connection per store that LISTENs for releases
(`_pg_wakeups`), so waiters never starve the holders of the pool. A
connection that dropped while idle (a server restart, a proxy timeout during
a long model call) is replaced: the failed call sweeps the pool
with `check()` and is retried once; every call is idempotent, so that is safe.
Every `psycopg.Error` becomes a `CheckpointError`. Medians on the dev machine:
the store adds ~150 us to a save's commit (whose WAL fsync costs 0.4-2.5 ms
there); a load of a delta chain ~260 us; `latest` ~130 us; `list` ~110 us.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from .._checkpoint import Checkpoint, CheckpointInfo
from .._errors import (
    CheckpointDecodeError,
    CheckpointError,
    CheckpointNotFoundError,
)
from .._lease import Lease, LeaseLostError, LeaseStore
from .._store import SessionLister, not_listed
from . import _postgres_chunks, _record
from ._pg_wakeups import Wakeups
from ._postgres_leases import PostgresLeases, fence
from ._postgres_sql import CHANNEL as CHANNEL  # where it has always been importable from
from ._postgres_sql import MIGRATIONS, STATEMENTS, in_schema

__all__ = ["SCHEMA_VERSION", "PostgresCheckpointStore"]

_T = TypeVar("_T")
_Conn = AsyncConnection[TupleRow]
SCHEMA_VERSION = 3
"""The newest schema version this store creates; a database with a newer one is refused."""


class PostgresCheckpointStore(PostgresLeases, LeaseStore, SessionLister):
    """Checkpoints and session leases in PostgreSQL (see the module docstring).

    Args:
        dsn: a libpq connection string or URL.
        min_size: connections the pool keeps open.
        max_size: connections the pool opens at most.
        pool_kwargs: more `psycopg_pool.AsyncConnectionPool` settings (`timeout`,
            `max_idle`, `max_lifetime`, `check`, `kwargs` for the connections, ...).
        schema: the schema holding the tables; created if missing.
        clock: monotonic seconds, for the deadline of `acquire(wait=...)`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        pool_kwargs: dict[str, Any] | None = None,
        schema: str = "public",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dsn = dsn
        self._min_size, self._max_size = min_size, max_size
        self._pool_kwargs = dict(pool_kwargs or {})
        self._schema = schema
        self._sql: dict[str, LiteralString] = {
            name: in_schema(text, schema) for name, text in STATEMENTS.items()
        }
        self._clock = clock
        self._pool: AsyncConnectionPool[_Conn] | None = None
        self._closed = False
        self._opening = asyncio.Lock()  # binds to a loop only when contended
        self._wakeups = Wakeups(self._listener, CHANNEL)
        self._where = f"PostgreSQL {_describe(dsn)} (schema {schema!r})"

    @property
    def dsn(self) -> str:
        """The libpq connection string or URL the store connects with (without `schema`)."""
        return self._dsn

    @property
    def schema(self) -> str:
        """The schema holding the store's tables."""
        return self._schema

    @property
    def pool_settings(self) -> dict[str, Any]:
        """`min_size`, `max_size` and the other `pool_kwargs` the pool is made with (a copy)."""
        return {"min_size": self._min_size, "max_size": self._max_size, **self._pool_kwargs}

    def pool_stats(self) -> dict[str, int]:
        """The pool's counters (`pool_size`, `pool_available`, ...); empty before first use."""
        return {} if self._pool is None else self._pool.get_stats()

    async def save(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        """Insert `checkpoint` in one committed transaction, replacing a same id.

        With `lease`, only while it is the session's current lease, checked in the
        same transaction; else `LeaseLostError` and nothing is written.
        """
        info = checkpoint.info
        record = _record.pack(checkpoint)
        params: dict[str, Any] = {
            "id": info.id, "sid": info.session_id, "parent": info.parent_id,
            "superstep": info.superstep, "at": info.created_at.isoformat(),
            "full": checkpoint.is_full, "crc": zlib.crc32(record), "record": record,
            **_postgres_chunks.chunk_params(checkpoint),
        }  # fmt: skip
        doing = f"save checkpoint {info.id!r}"
        if lease is None:
            await self._rows(doing, self._sql["save"], params)
            return
        if lease.session_id != info.session_id:
            raise LeaseLostError(
                f"checkpoint {info.id!r} belongs to session {info.session_id!r}, but the "
                f"lease given is for session {lease.session_id!r}; it was not saved"
            )
        params.update(fence(lease))
        if not await self._rows(doing, self._sql["fenced_save"], params):
            raise LeaseLostError(
                f"checkpoint {info.id!r} was not saved: lease token {lease.token} of "
                f"{lease.owner!r} is no longer the current lease of session "
                f"{info.session_id!r} in {self._where}"
            )

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The whole checkpoint; raises `CheckpointNotFoundError` for an unknown id."""
        cp = await self._read(f"load checkpoint {checkpoint_id!r}", "load", checkpoint_id)
        if cp is None:
            raise CheckpointNotFoundError(f"no checkpoint {checkpoint_id!r} in {self._where}")
        return cp

    async def list(self, session_id: str, limit: int | None = None) -> list[CheckpointInfo]:
        """The session's checkpoints, newest first by save order, at most `limit`."""
        n = None if limit is None else max(limit, 0)
        rows = await self._rows(f"list session {session_id!r}", self._sql["list"], (session_id, n))
        return self._infos(rows, f"for session {session_id!r}")

    async def list_sessions(
        self, *, limit: int | None = None, before: str | None = None
    ) -> list[CheckpointInfo]:
        """The head of each session, newest first by save order (see `SessionLister`).

        One query of index seeks (`_postgres_sql`), reading the page's heads' columns
        only; when a page after `before` is empty, one more to tell "no older session"
        from "no such session" (`CheckpointNotFoundError`).
        """
        params = {"before": before, "limit": None if limit is None else max(limit, 0)}
        rows = await self._rows("list sessions", self._sql["list_sessions"], params)
        has = self._sql["has_session"]
        if (
            not rows
            and before is not None
            and not await self._rows("list sessions", has, (before,))
        ):
            raise CheckpointNotFoundError(not_listed(before, self._where))
        return self._infos(rows, "listing sessions")

    def _infos(self, rows: list[TupleRow], where: str) -> list[CheckpointInfo]:
        try:
            return [CheckpointInfo(*r[:4], created_at=datetime.fromisoformat(r[4])) for r in rows]
        except (TypeError, ValueError) as exc:
            raise CheckpointDecodeError(f"malformed row in {self._where} {where}: {exc}") from None

    async def latest(self, session_id: str) -> Checkpoint | None:
        """The session's most recently saved checkpoint, or None."""
        return await self._read(f"read session {session_id!r}", "latest", session_id)

    async def load_chunks(self, session_id: str, ids: Collection[str]) -> dict[str, bytes]:
        """The session's chunks among `ids`, by id (unknown ids are left out; one query)."""
        query = self._sql["load_chunks"]
        return await self._run(
            f"load chunks of session {session_id!r}",
            lambda conn: _postgres_chunks.fetch(conn, query, session_id, ids),
        )

    async def _read(self, doing: str, query: str, key: str) -> Checkpoint | None:
        """The whole checkpoint the chain query `query` anchors at `key`, with its chunks."""
        chain: tuple[LiteralString, str] = (self._sql[query], key)
        chunks = self._sql["load_chunks"]
        return await self._run(
            doing, lambda conn: _postgres_chunks.read(conn, chain, chunks, self._resolve)
        )

    async def delete(self, checkpoint_ids: Sequence[str]) -> None:
        """Delete checkpoints by id, with their records and the chunks only they named.

        One statement; unknown ids are ignored.
        """
        ids = list(dict.fromkeys(checkpoint_ids))
        self._check_open()
        if ids:
            await self._rows("delete checkpoints", self._sql["delete"], {"ids": ids})

    async def delete_session(self, session_id: str) -> None:
        """Delete every checkpoint, record and chunk of the session (its lease row stays)."""
        doing = f"delete session {session_id!r}"
        await self._rows(doing, self._sql["delete_session"], {"sid": session_id})

    async def save_record(self, session_id: str, base_id: str, key: str, data: bytes) -> None:
        """Upsert one activation record in its own committed transaction."""
        doing = f"save record {key!r} of session {session_id!r}"
        await self._rows(doing, self._sql["save_record"], (session_id, base_id, key, data))

    async def load_records(self, session_id: str, base_id: str) -> dict[str, bytes]:
        """The session's records under checkpoint `base_id`, by key (one query)."""
        doing = f"load the records of session {session_id!r}"
        query = self._sql["load_records"]
        rows = await self._rows(doing, query, (session_id, base_id), binary=True)
        return {str(key): bytes(data) for key, data in rows}

    async def delete_records(self, session_id: str, base_id: str | None = None) -> None:
        """Delete the session's records under `base_id`, or all of them when None."""
        doing = f"delete the records of session {session_id!r}"
        await self._rows(doing, self._sql["delete_records"], {"sid": session_id, "base": base_id})

    async def aclose(self) -> None:
        """Close the pool; the store refuses use afterwards. Closing twice is fine."""
        self._closed = True
        pool, self._pool = self._pool, None
        try:
            await self._wakeups.close()
        finally:
            if pool is not None:
                await pool.close()

    async def __aenter__(self) -> PostgresCheckpointStore:
        self._check_open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise CheckpointError(f"this PostgresCheckpointStore ({self._where}) is closed")

    async def _rows(
        self, doing: str, query: LiteralString, params: Any, *, binary: bool = False
    ) -> list[TupleRow]:
        """Run one statement; its rows, if it returns any."""

        async def fetch(conn: _Conn) -> list[TupleRow]:
            cur = await conn.execute(query, params, binary=binary)
            return await cur.fetchall() if cur.description is not None else []

        return await self._run(doing, fetch)

    async def _guarded(self, doing: str, work: Awaitable[_T]) -> _T:
        """`await work`, its `psycopg.Error` as a `CheckpointError`."""
        try:
            return await work
        except psycopg.Error as exc:
            raise CheckpointError(f"could not {doing} in {self._where}: {exc}") from exc

    async def _listener(self) -> psycopg.AsyncConnection[Any]:
        """A new autocommit connection outside the pool, for `_pg_wakeups`."""
        given: dict[str, Any] = dict(self._pool_kwargs.get("kwargs", {}))
        given["autocommit"] = True
        connect: Any = psycopg.AsyncConnection.connect
        conn: psycopg.AsyncConnection[Any] = await connect(self._dsn, **given)
        return conn

    async def _run(self, doing: str, fn: Callable[[_Conn], Awaitable[_T]]) -> _T:
        """Call `fn` with a pooled connection; retry once on a fresh one if it had dropped."""
        for attempt in (1, 2):
            pool = self._pool if self._pool is not None else await self._open(doing)
            try:
                async with pool.connection() as conn:
                    try:
                        return await fn(conn)
                    except psycopg.OperationalError:
                        if attempt == 2 or not (conn.broken or conn.closed):
                            raise
                await pool.check()  # replace every other connection that died with this one
            except psycopg.Error as exc:
                raise CheckpointError(f"could not {doing} in {self._where}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _open(self, doing: str) -> AsyncConnectionPool[_Conn]:
        """The pool, created and the schema migrated on first use."""
        self._check_open()
        async with self._opening:
            if self._pool is not None:
                return self._pool
            kwargs = dict(self._pool_kwargs)
            conn_kwargs: dict[str, Any] = {**kwargs.pop("kwargs", {}), "autocommit": True}
            kwargs.setdefault("name", f"stepgraph-{self._schema}")
            pool = AsyncConnectionPool(
                self._dsn, kwargs=conn_kwargs, min_size=self._min_size,
                max_size=self._max_size, open=False, **kwargs,
            )  # fmt: skip
            try:
                await pool.open(wait=True, timeout=float(kwargs.get("timeout", 30.0)))
                async with pool.connection() as conn:
                    await self._migrate(conn)
                self._check_open()  # aclose() may have run meanwhile
            except BaseException as exc:
                await pool.close()
                if isinstance(exc, psycopg.Error):
                    raise CheckpointError(f"could not {doing} in {self._where}: {exc}") from exc
                raise
            self._pool = pool
            return pool

    async def _migrate(self, conn: _Conn) -> None:
        """Create the schema on a fresh database; refuse a newer one."""
        async with conn.transaction():
            lock = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
            await conn.execute(lock, (f"stepgraph.migrate.{self._schema}",))
            cur = await conn.execute(self._sql["exists"], (self._schema,) * 2)
            schema, table = (await cur.fetchall())[0]  # so a user without CREATE can run
            if not schema:
                await conn.execute(self._sql["create_schema"])
            if not table:
                await conn.execute(self._sql["versions"])
            row = await (await conn.execute(self._sql["version"])).fetchone()
            version = int(row[0]) if row is not None else 0
            if version > SCHEMA_VERSION:
                raise CheckpointError(
                    f"{self._where} has checkpoint schema version {version}; this stepgraph "
                    f"reads version {SCHEMA_VERSION} (upgrade stepgraph or use another schema)"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                await conn.execute(in_schema(MIGRATIONS[number - 1], self._schema))
                await conn.execute(self._sql["applied"], (number,))

    def _resolve(self, rows: list[TupleRow]) -> Checkpoint:
        chain: list[Checkpoint] = []
        for cid, _full, crc, record in rows:
            if zlib.crc32(record) != crc:
                raise CheckpointDecodeError(
                    f"checkpoint {cid!r} in {self._where} is damaged (checksum mismatch)"
                )
            try:
                chain.append(_record.unpack(bytes(record)))
            except CheckpointDecodeError as exc:
                raise CheckpointDecodeError(f"checkpoint {cid!r} in {self._where}: {exc}") from None
        if not chain[-1].is_full:
            missing = chain[-1].info.parent_id
            raise CheckpointDecodeError(
                f"checkpoint {chain[-1].info.id!r} is a delta of {missing!r}, which is missing "
                f"from {self._where}"
            )
        return _record.resolve(chain)


def _describe(dsn: str) -> str:
    """Host, port and database of `dsn`, never its password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(unparsable DSN)"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"
