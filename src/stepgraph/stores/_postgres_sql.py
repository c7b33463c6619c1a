"""The SQL of `PostgresCheckpointStore`: its migrations and statements, one home for both.

Every statement names its tables as `{s}.stepgraph_...`; `in_schema` puts the
quoted schema name in. `MIGRATIONS[n - 1]` upgrades a database to version `n`.
"""

from __future__ import annotations

from typing import Final, LiteralString, cast

from psycopg import sql

from . import _postgres_chunks

__all__ = ["CHANNEL", "MIGRATIONS", "STATEMENTS", "in_schema"]

CHANNEL: Final = "stepgraph_lease"
"""The LISTEN/NOTIFY channel on which a released lease wakes waiting `acquire` calls."""

MIGRATIONS: tuple[LiteralString, ...] = (
    """CREATE TABLE {s}.stepgraph_checkpoints (id text PRIMARY KEY, seq bigserial NOT NULL,
        session_id text NOT NULL, parent_id text, superstep bigint NOT NULL,
        created_at text NOT NULL, is_full boolean NOT NULL, crc bigint NOT NULL,
        record bytea NOT NULL);
    CREATE INDEX stepgraph_checkpoints_session ON {s}.stepgraph_checkpoints (session_id, seq);
    CREATE TABLE {s}.stepgraph_leases (session_id text PRIMARY KEY, owner text,
        token bigint NOT NULL, expires_at double precision NOT NULL)""",  # version 1
    """CREATE TABLE {s}.stepgraph_records (session_id text NOT NULL, base_id text NOT NULL,
        key text NOT NULL, data bytea NOT NULL,
        PRIMARY KEY (session_id, base_id, key))""",  # version 2
    _postgres_chunks.MIGRATION,  # version 3
)

_NOW = "extract(epoch FROM clock_timestamp())"
_COLUMNS = "(id, session_id, parent_id, superstep, created_at, is_full, crc, record)"
_VALUES = "%(id)s, %(sid)s, %(parent)s, %(superstep)s, %(at)s, %(full)s, %(crc)s, %(record)s"
_UPSERT = """ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id,
    parent_id = excluded.parent_id, superstep = excluded.superstep,
    created_at = excluded.created_at, is_full = excluded.is_full, crc = excluded.crc,
    record = excluded.record"""


def _chain(anchor: LiteralString) -> LiteralString:
    """One recursive query: a checkpoint and its delta chain back to the nearest full one."""
    return (
        "WITH RECURSIVE chain AS ((SELECT id, parent_id, is_full, crc, record, 0 AS n FROM "
        "{s}.stepgraph_checkpoints " + anchor + ") UNION ALL "
        "SELECT c.id, c.parent_id, c.is_full, c.crc, c.record, chain.n + 1 "
        "FROM {s}.stepgraph_checkpoints AS c JOIN chain ON c.id = chain.parent_id "
        "WHERE NOT chain.is_full AND chain.n < 10000) "
        "SELECT id, is_full, crc, record FROM chain ORDER BY n"
    )


STATEMENTS: dict[str, LiteralString] = {
    "load": _chain("WHERE id = %s"),
    "latest": _chain("WHERE session_id = %s ORDER BY seq DESC LIMIT 1"),
    # The record's upsert, then its chunks and refs (`_postgres_chunks.WRITES`): one row.
    "save": f"WITH saved AS (INSERT INTO {{s}}.stepgraph_checkpoints {_COLUMNS} SELECT {_VALUES} "
    f"FROM (SELECT pg_advisory_xact_lock(hashtextextended(%(sid)s, 0))) AS serial {_UPSERT} "
    f"RETURNING id), {_postgres_chunks.WRITES}",
    # No row (and nothing written) unless the lease is the session's current one.
    "fenced_save": "WITH lease AS (SELECT 1 FROM {s}.stepgraph_leases WHERE session_id = %(sid)s "
    "AND token = %(token)s AND owner = %(owner)s FOR UPDATE), "
    f"saved AS (INSERT INTO {{s}}.stepgraph_checkpoints {_COLUMNS} SELECT {_VALUES} FROM lease "
    f"{_UPSERT} RETURNING id), {_postgres_chunks.WRITES}",
    "list": "SELECT id, parent_id, session_id, superstep, created_at FROM "
    "{s}.stepgraph_checkpoints WHERE session_id = %s ORDER BY seq DESC LIMIT %s",
    # The head of each session, newest first: the distinct session ids by a skip scan of
    # the (session_id, seq) index, each one's max(seq), then the page's rows. Index
    # seeks only, O(sessions x log checkpoints); a GROUP BY plan reads the whole table.
    "list_sessions": "WITH RECURSIVE ids AS ((SELECT session_id FROM {s}.stepgraph_checkpoints "
    "ORDER BY session_id LIMIT 1) UNION ALL SELECT (SELECT n.session_id FROM "
    "{s}.stepgraph_checkpoints AS n WHERE n.session_id > ids.session_id ORDER BY n.session_id "
    "LIMIT 1) FROM ids WHERE ids.session_id IS NOT NULL), "
    "heads AS (SELECT ids.session_id, (SELECT max(m.seq) FROM {s}.stepgraph_checkpoints AS m "
    "WHERE m.session_id = ids.session_id) AS seq FROM ids WHERE ids.session_id IS NOT NULL), "
    "page AS (SELECT session_id, seq FROM heads WHERE %(before)s::text IS NULL OR seq < "
    "(SELECT max(b.seq) FROM {s}.stepgraph_checkpoints AS b WHERE b.session_id = %(before)s) "
    "ORDER BY seq DESC LIMIT %(limit)s) "
    "SELECT c.id, c.parent_id, c.session_id, c.superstep, c.created_at FROM page "
    "JOIN {s}.stepgraph_checkpoints AS c ON c.session_id = page.session_id AND c.seq = page.seq "
    "ORDER BY page.seq DESC",
    "has_session": "SELECT 1 FROM {s}.stepgraph_checkpoints WHERE session_id = %s LIMIT 1",
    **_postgres_chunks.STATEMENTS,  # delete, delete_session, load_chunks
    "save_record": "INSERT INTO {s}.stepgraph_records (session_id, base_id, key, data) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (session_id, base_id, key) "
    "DO UPDATE SET data = excluded.data",
    "load_records": "SELECT key, data FROM {s}.stepgraph_records "
    "WHERE session_id = %s AND base_id = %s",
    "delete_records": "DELETE FROM {s}.stepgraph_records WHERE session_id = %(sid)s "
    "AND base_id = coalesce(%(base)s, base_id)",
    "acquire": "INSERT INTO {s}.stepgraph_leases AS l (session_id, owner, token, expires_at) "
    f"VALUES (%(sid)s, %(owner)s, 1, {_NOW} + %(ttl)s) "
    "ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner, "
    "token = l.token + 1, expires_at = excluded.expires_at "
    f"WHERE l.owner IS NULL OR l.owner = excluded.owner OR l.expires_at <= {_NOW} "
    "RETURNING token, expires_at",
    "takeover": "UPDATE {s}.stepgraph_leases SET owner = %(owner)s, token = token + 1, "
    f"expires_at = {_NOW} + %(ttl)s WHERE session_id = %(sid)s AND owner = %(dead)s "
    "RETURNING token, expires_at",
    "holder": f"SELECT owner, token, expires_at - {_NOW} FROM {{s}}.stepgraph_leases "
    "WHERE session_id = %s",
    "renew": f"UPDATE {{s}}.stepgraph_leases SET expires_at = {_NOW} + %(ttl)s "
    "WHERE session_id = %(sid)s AND token = %(token)s AND owner = %(owner)s "
    "RETURNING expires_at",
    "release": "WITH gone AS (UPDATE {s}.stepgraph_leases SET owner = NULL, expires_at = 0 "
    "WHERE session_id = %(sid)s AND token = %(token)s AND owner = %(owner)s "
    f"RETURNING 1) SELECT pg_notify('{CHANNEL}', %(key)s) FROM gone",
    "exists": "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %s), EXISTS (SELECT "
    "FROM pg_tables WHERE schemaname = %s AND tablename = 'stepgraph_schema')",
    "create_schema": "CREATE SCHEMA {s}",
    "versions": "CREATE TABLE IF NOT EXISTS {s}.stepgraph_schema (version integer PRIMARY KEY, "
    "applied_at timestamptz NOT NULL DEFAULT now())",
    "version": "SELECT coalesce(max(version), 0) FROM {s}.stepgraph_schema",
    "applied": "INSERT INTO {s}.stepgraph_schema (version) VALUES (%s)",
}


def in_schema(template: LiteralString, schema: str) -> LiteralString:
    """`template` with `{s}` replaced by the quoted schema name."""
    return cast(LiteralString, sql.SQL(template).format(s=sql.Identifier(schema)).as_string(None))
