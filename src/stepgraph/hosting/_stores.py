"""Store URLs: `sqlite:///path`, `file:///dir`, `memory:`, and where the server's log lives.

`open_store` is shared with the CLI. The hosting log (responses,
conversations, sessions the server knows) sits beside the checkpoints: in
`<name>.hosting.db` next to a SQLite file, in `hosting.sqlite3` inside a file
store's directory, and in memory for a memory store.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import stepgraph as sg
from stepgraph.stores.file import FileCheckpointStore
from stepgraph.stores.sqlite import SqliteCheckpointStore

__all__ = ["DEFAULT_STORE_URL", "log_path_for", "open_store"]

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


def open_store(url: str) -> sg.CheckpointStore:
    """A checkpoint store from a URL.

    Accepted forms: `sqlite:///abs/path.db`, `sqlite:///./relative.db` (or
    `sqlite://relative.db`), `file:///abs/dir` (or `file://relative/dir`),
    `memory:`; a string without a scheme is a SQLite file path. Parent
    directories of a SQLite file are created.

    Raises:
        ValueError: an unknown scheme or a URL without a path.
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
    raise ValueError(
        f"unknown store URL scheme {scheme!r} in {url!r}: use sqlite:///path.db, "
        "file:///dir or memory:"
    )


def log_path_for(store: sg.CheckpointStore) -> str:
    """Where the hosting log of `store` lives (":memory:" for stores without a place)."""
    if isinstance(store, SqliteCheckpointStore):
        p = Path(store.path)
        return str(p.with_name(p.stem + ".hosting.db"))
    if isinstance(store, FileCheckpointStore):
        return str(Path(store.directory) / "hosting.sqlite3")
    return ":memory:"
