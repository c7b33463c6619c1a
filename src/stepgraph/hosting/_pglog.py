"""The hosting log in PostgreSQL: what `ResponseLog` keeps, shared by every replica.

With `PostgresCheckpointStore`, several `stepgraph serve` replicas share one
database; the ids clients hold (`resp_...`, `conv_...`) must then resolve on
any of them, so the log lives in the store's database and schema, in three
tables beside the checkpoints:

```
stepgraph_hosting_sessions(seq bigserial, id text UNIQUE, origin, label, created_at)
stepgraph_hosting_conversations(id text PRIMARY KEY, session_id, created_at, metadata,
                                head_response, head_checkpoint)
stepgraph_hosting_responses(seq bigserial, id text UNIQUE, session_id, conversation_id,
                            checkpoint_id, body, input_items)   -- indexes by conversation, session
stepgraph_hosting_version(version integer PRIMARY KEY)          -- one row per applied version
```

Version 1 adds an `owner` column to the three tables (the creator's identity,
NULL for rows from before, which only admins see), as `_log.SCHEMA_VERSION`;
a database of a newer version is refused.

Calls are synchronous, inline on the event loop's thread like the SQLite log
(one round trip each, ~0.1-0.3 ms on loopback), over one connection per
process that is reopened, and the call retried once, when it dropped (a
connection attempt gives up after `connect_timeout`, 10 s unless the DSN says). The
connection commits with `synchronous_commit = off`, as the SQLite log uses
`synchronous=NORMAL`: a replica's crash loses nothing (the server has every
record); a crash of the database server may lose the last records (their ids
then answer 404). The tables (and the schema) are created on first use when missing, under the
advisory lock the checkpoint store migrates under, so replicas starting
together do not race; a database user without `CREATE` can use existing ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, LiteralString, TypeVar, cast

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ._log import SCHEMA_VERSION, ConversationRecord, ResponseRecord, answer_needle

__all__ = ["PostgresResponseLog"]

_T = TypeVar("_T")
_Conn = psycopg.Connection[tuple[Any, ...]]

_TABLES = [f"stepgraph_hosting_{t}" for t in ("sessions", "conversations", "responses", "version")]
_SCHEMA = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
_READY = "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)"
_CREATE: LiteralString = """
CREATE TABLE IF NOT EXISTS {s}.stepgraph_hosting_sessions (
    seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, origin text NOT NULL,
    label text NOT NULL, created_at double precision NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.stepgraph_hosting_conversations (
    id text PRIMARY KEY, session_id text NOT NULL, created_at bigint NOT NULL,
    metadata text NOT NULL, head_response text, head_checkpoint text);
CREATE TABLE IF NOT EXISTS {s}.stepgraph_hosting_responses (
    seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, session_id text NOT NULL,
    conversation_id text, checkpoint_id text, body text NOT NULL, input_items text NOT NULL);
CREATE INDEX IF NOT EXISTS stepgraph_hosting_responses_conversation
    ON {s}.stepgraph_hosting_responses (conversation_id, seq);
CREATE INDEX IF NOT EXISTS stepgraph_hosting_responses_session
    ON {s}.stepgraph_hosting_responses (session_id, seq);
CREATE TABLE IF NOT EXISTS {s}.stepgraph_hosting_version (version integer PRIMARY KEY);
ALTER TABLE {s}.stepgraph_hosting_sessions ADD COLUMN IF NOT EXISTS owner text;
ALTER TABLE {s}.stepgraph_hosting_conversations ADD COLUMN IF NOT EXISTS owner text;
ALTER TABLE {s}.stepgraph_hosting_responses ADD COLUMN IF NOT EXISTS owner text;
CREATE INDEX IF NOT EXISTS stepgraph_hosting_sessions_owner
    ON {s}.stepgraph_hosting_sessions (owner, seq);
INSERT INTO {s}.stepgraph_hosting_version (version) VALUES (1) ON CONFLICT DO NOTHING
"""
_VERSION: LiteralString = "SELECT max(version) FROM {s}.stepgraph_hosting_version"

_RESPONSE = "SELECT id, session_id, conversation_id, checkpoint_id, body, input_items, owner FROM "
_STATEMENTS: dict[str, LiteralString] = {
    "add_session": "INSERT INTO {s}.stepgraph_hosting_sessions (id, origin, label, created_at, "
    "owner) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
    "sessions": "SELECT id, origin, label, created_at FROM {s}.stepgraph_hosting_sessions "
    "ORDER BY seq DESC LIMIT %s",
    "sessions_of": "SELECT id, origin, label, created_at FROM {s}.stepgraph_hosting_sessions "
    "WHERE owner = %s ORDER BY seq DESC LIMIT %s",
    "has_session": "SELECT 1 FROM {s}.stepgraph_hosting_sessions WHERE id = %s",
    "session_owner": "SELECT owner FROM {s}.stepgraph_hosting_sessions WHERE id = %s",
    "put_response": "INSERT INTO {s}.stepgraph_hosting_responses (id, session_id, "
    "conversation_id, checkpoint_id, body, input_items, owner) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, "
    "conversation_id = excluded.conversation_id, checkpoint_id = excluded.checkpoint_id, "
    "body = excluded.body, input_items = excluded.input_items, owner = excluded.owner",
    "move_head": "UPDATE {s}.stepgraph_hosting_conversations SET head_response = %s, "
    "head_checkpoint = %s WHERE id = %s AND head_response IS NOT DISTINCT FROM %s",
    "get_response": _RESPONSE + "{s}.stepgraph_hosting_responses WHERE id = %s",
    "of_conversation": _RESPONSE + "{s}.stepgraph_hosting_responses "
    "WHERE conversation_id = %s ORDER BY seq",
    "of_session": _RESPONSE + "{s}.stepgraph_hosting_responses WHERE session_id = %s ORDER BY seq",
    "delete_response": "DELETE FROM {s}.stepgraph_hosting_responses WHERE id = %s",
    "answers_to": _RESPONSE + "{s}.stepgraph_hosting_responses "
    "WHERE session_id = %s AND strpos(input_items, %s) > 0 ORDER BY seq",
    "put_conversation": "INSERT INTO {s}.stepgraph_hosting_conversations (id, session_id, "
    "created_at, metadata, head_response, head_checkpoint, owner) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
    "get_conversation": "SELECT id, session_id, created_at, metadata, head_response, "
    "head_checkpoint, owner FROM {s}.stepgraph_hosting_conversations WHERE id = %s",
    "set_metadata": "UPDATE {s}.stepgraph_hosting_conversations SET metadata = %s WHERE id = %s",
    "delete_conversation": "DELETE FROM {s}.stepgraph_hosting_conversations WHERE id = %s",
}


def _in_schema(template: LiteralString, schema: str) -> LiteralString:
    return cast(LiteralString, sql.SQL(template).format(s=sql.Identifier(schema)).as_string(None))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _label(text: str) -> str:
    """A session label PostgreSQL can store: at most 200 characters, no NUL."""
    return text[:200].replace("\x00", "\ufffd")


def _storable(key: str | None) -> bool:
    """Whether an id could be in a table.

    PostgreSQL text never holds NUL, so an id a client sends with one names nothing
    (and would make the query fail).
    """
    return key is None or "\x00" not in key


class PostgresResponseLog:
    """Responses, conversations and known sessions in PostgreSQL (see the module docstring).

    Args:
        dsn: a libpq connection string or URL (the checkpoint store's).
        schema: the schema holding the tables (the checkpoint store's).
    """

    shared = True
    """Every replica sees every record (see `HostingLog`)."""

    def __init__(self, dsn: str, *, schema: str = "public") -> None:
        self.dsn = dsn
        self.schema = schema
        self._sql: dict[str, LiteralString] = {
            name: _in_schema(text, schema) for name, text in _STATEMENTS.items()
        }
        self._conn: _Conn | None = None

    def _connect(self) -> _Conn:
        given = conninfo_to_dict(self.dsn)
        extra: dict[str, Any] = {"application_name": "stepgraph-hosting-log", "connect_timeout": 10}
        extra = {k: v for k, v in extra.items() if k not in given}  # the DSN's own settings win
        conn = psycopg.connect(self.dsn, autocommit=True, **extra)
        try:
            conn.execute("SET synchronous_commit = off")
            if self._missing(conn):  # checked first: a user without CREATE can use the tables
                with conn.transaction():
                    lock = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
                    conn.execute(lock, (f"stepgraph.migrate.{self.schema}",))  # the store's
                    if self._missing(conn):
                        if not conn.execute(_SCHEMA, (self.schema,)).fetchall():
                            conn.execute(_in_schema("CREATE SCHEMA {s}", self.schema))
                        conn.execute(_in_schema(_CREATE, self.schema))
        except BaseException:
            conn.close()
            raise
        return conn

    def _missing(self, conn: _Conn) -> bool:
        """Whether a table or a migration is missing (a newer schema is refused)."""
        row = conn.execute(_READY, (self.schema, _TABLES)).fetchone()
        if row is None or int(row[0]) < len(_TABLES):
            return True
        found = conn.execute(_in_schema(_VERSION, self.schema)).fetchone()
        version = 0 if found is None or found[0] is None else int(found[0])
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the hosting log in schema {self.schema!r} has version {version}; this "
                f"stepgraph reads version {SCHEMA_VERSION} (upgrade stepgraph)"
            )
        return version < SCHEMA_VERSION

    def _call(self, fn: Callable[[_Conn], _T]) -> _T:
        """`fn(connection)`, retried once on a new connection when the old one dropped."""
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            conn = self._conn
            try:
                return fn(conn)
            except psycopg.OperationalError:
                if attempt == 2 or not (conn.broken or conn.closed):
                    raise
                self._conn = None
                conn.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _rows(self, name: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        query = self._sql[name]

        def run(conn: _Conn) -> list[tuple[Any, ...]]:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

        return self._call(run)

    def _count(self, name: str, params: tuple[Any, ...]) -> int:
        query = self._sql[name]
        return self._call(lambda conn: conn.execute(query, params).rowcount)

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
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
        self._rows("add_session", (session_id, origin, _label(label), time.time(), owner))

    def sessions(self, limit: int = 200, *, owner: str | None = None) -> list[dict[str, Any]]:
        """Known sessions, newest first: every one, or only those `owner` opened."""
        if owner is not None and not _storable(owner):
            return []
        rows = (
            self._rows("sessions", (limit,))
            if owner is None
            else self._rows("sessions_of", (owner, limit))
        )
        return [
            {"id": sid, "origin": origin, "label": label, "created_at": at}
            for sid, origin, label, at in rows
        ]

    def session_owner(self, session_id: str) -> str | None:
        """Who opened the session (None: unknown, or opened before owners were kept)."""
        if not _storable(session_id):
            return None
        rows = self._rows("session_owner", (session_id,))
        return rows[0][0] if rows else None

    def has_session(self, session_id: str) -> bool:
        """Whether a replica opened this session."""
        return _storable(session_id) and bool(self._rows("has_session", (session_id,)))

    # -- responses --------------------------------------------------------------------

    def put_response(
        self, rec: ResponseRecord, *, origin: str, label: str, prior_head: str | None
    ) -> bool:
        """Record a finished response (and its session), and move its conversation's head
        to it while the head is still `prior_head` (see `HostingLog`), in one
        transaction. True when the head moved.
        """
        add, put, move = self._sql["add_session"], self._sql["put_response"], self._sql["move_head"]
        body, items = _dumps(rec.body), _dumps(rec.input_items)
        conv = rec.conversation_id

        def run(conn: _Conn) -> bool:
            with conn.transaction():
                conn.execute(add, (rec.session_id, origin, _label(label), time.time(), rec.owner))
                moved = False
                if conv is not None:
                    cur = conn.execute(move, (rec.id, rec.checkpoint_id, conv, prior_head))
                    moved = cur.rowcount > 0
                conn.execute(
                    put,
                    (
                        rec.id,
                        rec.session_id,
                        conv if moved else None,
                        rec.checkpoint_id,
                        body,
                        items,
                        rec.owner,
                    ),
                )
                return moved

        return self._call(run)

    def get_response(self, response_id: str) -> ResponseRecord | None:
        """The recorded response, or None."""
        if not _storable(response_id):
            return None
        rows = self._rows("get_response", (response_id,))
        return _response(rows[0]) if rows else None

    def responses_of(
        self, *, session_id: str | None = None, conversation_id: str | None = None
    ) -> list[ResponseRecord]:
        """Responses of a session or a conversation, oldest first."""
        if not (_storable(session_id) and _storable(conversation_id)):
            return []
        if conversation_id is not None:
            rows = self._rows("of_conversation", (conversation_id,))
        else:
            rows = self._rows("of_session", (session_id,))
        return [_response(r) for r in rows]

    def delete_response(self, response_id: str) -> bool:
        """Forget a response; True when it existed."""
        return _storable(response_id) and self._count("delete_response", (response_id,)) > 0

    def answers_to(self, session_id: str, call_id: str) -> list[ResponseRecord]:
        """Responses of a session whose input answers `call_id`, oldest first."""
        needle = answer_needle(call_id)
        if not (_storable(session_id) and _storable(needle)):
            return []
        return [_response(r) for r in self._rows("answers_to", (session_id, needle))]

    # -- conversations ----------------------------------------------------------------

    def put_conversation(self, conv: ConversationRecord) -> None:
        """Create a conversation (and remember its session)."""
        self._rows(
            "put_conversation",
            (
                conv.id,
                conv.session_id,
                conv.created_at,
                _dumps(conv.metadata),
                conv.head_response,
                conv.head_checkpoint,
                conv.owner,
            ),
        )
        self.add_session(conv.session_id, "conversation", conv.id, conv.owner)

    def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        """The conversation, or None."""
        if not _storable(conversation_id):
            return None
        rows = self._rows("get_conversation", (conversation_id,))
        if not rows:
            return None
        cid, sid, at, meta, head_r, head_c, owner = rows[0]
        return ConversationRecord(cid, sid, int(at), json.loads(meta), head_r, head_c, owner)

    def set_conversation_metadata(self, conversation_id: str, metadata: dict[str, str]) -> None:
        """Replace a conversation's metadata."""
        self._rows("set_metadata", (_dumps(metadata), conversation_id))

    def delete_conversation(self, conversation_id: str) -> bool:
        """Forget a conversation; True when it existed (its responses stay readable)."""
        return (
            _storable(conversation_id)
            and self._count("delete_conversation", (conversation_id,)) > 0
        )


def _response(row: tuple[Any, ...]) -> ResponseRecord:
    rid, sid, conv, cp, body, items, owner = row
    return ResponseRecord(rid, sid, conv, cp, json.loads(body), json.loads(items), owner)
