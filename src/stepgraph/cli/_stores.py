"""The `--store` of a command, and the index that remembers which workflow file each session runs.

`--store` takes what `stepgraph.stores.open_store` takes (`sqlite:///abs/runs.db`,
`sqlite:///./rel/runs.db` or a bare path, `file:///dir`, `memory:`,
`postgresql://...?schema=name`), so `stepgraph run` and `stepgraph serve` given
the same URL open the same store; relative paths are made absolute here.

`respond`, `resume` and `checkpoints prune` need the workflow of a session;
`stepgraph run` remembers it in a small JSON index beside the store
(`<db>-sessions.json`, or `sessions.json` in a file store's directory), so
that the target need not be repeated. The index is a convenience: a target
given on the command line always wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, cast

import stepgraph as sg
from stepgraph.stores import StoreURL
from stepgraph.stores import open_store as _open

from ._exit import CliError, ExitCode

__all__ = [
    "DEFAULT_STORE",
    "SessionIndex",
    "exists",
    "missing_session",
    "open_store",
    "parse_store_url",
    "require_session",
]

DEFAULT_STORE = "sqlite:///./.stepgraph/runs.db"
"""The store when neither `--store` nor `STEPGRAPH_STORE` names one."""


def parse_store_url(url: str | None) -> StoreURL:
    """Parse `--store` (default: `STEPGRAPH_STORE`, then `DEFAULT_STORE`), paths made absolute.

    Raises:
        CliError: the URL is not one `stepgraph.stores.open_store` takes.
    """
    text = url or os.environ.get("STEPGRAPH_STORE") or DEFAULT_STORE
    try:
        return StoreURL.parse(text).absolute()
    except ValueError as exc:
        raise CliError(str(exc)) from None


def exists(spec: StoreURL) -> bool:
    """Whether anything was ever saved there (memory and postgresql: assumed)."""
    if spec.kind in ("sqlite", "file"):
        return os.path.exists(spec.location)
    return True


def open_store(spec: StoreURL) -> sg.CheckpointStore:
    """Open the store (creating the directory of a SQLite file or file store).

    Raises:
        CliError: the PostgreSQL store is not installed.
    """
    try:
        return _open(spec)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


async def require_session(store: sg.CheckpointStore, spec: StoreURL, session_id: str) -> None:
    """Raise `CliError(NOT_FOUND)` when the store holds no checkpoint of the session."""
    if not await store.list(session_id, limit=1):
        raise CliError(f"no session {session_id!r} in {spec.url}", ExitCode.NOT_FOUND)


def missing_session(spec: StoreURL, session_id: str) -> CliError:
    """The error for a session asked of a store that does not exist yet."""
    return CliError(
        f"no session {session_id!r}: there is no store at {spec.url}", ExitCode.NOT_FOUND
    )


class SessionIndex:
    """`session id -> workflow target`, kept beside a durable store (none for memory:)."""

    def __init__(self, spec: StoreURL) -> None:
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
