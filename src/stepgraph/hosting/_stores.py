"""Store URLs: `sqlite:///path`, `file:///dir`, `memory:`, `postgresql://...`, and the log.

`open_store` is shared with the CLI. The hosting log (responses,
conversations, sessions the server knows) sits beside the checkpoints: in
`<name>.hosting.db` next to a SQLite file, in `hosting.sqlite3` inside a file
store's directory, in memory for a memory store, and in tables of the same
database and schema for a PostgreSQL store (shared by every replica).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from urllib.parse import unquote

import stepgraph as sg
from stepgraph.stores._urls import postgres_dsn
from stepgraph.stores.file import FileCheckpointStore
from stepgraph.stores.sqlite import SqliteCheckpointStore

from ._log import HostingLog, ResponseLog

__all__ = ["DEFAULT_STORE_URL", "log_path_for", "open_log", "open_store", "postgres_dsn"]

DEFAULT_STORE_URL = "sqlite:///./.stepgraph/runs.db"
"""The embedded default: a SQLite file under `./.stepgraph/`."""


def _path(rest: str, url: str) -> str:
    # "sqlite:///abs/x.db" -> "/abs/x.db"; "sqlite:///./x.db" -> "./x.db"; "sqlite://x.db" -> "x.db"
    while rest.startswith("//"):  # sqlite:////abs/x.db (the SQLAlchemy spelling) works too
        rest = rest[1:]
    if rest.startswith("/./") or rest.startswith("/../"):
        rest = rest[1:]
    path = unquote(rest)
    if not path or path == "/":
        raise ValueError(f"store URL {url!r} names no path")
    return path


def _postgres(url: str) -> sg.CheckpointStore:
    try:
        module = importlib.import_module("stepgraph.stores.postgres")
    except ImportError as exc:
        raise ValueError(
            f"{url.split('://', 1)[0]}:// needs the PostgreSQL store: "
            f"pip install 'stepgraph[postgres]' ({exc})"
        ) from exc
    dsn, schema = postgres_dsn(url)
    store: sg.CheckpointStore = module.PostgresCheckpointStore(dsn, schema=schema)
    return store


def open_store(url: str) -> sg.CheckpointStore:
    """A checkpoint store from a URL.

    Accepted forms: `sqlite:///abs/path.db`, `sqlite:///./relative.db` (or
    `sqlite://relative.db`), `file:///abs/dir` (or `file://relative/dir`),
    `memory:`, `postgresql://user@host:5432/db?schema=name` (or `postgres://`;
    `schema` defaults to `public`, other parameters go to libpq); a string
    without a scheme is a SQLite file path. Parent directories of a SQLite file
    are created.

    Raises:
        ValueError: an unknown scheme, a URL without a path, or `postgresql://`
            without the `postgres` extra.
    """
    text = url.strip()
    if not text:
        raise ValueError("empty store URL: use sqlite:///path.db, file:///dir or memory:")
    if text in ("memory:", "memory://", "memory"):
        return sg.MemoryCheckpointStore()
    scheme, sep, rest = text.partition("://")
    if not sep:  # a plain path
        scheme, rest = "sqlite", text
    scheme = scheme.lower()
    if scheme == "sqlite":
        path = _path(rest, url) if sep else text
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SqliteCheckpointStore(path)
    if scheme == "file":
        path = _path(rest, url)
        Path(path).mkdir(parents=True, exist_ok=True)
        return FileCheckpointStore(path)
    if scheme in ("postgresql", "postgres"):
        return _postgres(text)
    raise ValueError(
        f"unknown store URL scheme {scheme!r} in {url!r}: use sqlite:///path.db, "
        "file:///dir, memory: or postgresql://..."
    )


def log_path_for(store: sg.CheckpointStore) -> str:
    """Where the hosting log of `store` lives (":memory:" for stores without a place)."""
    if isinstance(store, SqliteCheckpointStore):
        p = Path(store.path)
        return str(p.with_name(p.stem + ".hosting.db"))
    if isinstance(store, FileCheckpointStore):
        return str(Path(store.directory) / "hosting.sqlite3")
    return ":memory:"


def open_log(store: sg.CheckpointStore, path: str | None = None) -> HostingLog:
    """The hosting log of `store`: a SQLite file at `path` when given; else in the
    database and schema of a PostgreSQL store (shared by every replica); else the
    SQLite file of `log_path_for(store)`.
    """
    pg = sys.modules.get("stepgraph.stores.postgres")  # imported when such a store exists
    if path is None and pg is not None and isinstance(store, pg.PostgresCheckpointStore):
        from ._pglog import PostgresResponseLog

        dsn: str = getattr(store, "_dsn")  # noqa: B009 (the store keeps its DSN private)
        schema: str = getattr(store, "schema")  # noqa: B009
        return PostgresResponseLog(dsn, schema=schema)
    return ResponseLog(path or log_path_for(store))
