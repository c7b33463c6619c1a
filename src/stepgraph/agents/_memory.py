"""`MemoryStore`: long-term memory that outlives a session, as namespaced JSON items.

Modelled on LangGraph's `BaseStore`: an item lives at `(namespace, key)`, where a
namespace is a tuple of non-empty strings (`("users", "alice", "prefs")`); `put`
replaces it (keeping its creation time), `get` reads it, `delete` drops it,
`search` lists the items under a namespace prefix (newest first, optionally
filtered by exact field values and a text query) and `list_namespaces` the
namespaces in use. Values are JSON-like (dicts, lists, str, numbers, bools,
None) and are stored as JSON text.

The backend is chosen at construction: in memory (`MemoryStore()`), SQLite
(`MemoryStore.sqlite(path)`, `_memory_sql`) or PostgreSQL
(`MemoryStore.postgres(dsn)`, `_memory_sql`). Nothing connects at construction;
the first call does, and `aclose()` (or `async with`) closes the connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, Self

from .._errors import WorkflowError

__all__ = ["MemoryBackend", "MemoryStoreError", "MemoryItem", "MemoryStore", "Row", "SEP"]

SEP = "\x1f"
"""Joins namespace labels in the backends' text column (the ASCII unit separator)."""

Row = tuple[str, str, str, datetime, datetime]
"""What a backend stores per item: namespace text, key, value JSON, created, updated."""


class MemoryStoreError(WorkflowError):
    """A memory operation failed: a bad namespace or value, or the backend refused."""


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One remembered value.

    Attributes:
        namespace: where it lives, e.g. `("users", "alice")`.
        key: its name inside the namespace.
        value: the JSON-like value.
        created_at: when it was first put (UTC).
        updated_at: when it was last put (UTC).
    """

    namespace: tuple[str, ...]
    key: str
    value: Any
    created_at: datetime
    updated_at: datetime


class MemoryBackend(Protocol):
    """Where a `MemoryStore` keeps rows; namespaces arrive joined with `SEP`."""

    async def put(self, row: Row) -> None:
        """Insert or replace a row (an existing row keeps its creation time)."""
        ...

    async def get(self, namespace: str, key: str) -> Row | None:
        """The row at (namespace, key), if any."""
        ...

    async def delete(self, namespace: str, key: str) -> None:
        """Drop the row at (namespace, key), if any."""
        ...

    async def under(self, prefix: str) -> list[Row]:
        """Rows whose namespace is `prefix` or lies below it ("" for all), newest first."""
        ...

    async def namespaces(self, prefix: str) -> list[str]:
        """The distinct namespaces at or below `prefix` ("" for all), sorted."""
        ...

    async def aclose(self) -> None:
        """Close the connection, if one was opened."""
        ...


class _InMemory:
    """Rows in a dict: lives as long as the store object."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Row] = {}

    async def put(self, row: Row) -> None:
        old = self._rows.get((row[0], row[1]))
        self._rows[(row[0], row[1])] = row if old is None else (*row[:3], old[3], row[4])

    async def get(self, namespace: str, key: str) -> Row | None:
        return self._rows.get((namespace, key))

    async def delete(self, namespace: str, key: str) -> None:
        self._rows.pop((namespace, key), None)

    async def under(self, prefix: str) -> list[Row]:
        rows = [r for r in self._rows.values() if _below(r[0], prefix)]
        return sorted(rows, key=lambda r: r[4], reverse=True)

    async def namespaces(self, prefix: str) -> list[str]:
        return sorted({ns for ns, _ in self._rows if _below(ns, prefix)})

    async def aclose(self) -> None:
        pass


def _below(namespace: str, prefix: str) -> bool:
    return not prefix or namespace == prefix or namespace.startswith(prefix + SEP)


class MemoryStore:
    """Namespaced long-term memory shared by sessions, handlers and agents.

    Construct with no argument for an in-memory store, or with
    `MemoryStore.sqlite(path)` / `MemoryStore.postgres(dsn)` for a durable one.
    Hand the same store to every executor or agent that should share memories
    (`memory_tools(store, namespace)` gives an agent "remember" and "recall").

    Args:
        backend: where rows live; in memory by default.
        clock: returns the current time (inject a manual clock in tests).
    """

    def __init__(
        self,
        backend: MemoryBackend | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._backend: MemoryBackend = backend or _InMemory()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._closed = False

    @classmethod
    def sqlite(cls, path: str, *, clock: Callable[[], datetime] | None = None) -> MemoryStore:
        """A store in the SQLite file `path` (table `stepgraph_memory`), opened on first use."""
        from ._memory_sql import SqliteMemory

        return cls(SqliteMemory(path), clock=clock)

    @classmethod
    def postgres(
        cls, dsn: str, *, schema: str | None = None, clock: Callable[[], datetime] | None = None
    ) -> MemoryStore:
        """A store in PostgreSQL (table `stepgraph_memory`, in `schema` when given).

        Needs the `postgres` extra; the connection is opened on first use.
        """
        from ._memory_sql import PostgresMemory

        return cls(PostgresMemory(dsn, schema), clock=clock)

    async def put(self, namespace: Sequence[str], key: str, value: Any) -> None:
        """Store `value` at (namespace, key), replacing what was there.

        Raises:
            MemoryStoreError: a bad namespace or key, or a value that is not JSON-like.
        """
        ns, text = _namespace(namespace), _dumps(value)
        if not isinstance(key, str) or not key:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise MemoryStoreError(f"a memory key must be a non-empty string, not {key!r}")
        now = self._clock()
        await self._live().put((ns, key, text, now, now))

    async def get(self, namespace: Sequence[str], key: str) -> MemoryItem | None:
        """The item at (namespace, key), or None."""
        row = await self._live().get(_namespace(namespace), key)
        return None if row is None else _item(row)

    async def delete(self, namespace: Sequence[str], key: str) -> None:
        """Forget the item at (namespace, key); nothing happens when there is none."""
        await self._live().delete(_namespace(namespace), key)

    async def search(
        self,
        namespace_prefix: Sequence[str] = (),
        *,
        query: str | None = None,
        filter: Mapping[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[MemoryItem]:
        """Items at or below `namespace_prefix`, most recently updated first.

        Args:
            namespace_prefix: leading labels of the namespaces to look in; () for all.
            query: keep items whose key or value text contains every word of it
                (case-insensitive); a plain text match, not a semantic search.
            filter: keep items whose value is a dict with these exact field values.
            limit: at most this many items.
            offset: skip this many matching items first.
        """
        prefix = _namespace(namespace_prefix, allow_empty=True)
        words = query.lower().split() if query else []
        found: list[MemoryItem] = []
        for row in await self._live().under(prefix):
            if words and not all(w in f"{row[1]} {row[2]}".lower() for w in words):
                continue
            item = _item(row)
            if filter and not _matches(item.value, filter):
                continue
            found.append(item)
        return found[offset : offset + limit]

    async def list_namespaces(
        self,
        *,
        prefix: Sequence[str] = (),
        suffix: Sequence[str] = (),
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """The namespaces holding items, sorted; cut to `max_depth` labels (deduplicated)."""
        names = await self._live().namespaces(_namespace(prefix, allow_empty=True))
        found: list[tuple[str, ...]] = []
        for text in names:
            ns = tuple(text.split(SEP))
            if suffix and ns[len(ns) - len(suffix) :] != tuple(suffix):
                continue
            ns = ns if max_depth is None else ns[:max_depth]
            if ns not in found:
                found.append(ns)
        return found[offset : offset + limit]

    async def aclose(self) -> None:
        """Close the backend's connection; the store cannot be used afterwards."""
        self._closed = True
        await self._backend.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _live(self) -> MemoryBackend:
        if self._closed:
            raise MemoryStoreError("this MemoryStore is closed")
        return self._backend


def _namespace(namespace: Sequence[str], *, allow_empty: bool = False) -> str:
    if isinstance(namespace, str):
        raise MemoryStoreError(f"a namespace is a tuple of strings, not the string {namespace!r}")
    labels = tuple(namespace)
    bad = [x for x in labels if not isinstance(x, str) or not x or SEP in x]  # pyright: ignore[reportUnnecessaryIsInstance]
    if bad or (not labels and not allow_empty):
        raise MemoryStoreError(
            f"a namespace is a non-empty tuple of non-empty strings, not {labels!r}"
        )
    return SEP.join(labels)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise MemoryStoreError(f"a memory value must be JSON-like: {exc}") from exc


def _item(row: Row) -> MemoryItem:
    return MemoryItem(tuple(row[0].split(SEP)), row[1], json.loads(row[2]), row[3], row[4])


def _matches(value: Any, wanted: Mapping[str, Any]) -> bool:
    if not isinstance(value, dict):
        return False
    fields: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
    return all(k in fields and fields[k] == v for k, v in wanted.items())
