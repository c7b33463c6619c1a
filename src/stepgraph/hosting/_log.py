"""The hosting log: responses, conversations and sessions, in a small SQLite database.

Checkpoints stay in the workflow's store; this log maps the ids clients hold
(`resp_...`, `conv_...`) to a session and the checkpoint to continue from, and
keeps each response's body and input items for `GET /v1/responses/{id}` and
item listings. It uses WAL with `synchronous=NORMAL`: a process crash loses
nothing; an OS crash may lose the last few records, in which case their ids
answer 404 (never a silent fresh start). `":memory:"` keeps it in memory.
Calls run inline on the event loop's thread, like the SQLite checkpoint store.

Schema versions (`PRAGMA user_version`): 0 had no owners; 1 adds an `owner`
column (the creator's identity, `_auth.Principal`) to every table, NULL for
rows written before it, which only admins see. A file of a newer version is
refused.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "SCHEMA_VERSION",
    "ConversationRecord",
    "HostingLog",
    "ResponseLog",
    "ResponseRecord",
    "answer_needle",
]

SCHEMA_VERSION = 1
"""The hosting log's schema version (SQLite and PostgreSQL): 1 records owners."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, origin TEXT NOT NULL,
    label TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, session_id TEXT NOT NULL, created_at INTEGER NOT NULL,
    metadata TEXT NOT NULL, head_response TEXT, head_checkpoint TEXT
);
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL,
    conversation_id TEXT, checkpoint_id TEXT, body TEXT NOT NULL, input_items TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_conversation ON responses (conversation_id, seq);
CREATE INDEX IF NOT EXISTS responses_session ON responses (session_id, seq);
"""

_OWNERS = """
ALTER TABLE sessions ADD COLUMN owner TEXT;
ALTER TABLE conversations ADD COLUMN owner TEXT;
ALTER TABLE responses ADD COLUMN owner TEXT;
CREATE INDEX IF NOT EXISTS sessions_owner ON sessions (owner, seq);
"""

_COLUMNS = "id, session_id, conversation_id, checkpoint_id, body, input_items, owner"


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """One response: its session, the checkpoint it ended on, its body and input items.

    Attributes:
        id: the response id (`resp_...`).
        session_id: the workflow session the response ran in.
        conversation_id: the conversation it belongs to, or None.
        checkpoint_id: the checkpoint a continuation restores (None: the session's
            clean initial state).
        body: the Response object as sent to the client.
        input_items: the request's input items, each with an `id`.
        owner: the identity that created it (None: recorded before owners were).
    """

    id: str
    session_id: str
    conversation_id: str | None
    checkpoint_id: str | None
    body: dict[str, Any]
    input_items: list[dict[str, Any]]
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """A conversation: one session with a moving head.

    Attributes:
        id: the conversation id (`conv_...`), also its session id.
        session_id: the workflow session.
        created_at: Unix seconds.
        metadata: the client's metadata.
        head_response: the last response of the conversation, or None.
        head_checkpoint: the checkpoint the next turn continues from, or None.
        owner: the identity that created it (None: recorded before owners were).
    """

    id: str
    session_id: str
    created_at: int
    metadata: dict[str, str]
    head_response: str | None
    head_checkpoint: str | None
    owner: str | None = None


class HostingLog(Protocol):
    """What the host needs of a hosting log: `ResponseLog` (SQLite, one process) or
    `PostgresResponseLog` (shared by every replica; `shared` is True).

    A conversation's head only ever moves from the response a turn continued from
    (`put_response(..., prior_head=)`), checked in the same transaction: a replica
    that lost its request lock while paused, and records its turn after others
    answered, cannot move the head back. Its response is kept (retrievable by id)
    but is not one of the conversation's.
    """

    shared: bool

    def close(self) -> None: ...
    def add_session(
        self, session_id: str, origin: str, label: str, owner: str | None = None
    ) -> None: ...
    def sessions(self, limit: int = 200, *, owner: str | None = None) -> list[dict[str, Any]]: ...
    def has_session(self, session_id: str) -> bool: ...
    def session_owner(self, session_id: str) -> str | None: ...
    def put_response(
        self, rec: ResponseRecord, *, origin: str, label: str, prior_head: str | None
    ) -> bool: ...
    def get_response(self, response_id: str) -> ResponseRecord | None: ...
    def responses_of(
        self, *, session_id: str | None = None, conversation_id: str | None = None
    ) -> list[ResponseRecord]: ...
    def delete_response(self, response_id: str) -> bool: ...
    def answers_to(self, session_id: str, call_id: str) -> list[ResponseRecord]: ...
    def put_conversation(self, conv: ConversationRecord) -> None: ...
    def get_conversation(self, conversation_id: str) -> ConversationRecord | None: ...
    def set_conversation_metadata(self, conversation_id: str, metadata: dict[str, str]) -> None: ...
    def delete_conversation(self, conversation_id: str) -> bool: ...


class ResponseLog:
    """Responses, conversations and known sessions (see the module docstring).

    Args:
        path: the database file, or ":memory:".
    """

    shared = False
    """One process uses the file (see `HostingLog`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn, self.path)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the database connection (it reopens on next use)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- sessions ---------------------------------------------------------------------

    def add_session(
        self, session_id: str, origin: str, label: str, owner: str | None = None
    ) -> None:
        """Remember a session the server opened, and who opened it (ignored when already
        known: a session keeps its first owner).
        """
        self._db().execute(
            "INSERT OR IGNORE INTO sessions (id, origin, label, created_at, owner) "
            "VALUES (?, ?, ?, ?, ?)",
            (session_id, origin, label[:200], time.time(), owner),
        )

    def sessions(self, limit: int = 200, *, owner: str | None = None) -> list[dict[str, Any]]:
        """Known sessions, newest first: every one, or only those `owner` opened."""
        where = "" if owner is None else "WHERE owner = ? "
        params: tuple[Any, ...] = (limit,) if owner is None else (owner, limit)
        rows = self._db().execute(
            f"SELECT id, origin, label, created_at FROM sessions {where}ORDER BY seq DESC LIMIT ?",
            params,
        )
        return [
            {"id": sid, "origin": origin, "label": label, "created_at": at}
            for sid, origin, label, at in rows
        ]

    def has_session(self, session_id: str) -> bool:
        """Whether the server opened this session."""
        row = self._db().execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row is not None

    def session_owner(self, session_id: str) -> str | None:
        """Who opened the session (None: unknown, or opened before owners were kept)."""
        row = (
            self._db().execute("SELECT owner FROM sessions WHERE id = ?", (session_id,)).fetchone()
        )
        return None if row is None else row[0]

    # -- responses --------------------------------------------------------------------

    def put_response(
        self, rec: ResponseRecord, *, origin: str, label: str, prior_head: str | None
    ) -> bool:
        """Record a finished response (and its session), and move its conversation's head
        to it while the head is still `prior_head`, the response the turn continued
        from (see `HostingLog`). True when the head moved.
        """
        db = self._db()
        db.execute("BEGIN")
        try:
            moved = False
            if rec.conversation_id is not None:
                moved = (
                    db.execute(
                        "UPDATE conversations SET head_response = ?, head_checkpoint = ? "
                        "WHERE id = ? AND head_response IS ?",
                        (rec.id, rec.checkpoint_id, rec.conversation_id, prior_head),
                    ).rowcount
                    > 0
                )
            db.execute(
                "INSERT OR IGNORE INTO sessions (id, origin, label, created_at, owner) "
                "VALUES (?, ?, ?, ?, ?)",
                (rec.session_id, origin, label[:200], time.time(), rec.owner),
            )
            db.execute(
                f"INSERT OR REPLACE INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.id,
                    rec.session_id,
                    rec.conversation_id if moved else None,
                    rec.checkpoint_id,
                    json.dumps(rec.body, separators=(",", ":")),
                    json.dumps(rec.input_items, separators=(",", ":")),
                    rec.owner,
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return moved

    def get_response(self, response_id: str) -> ResponseRecord | None:
        """The recorded response, or None."""
        row = (
            self._db()
            .execute(
                f"SELECT {_COLUMNS} FROM responses WHERE id = ?",
                (response_id,),
            )
            .fetchone()
        )
        return None if row is None else _response(row)

    def responses_of(
        self, *, session_id: str | None = None, conversation_id: str | None = None
    ) -> list[ResponseRecord]:
        """Responses of a session or a conversation, oldest first."""
        column, value = (
            ("conversation_id", conversation_id)
            if conversation_id is not None
            else ("session_id", session_id)
        )
        rows = self._db().execute(
            f"SELECT {_COLUMNS} FROM responses WHERE {column} = ? ORDER BY seq",
            (value,),
        )
        return [_response(r) for r in rows]

    def delete_response(self, response_id: str) -> bool:
        """Forget a response; True when it existed."""
        cur = self._db().execute("DELETE FROM responses WHERE id = ?", (response_id,))
        return cur.rowcount > 0

    def answers_to(self, session_id: str, call_id: str) -> list[ResponseRecord]:
        """Responses of a session whose input answers `call_id`, oldest first."""
        rows = self._db().execute(
            f"SELECT {_COLUMNS} FROM responses "
            "WHERE session_id = ? AND instr(input_items, ?) > 0 ORDER BY seq",
            (session_id, answer_needle(call_id)),
        )
        return [_response(r) for r in rows]

    # -- conversations ----------------------------------------------------------------

    def put_conversation(self, conv: ConversationRecord) -> None:
        """Create a conversation (and remember its session)."""
        db = self._db()
        db.execute(
            "INSERT INTO conversations (id, session_id, created_at, metadata, head_response, "
            "head_checkpoint, owner) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                conv.id,
                conv.session_id,
                conv.created_at,
                json.dumps(conv.metadata),
                conv.head_response,
                conv.head_checkpoint,
                conv.owner,
            ),
        )
        self.add_session(conv.session_id, "conversation", conv.id, conv.owner)

    def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        """The conversation, or None."""
        row = (
            self._db()
            .execute(
                "SELECT id, session_id, created_at, metadata, head_response, head_checkpoint, "
                "owner FROM conversations WHERE id = ?",
                (conversation_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        cid, sid, at, meta, head_r, head_c, owner = row
        return ConversationRecord(cid, sid, at, json.loads(meta), head_r, head_c, owner)

    def set_conversation_metadata(self, conversation_id: str, metadata: dict[str, str]) -> None:
        """Replace a conversation's metadata."""
        self._db().execute(
            "UPDATE conversations SET metadata = ? WHERE id = ?",
            (json.dumps(metadata), conversation_id),
        )

    def delete_conversation(self, conversation_id: str) -> bool:
        """Forget a conversation; True when it existed (its responses stay readable)."""
        cur = self._db().execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return cur.rowcount > 0


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file to `SCHEMA_VERSION` (one transaction; refuse a newer file)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the hosting log {path} has schema version {version}; this stepgraph "
                f"reads version {SCHEMA_VERSION} (upgrade stepgraph)"
            )
        if version < SCHEMA_VERSION:
            for statement in (_SCHEMA + _OWNERS).split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def answer_needle(call_id: str) -> str:
    """The text a `function_call_output` item answering `call_id` holds in stored input
    items (compact JSON, `ensure_ascii`): inside a string a quote is escaped, so only
    an item's own `call_id` key matches.
    """
    return '"call_id":' + json.dumps(call_id)


def _response(row: Any) -> ResponseRecord:
    rid, sid, conv, cp, body, items, owner = row
    return ResponseRecord(rid, sid, conv, cp, json.loads(body), json.loads(items), owner)
