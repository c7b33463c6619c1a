"""Store URLs and the index that remembers which workflow file each session runs.

* `sqlite:///abs/runs.db`, `sqlite:///./rel/runs.db`, `sqlite://rel/runs.db`, or
  a bare path: `SqliteCheckpointStore`
* `file:///abs/dir`, `file:///./rel/dir`, `file://rel/dir`: `FileCheckpointStore`
* `memory:`: `MemoryCheckpointStore` (this process only)
* `postgresql://...`: `PostgresCheckpointStore` (needs psycopg)

The forms and their meaning are those of `stepgraph.hosting.open_store`, so
`stepgraph run` and `stepgraph serve` given the same URL open the same store
(this module does not import the hosting extra).

`respond`, `resume` and `checkpoints prune` need the workflow of a session;
`stepgraph run` remembers it in a small JSON index beside the store
(`<db>-sessions.json`, or `sessions.json` in a file store's directory), so
that the target need not be repeated. The index is a convenience: a target
given on the command line always wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import unquote

import stepgraph as sg
from stepgraph.stores._urls import postgres_dsn

from ._exit import CliError, ExitCode

__all__ = [
    "DEFAULT_STORE",
    "SessionIndex",
    "StoreSpec",
    "missing_session",
    "open_store",
    "parse_store_url",
    "require_session",
]

DEFAULT_STORE = "sqlite:///./.stepgraph/runs.db"
"""The store when neither `--store` nor `STEPGRAPH_STORE` names one."""

StoreKind = Literal["sqlite", "file", "memory", "postgresql"]


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """A parsed store URL.

    Attributes:
        kind: which store.
        location: absolute path (sqlite, file), DSN (postgresql) or "" (memory).
    """

    kind: StoreKind
    location: str

    @property
    def url(self) -> str:
        """The canonical URL (absolute paths), safe to hand to another process."""
        match self.kind:
            case "sqlite":
                return "sqlite://" + self.location
            case "file":
                return "file://" + self.location
            case "memory":
                return "memory:"
            case "postgresql":
                return self.location

    def exists(self) -> bool:
        """Whether anything was ever saved there (memory and postgresql: assumed)."""
        if self.kind in ("sqlite", "file"):
            return os.path.exists(self.location)
        return True


def _path(rest: str) -> str:
    while rest.startswith("//"):  # sqlite:////abs/x.db (SQLAlchemy's spelling) is absolute too
        rest = rest[1:]
    if rest.startswith(("/./", "/../")):  # sqlite:///./x.db is relative
        rest = rest[1:]
    path = unquote(rest)
    return os.path.abspath(os.path.expanduser(path)) if path not in ("", "/") else ""


def parse_store_url(url: str | None) -> StoreSpec:
    """Parse `--store` (default: `STEPGRAPH_STORE`, then `DEFAULT_STORE`).

    Raises:
        CliError: the URL is not one of the forms above.
    """
    text = (url or os.environ.get("STEPGRAPH_STORE") or DEFAULT_STORE).strip()
    if text in ("memory:", "memory://", "memory"):
        return StoreSpec("memory", "")
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    path = ""
    if not sep and text and ":" not in text.split("/", 1)[0]:
        scheme, path = "sqlite", _path(text)  # a bare path
    elif sep and scheme in ("sqlite", "file"):
        path = _path(rest)
    elif sep and scheme in ("postgresql", "postgres") and rest:
        return StoreSpec("postgresql", text)
    if path and scheme in ("sqlite", "file"):
        return StoreSpec("sqlite" if scheme == "sqlite" else "file", path)
    raise CliError(
        f"bad store URL {text!r}: use sqlite:///abs/path.db, sqlite:///./relative.db, "
        "file:///abs/dir, memory: or postgresql://..."
    )


def open_store(spec: StoreSpec) -> sg.CheckpointStore:
    """Open the store (creating the directory of a SQLite file or file store).

    Raises:
        CliError: the PostgreSQL store is not installed.
    """
    match spec.kind:
        case "sqlite":
            from stepgraph.stores.sqlite import SqliteCheckpointStore

            Path(spec.location).parent.mkdir(parents=True, exist_ok=True)
            return SqliteCheckpointStore(spec.location)
        case "file":
            from stepgraph.stores.file import FileCheckpointStore

            Path(spec.location).mkdir(parents=True, exist_ok=True)
            return FileCheckpointStore(spec.location)
        case "memory":
            return sg.MemoryCheckpointStore()
        case "postgresql":
            try:
                module = importlib.import_module("stepgraph.stores.postgres")
            except ImportError as exc:
                raise CliError(
                    f"postgresql:// needs the PostgreSQL store, which this install lacks ({exc})"
                ) from exc
            try:
                dsn, schema = postgres_dsn(spec.location)
            except ValueError as exc:
                raise CliError(str(exc)) from None
            store: sg.CheckpointStore = module.PostgresCheckpointStore(dsn, schema=schema)
            return store


async def require_session(store: sg.CheckpointStore, spec: StoreSpec, session_id: str) -> None:
    """Raise `CliError(NOT_FOUND)` when the store holds no checkpoint of the session."""
    if not await store.list(session_id, limit=1):
        raise CliError(f"no session {session_id!r} in {spec.url}", ExitCode.NOT_FOUND)


def missing_session(spec: StoreSpec, session_id: str) -> CliError:
    """The error for a session asked of a store that does not exist yet."""
    return CliError(
        f"no session {session_id!r}: there is no store at {spec.url}", ExitCode.NOT_FOUND
    )


class SessionIndex:
    """`session id -> workflow target`, kept beside a durable store (none for memory:)."""

    def __init__(self, spec: StoreSpec) -> None:
        self.path: Path | None = None
        if spec.kind == "sqlite":
            self.path = Path(spec.location + "-sessions.json")
        elif spec.kind == "file":
            self.path = Path(spec.location) / "sessions.json"

    @staticmethod
    def _parse(text: str) -> dict[str, Any]:
        try:
            data: object = json.loads(text) if text.strip() else {}
        except ValueError:
            return {}  # a torn write: the index is only a convenience
        if isinstance(data, dict):
            sessions = cast(dict[str, Any], data).get("sessions")
            if isinstance(sessions, dict):
                return cast(dict[str, Any], sessions)
        return {}

    def lookup(self, session_id: str) -> str | None:
        """The target remembered for the session, or None."""
        if self.path is None:
            return None
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return None
        entry: object = self._parse(text).get(session_id)
        target = cast(dict[str, object], entry).get("workflow") if isinstance(entry, dict) else None
        return target if isinstance(target, str) else None

    def remember(self, session_id: str, target: str) -> None:
        """Record the target of a session (atomically with other `stepgraph` processes)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            sessions = self._parse(f.read())
            if sessions.get(session_id) == {"workflow": target}:
                return
            sessions[session_id] = {"workflow": target}
            f.seek(0)
            f.truncate()
            f.write(json.dumps({"version": 1, "sessions": sessions}, indent=1, sort_keys=True))
            f.flush()
            with contextlib.suppress(OSError):
                os.fsync(f.fileno())
