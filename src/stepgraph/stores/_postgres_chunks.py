"""Chunks for `PostgresCheckpointStore` (schema version 3): what makes it a `ChunkStore`.

```
stepgraph_chunks(session_id, id, data BYTEA, PRIMARY KEY (session_id, id))
stepgraph_chunk_refs(session_id, checkpoint_id, chunk_id, PRIMARY KEY (checkpoint_id, chunk_id))
    index (session_id, chunk_id)                    -- is a chunk still named?
```

A chunk is kept once per session; the refs name, for each stored record, the
chunks that keep it alive: the ones its record names (`_record.mentioned`) and
the ones its save brought (`Checkpoint.chunks`). Each write is ONE statement
(so one transaction) whose data-modifying CTEs all see the snapshot taken
before it: a save writes its record, chunks and refs (a fenced save only when
its fenced insert happened: they select `FROM saved`) and frees the chunks
only the replaced refs of a re-saved id named; `delete` deletes the records,
their activation records, their refs and the chunks among those no other ref
names. Which refs remain is judged against that snapshot, leaving out the
refs the statement itself deletes.

`load` reads the chain (one query), then the chunks the whole references (one
query with `= ANY`). Chunks are content-addressed, so a chunk found is the
right one whichever snapshot found it; only a missing one (a concurrent
`delete` between the two queries) could mislead, and then both queries run
again in one REPEATABLE READ snapshot before `_record.attach` decides.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from .._checkpoint import Checkpoint
from . import _record

__all__ = ["MIGRATION", "STATEMENTS", "WRITES", "chunk_params", "fetch", "read"]

_Conn = AsyncConnection[TupleRow]

MIGRATION: LiteralString = """CREATE TABLE {s}.stepgraph_chunks (session_id text NOT NULL,
        id text NOT NULL, data bytea NOT NULL, PRIMARY KEY (session_id, id));
    CREATE TABLE {s}.stepgraph_chunk_refs (session_id text NOT NULL,
        checkpoint_id text NOT NULL, chunk_id text NOT NULL,
        PRIMARY KEY (checkpoint_id, chunk_id));
    CREATE INDEX stepgraph_chunk_refs_chunk ON {s}.stepgraph_chunk_refs (session_id, chunk_id)"""
"""Upgrades a version-2 database to version 3."""

# The tail of a save statement after its `saved AS (INSERT ... RETURNING id)` CTE.
WRITES: LiteralString = (
    "stale AS (DELETE FROM {s}.stepgraph_chunk_refs AS r USING saved "
    "WHERE r.checkpoint_id = saved.id AND r.chunk_id <> ALL(%(refs)s::text[]) "
    "RETURNING r.session_id, r.chunk_id), "
    "freed AS (DELETE FROM {s}.stepgraph_chunks AS c USING stale "
    "WHERE c.session_id = stale.session_id AND c.id = stale.chunk_id AND NOT EXISTS "
    "(SELECT FROM {s}.stepgraph_chunk_refs AS o WHERE o.session_id = stale.session_id "
    "AND o.chunk_id = stale.chunk_id AND o.checkpoint_id <> %(id)s)), "
    "chunks AS (INSERT INTO {s}.stepgraph_chunks (session_id, id, data) "
    "SELECT %(sid)s, c.id, c.data FROM saved, "
    "unnest(%(cids)s::text[], %(cdata)s::bytea[]) AS c(id, data) "
    "ON CONFLICT (session_id, id) DO NOTHING), "
    "refs AS (INSERT INTO {s}.stepgraph_chunk_refs (session_id, checkpoint_id, chunk_id) "
    "SELECT %(sid)s, saved.id, r.id FROM saved, unnest(%(refs)s::text[]) AS r(id) "
    "ON CONFLICT (checkpoint_id, chunk_id) DO NOTHING) "
    "SELECT 1 FROM saved"
)

STATEMENTS: dict[str, LiteralString] = {
    "delete": "WITH gone AS (DELETE FROM {s}.stepgraph_checkpoints WHERE id = ANY(%(ids)s) "
    "RETURNING session_id, id), "
    "records AS (DELETE FROM {s}.stepgraph_records AS r USING gone "
    "WHERE r.session_id = gone.session_id AND r.base_id = gone.id), "
    "dropped AS (DELETE FROM {s}.stepgraph_chunk_refs WHERE checkpoint_id = ANY(%(ids)s) "
    "RETURNING session_id, chunk_id) "
    "DELETE FROM {s}.stepgraph_chunks AS c "
    "USING (SELECT DISTINCT session_id, chunk_id FROM dropped) AS d "
    "WHERE c.session_id = d.session_id AND c.id = d.chunk_id AND NOT EXISTS "
    "(SELECT FROM {s}.stepgraph_chunk_refs AS o WHERE o.session_id = d.session_id "
    "AND o.chunk_id = d.chunk_id AND o.checkpoint_id <> ALL(%(ids)s))",
    "delete_session": "WITH records AS (DELETE FROM {s}.stepgraph_records "
    "WHERE session_id = %(sid)s), "
    "refs AS (DELETE FROM {s}.stepgraph_chunk_refs WHERE session_id = %(sid)s), "
    "chunks AS (DELETE FROM {s}.stepgraph_chunks WHERE session_id = %(sid)s) "
    "DELETE FROM {s}.stepgraph_checkpoints WHERE session_id = %(sid)s",
    "load_chunks": "SELECT id, data FROM {s}.stepgraph_chunks "
    "WHERE session_id = %s AND id = ANY(%s)",
}


def chunk_params(cp: Checkpoint) -> dict[str, Any]:
    """The parameters `WRITES` takes for a save of `cp`."""
    return {
        "refs": sorted(_record.mentioned(cp) | cp.chunks.keys()),
        "cids": list(cp.chunks),
        "cdata": list(cp.chunks.values()),
    }


async def fetch(
    conn: _Conn, query: LiteralString, session_id: str, ids: Collection[str]
) -> dict[str, bytes]:
    """The session's chunks among `ids` (`query` is the store's `load_chunks`)."""
    cur = await conn.execute(query, (session_id, list(ids)), binary=True)
    return {str(i): bytes(data) for i, data in await cur.fetchall()}


async def read(
    conn: _Conn,
    chain: tuple[LiteralString, str],
    chunks: LiteralString,
    resolve: Callable[[list[TupleRow]], Checkpoint],
) -> Checkpoint | None:
    """The whole checkpoint the `chain` query (and its key) anchors at, with its chunks."""
    found = await _read(conn, chain, chunks, resolve)
    if found is not None and not found[0].chunk_ids() <= found[1].keys():
        async with conn.transaction():  # a delete ran in between? ask one snapshot
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            found = await _read(conn, chain, chunks, resolve)
    return None if found is None else _record.attach(*found)


async def _read(
    conn: _Conn,
    chain: tuple[LiteralString, str],
    chunks: LiteralString,
    resolve: Callable[[list[TupleRow]], Checkpoint],
) -> tuple[Checkpoint, dict[str, bytes]] | None:
    rows = await (await conn.execute(chain[0], (chain[1],), binary=True)).fetchall()
    if not rows:
        return None
    cp = resolve(rows)
    ids = cp.chunk_ids()
    return cp, (await fetch(conn, chunks, cp.info.session_id, ids) if ids else {})
