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
```

`record` is `_record.pack(cp)` as in the SQLite store (a delta holds only its
changed parts); `load` and `latest` rebuild the whole with ONE recursive query
and check each record's CRC-32; `list` reads columns only. A save first locks
its session (an advisory lock; a fenced save: the lease row), so a session's
`seq` order is its commit order; a re-saved id keeps its `seq` (its place).
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
import hashlib
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Final, LiteralString, TypeVar, cast

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from .._checkpoint import Checkpoint, CheckpointInfo
from .._errors import (
    CheckpointDecodeError,
    CheckpointError,
    CheckpointNotFoundError,
    ConcurrentRunError,
)
from .._lease import (
    Lease,
    LeaseLostError,
    LeaseStore,
    check_ttl,
    held_message,
    owner_is_gone,
    pause,
)
from . import _record
from ._pg_wakeups import Wakeups

__all__ = ["SCHEMA_VERSION", "PostgresCheckpointStore"]

_T = TypeVar("_T")
_Conn = AsyncConnection[TupleRow]
SCHEMA_VERSION = 1
"""The newest schema version this store creates; a database with a newer one is refused."""
CHANNEL: Final = "stepgraph_lease"
"""The LISTEN/NOTIFY channel on which a released lease wakes waiting `acquire` calls."""

_MIGRATIONS: tuple[LiteralString, ...] = (
    """CREATE TABLE {s}.stepgraph_checkpoints (id text PRIMARY KEY, seq bigserial NOT NULL,
        session_id text NOT NULL, parent_id text, superstep bigint NOT NULL,
        created_at text NOT NULL, is_full boolean NOT NULL, crc bigint NOT NULL,
        record bytea NOT NULL);
    CREATE INDEX stepgraph_checkpoints_session ON {s}.stepgraph_checkpoints (session_id, seq);
    CREATE TABLE {s}.stepgraph_leases (session_id text PRIMARY KEY, owner text,
        token bigint NOT NULL, expires_at double precision NOT NULL)""",  # version 1
)

_NOW = "extract(epoch FROM clock_timestamp())"
_COLUMNS = "(id, session_id, parent_id, superstep, created_at, is_full, crc, record)"
_VALUES = "%(id)s, %(sid)s, %(parent)s, %(superstep)s, %(at)s, %(full)s, %(crc)s, %(record)s"
_UPSERT = """ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id,
    parent_id = excluded.parent_id, superstep = excluded.superstep,
    created_at = excluded.created_at, is_full = excluded.is_full, crc = excluded.crc,
    record = excluded.record"""


def _chain(anchor: LiteralString) -> LiteralString:
    """One recursive query: a checkpoint and its delta chain back to the nearest full one."""
    return (
        "WITH RECURSIVE chain AS ((SELECT id, parent_id, is_full, crc, record, 0 AS n FROM "
        "{s}.stepgraph_checkpoints " + anchor + ") UNION ALL "
        "SELECT c.id, c.parent_id, c.is_full, c.crc, c.record, chain.n + 1 "
        "FROM {s}.stepgraph_checkpoints AS c JOIN chain ON c.id = chain.parent_id "
        "WHERE NOT chain.is_full AND chain.n < 10000) "
        "SELECT id, is_full, crc, record FROM chain ORDER BY n"
    )


_STATEMENTS: dict[str, LiteralString] = {
    "load": _chain("WHERE id = %s"),
    "latest": _chain("WHERE session_id = %s ORDER BY seq DESC LIMIT 1"),
    "save": f"INSERT INTO {{s}}.stepgraph_checkpoints {_COLUMNS} SELECT {_VALUES} FROM "
    f"(SELECT pg_advisory_xact_lock(hashtextextended(%(sid)s, 0))) AS serial {_UPSERT}",
    "fenced_save": "WITH lease AS (SELECT 1 FROM {s}.stepgraph_leases WHERE session_id = %(sid)s "
    "AND token = %(token)s AND owner = %(owner)s FOR UPDATE) "
    f"INSERT INTO {{s}}.stepgraph_checkpoints {_COLUMNS} SELECT {_VALUES} FROM lease {_UPSERT} "
    "RETURNING 1",
    "list": "SELECT id, parent_id, session_id, superstep, created_at FROM "
    "{s}.stepgraph_checkpoints WHERE session_id = %s ORDER BY seq DESC LIMIT %s",
    "delete": "DELETE FROM {s}.stepgraph_checkpoints WHERE id = ANY(%s)",
    "delete_session": "DELETE FROM {s}.stepgraph_checkpoints WHERE session_id = %s",
    "acquire": "INSERT INTO {s}.stepgraph_leases AS l (session_id, owner, token, expires_at) "
    f"VALUES (%(sid)s, %(owner)s, 1, {_NOW} + %(ttl)s) "
    "ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner, "
    "token = l.token + 1, expires_at = excluded.expires_at "
    f"WHERE l.owner IS NULL OR l.owner = excluded.owner OR l.expires_at <= {_NOW} "
    "RETURNING token, expires_at",
    "takeover": "UPDATE {s}.stepgraph_leases SET owner = %(owner)s, token = token + 1, "
    f"expires_at = {_NOW} + %(ttl)s WHERE session_id = %(sid)s AND owner = %(dead)s "
    "RETURNING token, expires_at",
    "holder": f"SELECT owner, token, expires_at - {_NOW} FROM {{s}}.stepgraph_leases "
    "WHERE session_id = %s",
    "renew": f"UPDATE {{s}}.stepgraph_leases SET expires_at = {_NOW} + %(ttl)s "
    "WHERE session_id = %(sid)s AND token = %(token)s AND owner = %(owner)s "
    "RETURNING expires_at",
    "release": "WITH gone AS (UPDATE {s}.stepgraph_leases SET owner = NULL, expires_at = 0 "
    "WHERE session_id = %(sid)s AND token = %(token)s AND owner = %(owner)s "
    f"RETURNING 1) SELECT pg_notify('{CHANNEL}', %(key)s) FROM gone",
    "exists": "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %s), EXISTS (SELECT "
    "FROM pg_tables WHERE schemaname = %s AND tablename = 'stepgraph_schema')",
    "create_schema": "CREATE SCHEMA {s}",
    "versions": "CREATE TABLE IF NOT EXISTS {s}.stepgraph_schema (version integer PRIMARY KEY, "
    "applied_at timestamptz NOT NULL DEFAULT now())",
    "version": "SELECT coalesce(max(version), 0) FROM {s}.stepgraph_schema",
    "applied": "INSERT INTO {s}.stepgraph_schema (version) VALUES (%s)",
}


def _in_schema(template: LiteralString, schema: str) -> LiteralString:
    """`template` with `{s}` replaced by the quoted schema name."""
    return cast(LiteralString, sql.SQL(template).format(s=sql.Identifier(schema)).as_string(None))


class PostgresCheckpointStore(LeaseStore):
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
            name: _in_schema(text, schema) for name, text in _STATEMENTS.items()
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
        params.update(_fence(lease))
        if not await self._rows(doing, self._sql["fenced_save"], params):
            raise LeaseLostError(
                f"checkpoint {info.id!r} was not saved: lease token {lease.token} of "
                f"{lease.owner!r} is no longer the current lease of session "
                f"{info.session_id!r} in {self._where}"
            )

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The whole checkpoint; raises `CheckpointNotFoundError` for an unknown id."""
        doing = f"load checkpoint {checkpoint_id!r}"
        rows = await self._rows(doing, self._sql["load"], (checkpoint_id,), binary=True)
        if not rows:
            raise CheckpointNotFoundError(f"no checkpoint {checkpoint_id!r} in {self._where}")
        return self._resolve(rows)

    async def list(self, session_id: str, limit: int | None = None) -> list[CheckpointInfo]:
        """The session's checkpoints, newest first by save order, at most `limit`."""
        n = None if limit is None else max(limit, 0)
        rows = await self._rows(f"list session {session_id!r}", self._sql["list"], (session_id, n))
        try:
            return [CheckpointInfo(*r[:4], created_at=datetime.fromisoformat(r[4])) for r in rows]
        except (TypeError, ValueError) as exc:
            raise CheckpointDecodeError(
                f"malformed row in {self._where} for session {session_id!r}: {exc}"
            ) from None

    async def latest(self, session_id: str) -> Checkpoint | None:
        """The session's most recently saved checkpoint, or None."""
        doing = f"read session {session_id!r}"
        rows = await self._rows(doing, self._sql["latest"], (session_id,), binary=True)
        return self._resolve(rows) if rows else None

    async def delete(self, checkpoint_ids: Sequence[str]) -> None:
        """Delete checkpoints by id, in one statement; unknown ids are ignored."""
        ids = list(dict.fromkeys(checkpoint_ids))
        self._check_open()
        if ids:
            await self._rows("delete checkpoints", self._sql["delete"], (ids,))

    async def delete_session(self, session_id: str) -> None:
        """Delete every checkpoint of the session (its lease row, and so its tokens, stay)."""
        doing = f"delete session {session_id!r}"
        await self._rows(doing, self._sql["delete_session"], (session_id,))

    async def acquire(
        self, session_id: str, owner: str, ttl: float, *, wait: float | None = None
    ) -> Lease:
        """Take the session's lease for `ttl` seconds (rules in `stepgraph._lease`).

        Raises `ConcurrentRunError` while another owner holds it; with `wait`, only
        after trying that long, woken by the holder's release (LISTEN/NOTIFY) or expiry.
        A waiting call holds no pooled connection between its attempts (it listens on
        the store's one notice connection, `_pg_wakeups`), so any number of waiters
        leave the pool to the holders. A holder that was a process of this host and
        is gone (a crash) is taken over.
        """
        ttl = check_ttl(ttl)
        deadline = None if wait is None else self._clock() + max(wait, 0.0)
        doing = f"acquire the lease of session {session_id!r}"
        key = self._wake_key(session_id)
        with self._wakeups.watching(key):
            while True:
                if deadline is not None:  # before the attempt: no release goes unheard
                    self._check_open()
                    await self._guarded(doing, self._wakeups.listen())  # reopens if dropped
                since = self._wakeups.mark(key)
                got, held = await self._run(
                    doing, lambda conn: self._attempt(conn, session_id, owner, ttl)
                )
                if got is not None:
                    return got
                owner_, token, remaining = held
                left = 0.0 if deadline is None else deadline - self._clock()
                if left <= 0:
                    raise ConcurrentRunError(held_message(session_id, owner_, token, remaining))
                await self._guarded(doing, self._wakeups.wait(key, since, pause(left, remaining)))

    async def _attempt(
        self, conn: _Conn, session_id: str, owner: str, ttl: float
    ) -> tuple[Lease | None, tuple[str, int, float]]:
        """One try: the lease, or None and the holder (owner, token, seconds left)."""
        params = {"sid": session_id, "owner": owner, "ttl": ttl}
        while True:
            cur = await conn.execute(self._sql["acquire"], params)
            if (got := await cur.fetchone()) is not None:
                return Lease(session_id, owner, int(got[0]), float(got[1])), ("", 0, 0.0)
            held = await (await conn.execute(self._sql["holder"], (session_id,))).fetchone()
            if held is None or held[0] is None:
                continue  # released between the two statements: try again
            if not owner_is_gone(str(held[0])):
                return None, (str(held[0]), int(held[1]), float(held[2]))
            # The holder was a process of this host that no longer exists (a crash):
            # take its lease over now instead of waiting out its ttl.
            cur = await conn.execute(self._sql["takeover"], {**params, "dead": held[0]})
            if (got := await cur.fetchone()) is not None:
                return Lease(session_id, owner, int(got[0]), float(got[1])), ("", 0, 0.0)
            # someone else took it meanwhile: look again

    async def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend `lease` to `ttl` seconds from now; `LeaseLostError` if taken over or released."""
        params = {**_fence(lease), "ttl": check_ttl(ttl)}
        doing = f"renew the lease of session {lease.session_id!r}"
        if not (rows := await self._rows(doing, self._sql["renew"], params)):
            raise LeaseLostError(
                f"the lease of session {lease.session_id!r} held by {lease.owner!r} (token "
                f"{lease.token}) was taken over or released; stop this run"
            )
        return Lease(lease.session_id, lease.owner, lease.token, float(rows[0][0]))

    async def release(self, lease: Lease) -> None:
        """End `lease` if it is still current (a no-op otherwise) and wake waiting acquirers."""
        params = {**_fence(lease), "key": self._wake_key(lease.session_id)}
        await self._rows(
            f"release the lease of session {lease.session_id!r}", self._sql["release"], params
        )

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

    def _wake_key(self, session_id: str) -> str:
        """The NOTIFY payload naming one session of this schema (fixed size, any session id)."""
        raw = f"{self._schema}\x00{session_id}".encode()
        return hashlib.blake2b(raw, digest_size=16).hexdigest()

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
                await conn.execute(_in_schema(_MIGRATIONS[number - 1], self._schema))
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


def _fence(lease: Lease) -> dict[str, Any]:
    return {"sid": lease.session_id, "token": lease.token, "owner": lease.owner}


def _describe(dsn: str) -> str:
    """Host, port and database of `dsn`, never its password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(unparsable DSN)"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"
