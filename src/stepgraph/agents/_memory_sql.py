"""`MemoryStore` backends on SQLite and PostgreSQL: one table, `stepgraph_memory`.

```
stepgraph_memory(namespace TEXT, key TEXT, value TEXT,   -- value: JSON text
                 created_at, updated_at,                 -- SQLite: ISO text, UTC
                 PRIMARY KEY (namespace, key))           -- PostgreSQL: timestamptz
```

A namespace is its labels joined with `SEP`, so "at or below a prefix" is an
equality or a string-prefix test on the key's first column. Connections are
opened on first use, never at construction, and every driver error becomes a
`MemoryStoreError`.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Generator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ._memory import SEP, MemoryStoreError, Row

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg.rows import TupleRow

__all__ = ["PostgresMemory", "SqliteMemory"]

_T = TypeVar("_T")
_STAMP = "%Y-%m-%dT%H:%M:%S.%f+00:00"  # fixed width, so text order is time order
_UNDER = "(%(p)s = '' OR namespace = %(p)s OR {starts} = %(p)s || %(sep)s)"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


class SqliteMemory:
    """Rows in a SQLite file (WAL, a busy timeout), on the event loop like the checkpoint store."""

    def __init__(self, path: str, busy_ms: int = 5000) -> None:
        self._path = path
        self._busy_ms = busy_ms
        self._conn: sqlite3.Connection | None = None

    async def put(self, row: Row) -> None:
        ns, key, value, created, updated = row
        sql = (
            "INSERT INTO stepgraph_memory VALUES (?, ?, ?, ?, ?) ON CONFLICT (namespace, key) "
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        )
        params = (ns, key, value, _stamp(created), _stamp(updated))
        self._run("put a memory", lambda c: c.execute(sql, params))

    async def get(self, namespace: str, key: str) -> Row | None:
        sql = "SELECT * FROM stepgraph_memory WHERE namespace = ? AND key = ?"
        rows = self._run("get a memory", lambda c: c.execute(sql, (namespace, key)).fetchall())
        return _sqlite_row(rows[0]) if rows else None

    async def delete(self, namespace: str, key: str) -> None:
        sql = "DELETE FROM stepgraph_memory WHERE namespace = ? AND key = ?"
        self._run("delete a memory", lambda c: c.execute(sql, (namespace, key)))

    async def under(self, prefix: str) -> list[Row]:
        where = _UNDER.format(starts="substr(namespace, 1, length(%(p)s) + 1)")
        sql = f"SELECT * FROM stepgraph_memory WHERE {_qmark(where)} ORDER BY updated_at DESC"
        params = {"p": prefix, "sep": SEP}
        rows = self._run("search memories", lambda c: c.execute(sql, params).fetchall())
        return [_sqlite_row(r) for r in rows]

    async def namespaces(self, prefix: str) -> list[str]:
        where = _UNDER.format(starts="substr(namespace, 1, length(%(p)s) + 1)")
        sql = f"SELECT DISTINCT namespace FROM stepgraph_memory WHERE {_qmark(where)} ORDER BY 1"
        params = {"p": prefix, "sep": SEP}
        rows = self._run("list namespaces", lambda c: c.execute(sql, params).fetchall())
        return [str(r[0]) for r in rows]

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _run(self, doing: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return fn(self._conn or self._open())
        except sqlite3.Error as exc:
            raise MemoryStoreError(f"could not {doing} in {self._path}: {exc}") from exc

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS stepgraph_memory (namespace TEXT NOT NULL, "
            "key TEXT NOT NULL, value TEXT NOT NULL, created_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL, PRIMARY KEY (namespace, key)) WITHOUT ROWID"
        )
        self._conn = conn
        return conn


def _qmark(where: str) -> str:
    return where.replace("%(p)s", ":p").replace("%(sep)s", ":sep")


def _sqlite_row(r: tuple[Any, ...]) -> Row:
    return (
        str(r[0]),
        str(r[1]),
        str(r[2]),
        datetime.fromisoformat(str(r[3])),
        datetime.fromisoformat(str(r[4])),
    )


class PostgresMemory:
    """Rows in PostgreSQL over one autocommit `psycopg` connection, opened on first use."""

    def __init__(self, dsn: str, schema: str | None = None) -> None:
        if schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
            raise MemoryStoreError(f"schema must be a plain SQL identifier, not {schema!r}")
        self._dsn = dsn
        self._schema = schema
        self._table = f'"{schema}".stepgraph_memory' if schema else "stepgraph_memory"
        self._conn: AsyncConnection[TupleRow] | None = None
        self._opening: asyncio.Lock | None = None

    async def put(self, row: Row) -> None:
        sql = (
            f"INSERT INTO {self._table} VALUES (%s, %s, %s, %s, %s) ON CONFLICT (namespace, key) "
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        )
        await self._rows("put a memory", sql, row, fetch=False)

    async def get(self, namespace: str, key: str) -> Row | None:
        sql = f"SELECT * FROM {self._table} WHERE namespace = %s AND key = %s"
        rows = await self._rows("get a memory", sql, (namespace, key))
        return _pg_row(rows[0]) if rows else None

    async def delete(self, namespace: str, key: str) -> None:
        sql = f"DELETE FROM {self._table} WHERE namespace = %s AND key = %s"
        await self._rows("delete a memory", sql, (namespace, key), fetch=False)

    async def under(self, prefix: str) -> list[Row]:
        where = _UNDER.format(starts="left(namespace, length(%(p)s) + 1)")
        sql = f"SELECT * FROM {self._table} WHERE {where} ORDER BY updated_at DESC"
        rows = await self._rows("search memories", sql, {"p": prefix, "sep": SEP})
        return [_pg_row(r) for r in rows]

    async def namespaces(self, prefix: str) -> list[str]:
        where = _UNDER.format(starts="left(namespace, length(%(p)s) + 1)")
        sql = f"SELECT DISTINCT namespace FROM {self._table} WHERE {where} ORDER BY 1"
        rows = await self._rows("list namespaces", sql, {"p": prefix, "sep": SEP})
        return [str(r[0]) for r in rows]

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _rows(
        self, doing: str, sql: str, params: Any, *, fetch: bool = True
    ) -> list[tuple[Any, ...]]:
        with _pg_errors(doing):
            conn = self._conn or await self._open()
            cursor = await conn.execute(sql.encode(), params)
            return list(await cursor.fetchall()) if fetch else []

    async def _open(self) -> AsyncConnection[TupleRow]:
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if self._conn is None:
                from psycopg import AsyncConnection

                conn = await AsyncConnection.connect(self._dsn, autocommit=True)
                if self._schema:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"'.encode())
                await conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._table} (namespace TEXT NOT NULL, "
                    "key TEXT NOT NULL, value TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, "
                    "updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (namespace, key))".encode()
                )
                self._conn = conn
            return self._conn


@contextmanager
def _pg_errors(doing: str) -> Generator[None]:
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise MemoryStoreError(f"could not {doing} in PostgreSQL: {exc}") from exc


def _pg_row(r: tuple[Any, ...]) -> Row:
    return (str(r[0]), str(r[1]), str(r[2]), r[3], r[4])
