"""Caches for `CachePolicy`: where a handler's recorded effects are kept.

`MemoryCache` lives in the process (share one object between sessions to share
entries); `SqliteCache(path)` persists entries in a SQLite file (the checkpoint
database is fine), shared by every session and process that opens it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._errors import CheckpointError

__all__ = ["Cache", "MemoryCache", "SqliteCache"]


@runtime_checkable
class Cache(Protocol):
    """Stores encoded handler effects by key, with an optional expiry (POSIX seconds)."""

    async def get(self, key: str, now: float) -> bytes | None:
        """The entry for `key` unless it expired before `now`."""
        ...

    async def put(self, key: str, value: bytes, expires_at: float | None) -> None:
        """Store an entry (replacing one with the same key)."""
        ...


class MemoryCache:
    """An in-process cache."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[bytes, float | None]] = {}

    async def get(self, key: str, now: float) -> bytes | None:
        """The live entry for `key`, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= now:
            del self._entries[key]
            return None
        return value

    async def put(self, key: str, value: bytes, expires_at: float | None) -> None:
        """Store an entry."""
        self._entries[key] = (value, expires_at)

    def __len__(self) -> int:
        return len(self._entries)


class SqliteCache:
    """A cache in a SQLite file, shared across sessions and processes.

    Entries are small and reads are point lookups, so calls run inline; the
    connection is opened lazily and is safe to use from one thread at a time.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS stepgraph_cache "
                "(key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL)"
            )
            conn.commit()
            self._conn = conn
        return self._conn

    async def get(self, key: str, now: float) -> bytes | None:
        """The live entry for `key`, or None."""
        try:
            with self._lock:
                row = (
                    self._db()
                    .execute("SELECT value, expires_at FROM stepgraph_cache WHERE key = ?", (key,))
                    .fetchone()
                )
        except sqlite3.Error as exc:
            raise CheckpointError(f"cache {self.path} could not be read: {exc}") from exc
        if row is None or (row[1] is not None and row[1] <= now):
            return None
        return bytes(row[0])

    async def put(self, key: str, value: bytes, expires_at: float | None) -> None:
        """Store an entry."""
        try:
            with self._lock:
                db = self._db()
                db.execute(
                    "INSERT OR REPLACE INTO stepgraph_cache (key, value, expires_at) "
                    "VALUES (?, ?, ?)",
                    (key, value, expires_at),
                )
                db.commit()
        except sqlite3.Error as exc:
            raise CheckpointError(f"cache {self.path} could not be written: {exc}") from exc

    async def aclose(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
