"""The SQL stores as `ChunkStore`s: a growing history costs what changed, and chunks go
with the last record that names them (prune, delete_session, refused saves)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from tests.stores.chunk_support import check_histories, chunked_checkpoint, item, run_growing
from tests.stores.pg_support import RUN, drop_schemas, require_dsn

import stepgraph as sg
from stepgraph import CheckpointDecodeError
from stepgraph._store import chunk_store
from stepgraph.stores import LeaseLostError
from stepgraph.stores.sqlite import SqliteCheckpointStore


class Harness:
    """Opens stores on one database and counts its rows."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.path = tmp_path / "cp.db"
        self.schema = f"{RUN}_chunks_{uuid.uuid4().hex[:8]}"
        self.dsn = require_dsn() if kind == "postgres" else ""

    def open(self) -> Any:
        if self.kind == "sqlite":
            return SqliteCheckpointStore(self.path)
        from stepgraph.stores.postgres import PostgresCheckpointStore

        return PostgresCheckpointStore(self.dsn, schema=self.schema, max_size=4)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.path)) as conn:
                return conn.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{self.schema}"')
            return conn.execute(sql).fetchall()

    def count(self, table: str, where: str = "TRUE") -> int:
        return int(self.query(f"SELECT count(*) FROM stepgraph_{table} WHERE {where}")[0][0])

    def unnamed(self) -> int:
        """Chunk rows no ref names (what `delete` must leave none of)."""
        return self.count(
            "chunks AS c",
            "NOT EXISTS (SELECT 1 FROM stepgraph_chunk_refs AS r "
            "WHERE r.session_id = c.session_id AND r.chunk_id = c.id)",
        )


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(request.param, tmp_path)
    yield harness
    if harness.kind == "postgres":
        drop_schemas(harness.dsn, harness.schema)


def test_a_growing_history_is_stored_as_chunks(db: Harness) -> None:
    async def main() -> None:
        async with db.open() as store:
            assert chunk_store(store) is not None
            await run_growing(store, "s", 300)
            lengths = await check_histories(store, "s")
            assert lengths[0] == 300
            assert len(lengths) == 301
            latest = await store.latest("s")
            assert latest is not None
            assert latest.chunks
            assert latest.chunk_ids() == set(latest.chunks)
            ids = [*latest.chunks, "no-such-chunk"]
            assert await store.load_chunks("s", ids) == dict(latest.chunks)
            assert await store.load_chunks("other", ids) == {}
        assert db.count("chunks") > 0
        assert db.unnamed() == 0
        async with db.open() as again:  # a reopened store loads it, chunks and all
            head = await again.latest("s")
            assert head is not None
            assert head.id == latest.id
            assert head.state["history"] == [item(i) for i in range(300)]
            assert dict(head.chunks) == dict(latest.chunks)

    asyncio.run(main())


def test_prune_frees_the_chunks_no_remaining_record_names(db: Harness) -> None:
    async def main() -> None:
        async with db.open() as store:
            session = await run_growing(store, "s", 300)
            before = db.count("chunks")
            await run_growing(store, "other", 40)  # another session's chunks stay put
            other = db.count("chunks", "session_id = 'other'")
            await session.prune(sg.Retention(keep_last=3))
            assert len(await check_histories(store, "s")) == 3
            kept = {info.id for info in await store.list("s")}
            refs = db.query("SELECT DISTINCT checkpoint_id FROM stepgraph_chunk_refs")
            assert {r[0] for r in refs} <= kept | {i.id for i in await store.list("other")}
            after = db.count("chunks", "session_id = 's'")
            print(f"\n{db.kind}: chunks of the session {before} before prune, {after} after")
            assert 0 < after < before
            assert db.unnamed() == 0
            assert db.count("chunks", "session_id = 'other'") == other
            await check_histories(store, "other")

    asyncio.run(main())


def test_delete_session_leaves_no_chunks(db: Harness) -> None:
    async def main() -> None:
        async with db.open() as store:
            await run_growing(store, "a", 80)
            await run_growing(store, "b", 80)
            await store.delete_session("a")
            assert db.count("chunks", "session_id = 'a'") == 0
            assert db.count("chunk_refs", "session_id = 'a'") == 0
            assert await store.latest("a") is None
            assert db.count("chunks", "session_id = 'b'") > 0
            await check_histories(store, "b")
            await store.delete_session("b")
            assert db.count("chunks") == db.count("chunk_refs") == 0

    asyncio.run(main())


def test_a_refused_fenced_save_leaves_no_chunks(db: Harness) -> None:
    async def main() -> None:
        lost = await chunked_checkpoint("x", "x-1")
        fine = await chunked_checkpoint("y", "y-1")
        assert lost.chunks
        assert fine.chunks
        async with db.open() as store:
            old = await store.acquire("x", "old-owner", 30.0)
            await store.release(old)
            await store.acquire("x", "new-owner", 30.0)
            with pytest.raises(LeaseLostError):
                await store.save(lost, lease=old)
            assert db.count("chunks") == db.count("chunk_refs") == 0
            # Refused alone in a commit it shares with a save that goes through.
            lease = await store.acquire("y", "me", 30.0)
            refused, saved = await asyncio.gather(
                store.save(lost, lease=old), store.save(fine, lease=lease), return_exceptions=True
            )
            assert isinstance(refused, LeaseLostError)
            assert saved is None
            assert db.count("chunks", "session_id = 'x'") == 0
            assert db.count("chunk_refs", "session_id = 'x'") == 0
            assert db.count("chunks", "session_id = 'y'") == len(fine.chunks)
            got = await store.load("y-1")
            assert got.state["history"] == fine.state["history"]

    asyncio.run(main())


def test_a_resaved_id_replaces_its_refs(db: Harness) -> None:
    async def main() -> None:
        cp = await chunked_checkpoint("s", "s-1")
        plain = await chunked_checkpoint("s", "s-1", n=3)  # too short to be chunked
        assert not plain.chunks
        async with db.open() as store:
            await store.save(cp)
            assert db.count("chunk_refs") == len(cp.chunks) > 0
            await store.save(plain)  # the same id, now naming no chunk
            assert db.count("chunk_refs") == db.count("chunks") == 0
            assert (await store.load("s-1")).state["history"] == plain.state["history"]

    asyncio.run(main())


def test_sqlite_bytes_per_superstep(tmp_path: Path) -> None:
    path, steps = tmp_path / "cp.db", 1000

    async def main() -> None:
        async with SqliteCheckpointStore(path) as store:
            await run_growing(store, "s", steps)
        # Closed: the WAL is checkpointed into the file and removed.
        size = os.path.getsize(path) + sum(
            os.path.getsize(p) for p in (f"{path}-wal", f"{path}-shm") if os.path.exists(p)
        )
        per_step = size / steps
        print(f"\nsqlite: {size} bytes after {steps} supersteps: {per_step:.0f} bytes/superstep")
        assert per_step < 4096
        async with SqliteCheckpointStore(path) as store:
            head = await store.latest("s")
            assert head is not None
            assert len(head.state["history"]) == steps

    asyncio.run(main())


def test_a_missing_chunk_raises_a_decode_error(db: Harness) -> None:
    async def main() -> None:
        cp = await chunked_checkpoint("s", "s-1")
        async with db.open() as store:
            await store.save(cp)
            gone = min(cp.chunks)
            if db.kind == "sqlite":
                with closing(sqlite3.connect(db.path)) as conn:
                    conn.execute("DELETE FROM stepgraph_chunks WHERE id = ?", (gone,))
                    conn.commit()
            else:
                db.query(f"DELETE FROM stepgraph_chunks WHERE id = '{gone}' RETURNING id")
            for read in (store.load("s-1"), store.latest("s")):
                with pytest.raises(CheckpointDecodeError, match="references 1 chunk"):
                    await read
            assert await store.load_chunks("s", [gone]) == {}

    asyncio.run(main())
