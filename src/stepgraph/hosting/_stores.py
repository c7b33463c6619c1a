"""The store of a server (`stepgraph.stores.open_store` URLs) and the hosting log beside it.

The hosting log (responses, conversations, sessions the server knows) sits
beside the checkpoints: in `<name>.hosting.db` next to a SQLite file, in
`hosting.sqlite3` inside a file store's directory, in memory for a memory
store, and in tables of the same database and schema for a PostgreSQL store
(shared by every replica).
"""

from __future__ import annotations

import sys
from pathlib import Path

import stepgraph as sg
from stepgraph.stores import FileCheckpointStore, SqliteCheckpointStore, open_store

from ._log import HostingLog, ResponseLog

__all__ = ["DEFAULT_STORE_URL", "log_path_for", "open_log", "open_store"]

DEFAULT_STORE_URL = "sqlite:///./.stepgraph/runs.db"
"""The embedded default: a SQLite file under `./.stepgraph/`."""


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
    if path is None and "stepgraph.stores.postgres" in sys.modules:  # as any such store is
        from stepgraph.stores.postgres import PostgresCheckpointStore

        if isinstance(store, PostgresCheckpointStore):
            from ._pglog import PostgresResponseLog

            return PostgresResponseLog(store.dsn, schema=store.schema)
    return ResponseLog(path or log_path_for(store))
