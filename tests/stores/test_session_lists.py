"""`list_sessions` specifics per store: what orders sessions, what it reads, who it blocks.

The rules every `SessionLister` keeps are in the conformance suite
(`testing.SESSION_CHECKS`, run by `test_conformance.py` and the PostgreSQL tests).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from tests.stores.pg_support import RUN, drop_schemas, require_dsn

from stepgraph import CheckpointDecodeError, CheckpointNotFoundError, serde
from stepgraph.stores import Checkpoint, CheckpointInfo, MemoryCheckpointStore, session_lister
from stepgraph.stores.file import FileCheckpointStore, log_name
from stepgraph.stores.sqlite import SqliteCheckpointStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def cp(session: str, cid: str, at: float, parent: str | None = None) -> Checkpoint:
    """A full checkpoint created `at` seconds after T0."""
    info = CheckpointInfo(cid, parent, session, 0, T0 + timedelta(seconds=at))
    return Checkpoint(info, "sig", "{}", "idle", MappingProxyType({"s:n": serde.encode(cid)}))


def heads(infos: list[CheckpointInfo]) -> list[tuple[str, str]]:
    return [(i.session_id, i.id) for i in infos]


# -- every store: save order, not time or id -------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_save_order_wins_over_created_at_and_ids(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        store: Any = (
            MemoryCheckpointStore()
            if kind == "memory"
            else SqliteCheckpointStore(tmp_path / "s.db")
        )
        async with store:
            # Each save carries an earlier time and a smaller id than the one before.
            for n, session in enumerate(["c", "a", "b", "a"]):
                await store.save(cp(session, f"z{9 - n}", at=-n))
            assert heads(await store.list_sessions()) == [("a", "z6"), ("b", "z7"), ("c", "z9")]
            assert heads(await store.list_sessions(before="b")) == [("c", "z9")]

    asyncio.run(main())


# -- SQLite ------------------------------------------------------------------------------


def raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


def test_sqlite_lists_sessions_from_the_index_alone(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            for n in range(30):
                await store.save(cp(f"s{n % 3}", f"c{n}", n))
        with raw(db) as conn:
            from stepgraph.stores.sqlite import _SESSIONS  # pyright: ignore[reportPrivateUsage]

            plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _SESSIONS, (None, 5))]
        # Seeks only: no step walks the table or the whole index.
        touching = [step for step in plan if "stepgraph_checkpoints" in step or " c " in step]
        assert touching, plan
        assert not [s for s in plan if s.startswith("SCAN") and "stepgraph_checkpoints" in s], plan
        assert all(s.startswith("SEARCH") for s in touching), plan

    asyncio.run(main())


def test_sqlite_list_sessions_reads_columns_not_record_blobs(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            await store.save(cp("a", "a1", 1))
            await store.save(cp("b", "b1", 2))
            with raw(db) as conn:
                conn.execute("UPDATE stepgraph_checkpoints SET record = x'00' WHERE id = 'b1'")
            with pytest.raises(CheckpointDecodeError):
                await store.latest("b")
            assert heads(await store.list_sessions()) == [("b", "b1"), ("a", "a1")]

    asyncio.run(main())


def test_sqlite_listing_leaves_writers_alone(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            await store.save(cp("a", "a1", 1))
            with raw(db) as writer:
                writer.execute("PRAGMA busy_timeout = 0")
                # Another process is mid-save: its uncommitted session is not listed, and
                # listing does not wait for (or break) its transaction.
                writer.execute("BEGIN IMMEDIATE")
                writer.execute(
                    "INSERT INTO stepgraph_checkpoints (id, session_id, parent_id, superstep,"
                    " created_at, full, crc, record) VALUES ('w1', 'w', NULL, 0, ?, 1, 0, x'00')",
                    (T0.isoformat(),),
                )
                assert heads(await store.list_sessions()) == [("a", "a1")]
                writer.execute("COMMIT")
                assert heads(await store.list_sessions()) == [("w", "w1"), ("a", "a1")]
                # ...and once listing returns, it holds no transaction a writer waits for.
                writer.execute("BEGIN IMMEDIATE")
                writer.execute("ROLLBACK")
            await store.save(cp("b", "b1", 2))  # the store still writes

    asyncio.run(main())


# -- File store ----------------------------------------------------------------------------


def test_file_store_orders_by_created_at_then_session_id(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await store.save(cp("late", "l1", 50))
            await store.save(cp("early", "e1", 10))
            await store.save(cp("tie-a", "t1", 30))
            await store.save(cp("tie-b", "t2", 30))
            await store.save(cp("early", "e2", 20, parent="e1"))
            want = [("late", "l1"), ("tie-b", "t2"), ("tie-a", "t1"), ("early", "e2")]
            assert heads(await store.list_sessions()) == want
            assert heads(await store.list_sessions(before="tie-b", limit=1)) == [("tie-a", "t1")]

    asyncio.run(main())


def test_file_store_lists_only_logs_with_a_whole_record(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await store.save(cp("kept", "k1", 1))
            await store.save(cp("gone", "g1", 2))
            lease = await store.acquire("gone", "me", 30.0)
            await store.release(lease)
            await store.save_record("gone", "g1", "key", b"data")
            await store.delete_session("gone")  # keeps the lease file
            await store.save_record("only-records", "x", "key", b"data")
        (tmp_path / log_name("empty")).write_bytes(b"")  # a crash before its first frame
        torn = tmp_path / log_name("torn")
        async with FileCheckpointStore(tmp_path) as store:
            await store.save(cp("torn", "t1", 3))
        with torn.open("ab") as f:  # a crash mid-append of a second checkpoint
            f.write(b"\x00\x00\x10\x00\x12\x34")
        assert (tmp_path / (log_name("gone").removesuffix(".log") + ".lease")).exists()
        async with FileCheckpointStore(tmp_path) as store:
            assert heads(await store.list_sessions()) == [("torn", "t1"), ("kept", "k1")]
            with pytest.raises(CheckpointNotFoundError, match="'empty'"):
                await store.list_sessions(before="empty")

    asyncio.run(main())


def test_file_store_sees_other_stores_appends_to_logs_it_holds_open(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as a, FileCheckpointStore(tmp_path) as b:
            await a.save(cp("x", "x1", 1))
            await a.save(cp("y", "y1", 2))
            assert heads(await a.list_sessions()) == [("y", "y1"), ("x", "x1")]
            assert await a.latest("x") is not None  # `a` holds x's log open
            await b.save(cp("x", "x2", 3, parent="x1"))
            assert heads(await a.list_sessions()) == [("x", "x2"), ("y", "y1")]

    asyncio.run(main())


def test_file_store_listing_opens_no_log_for_good(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as writer:
            for n in range(20):
                await writer.save(cp(f"s{n}", f"c{n}", n))
        before = len(os.listdir("/proc/self/fd"))
        async with FileCheckpointStore(tmp_path) as store:
            assert len(await store.list_sessions()) == 20
            assert len(os.listdir("/proc/self/fd")) == before

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    asyncio.run(main())


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    dsn = require_dsn()
    yield dsn
    drop_schemas(dsn, f"{RUN}_ls")


def pg_store(dsn: str) -> Any:
    from stepgraph.stores.postgres import PostgresCheckpointStore

    return PostgresCheckpointStore(dsn, schema=f"{RUN}_ls_{uuid.uuid4().hex[:8]}", max_size=2)


def test_postgres_lists_sessions_with_index_seeks_only(dsn: str) -> None:
    import psycopg

    async def main() -> None:
        async with pg_store(dsn) as store:
            await store.save(cp("s0", "c0", 0))  # creates the schema
            schema = store.schema
        with psycopg.connect(dsn, autocommit=True) as conn:
            table = f'"{schema}".stepgraph_checkpoints'
            conn.execute(
                f"INSERT INTO {table} (id, session_id, parent_id, superstep, created_at,"
                " is_full, crc, record) SELECT 'c' || n, 's' || (n % 200), NULL, 0, '', true,"
                " 0, convert_to(repeat('x', 500), 'UTF8') FROM generate_series(1, 20000) AS n"
            )
            conn.execute(f"VACUUM ANALYZE {table}")
            from stepgraph.stores._postgres_sql import STATEMENTS, in_schema

            query = in_schema(STATEMENTS["list_sessions"], schema)
            plan = "\n".join(
                row[0] for row in conn.execute(f"EXPLAIN {query}", {"before": None, "limit": 10})
            )
        assert "Seq Scan" not in plan, plan
        assert "stepgraph_checkpoints_session" in plan, plan

    asyncio.run(main())


def test_postgres_list_sessions_reads_columns_not_record_blobs(dsn: str) -> None:
    import psycopg

    async def main() -> None:
        async with pg_store(dsn) as store:
            await store.save(cp("a", "a1", 1))
            await store.save(cp("b", "b1", 2))
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    f"UPDATE \"{store.schema}\".stepgraph_checkpoints SET record = '\\x00'"
                    " WHERE id = 'b1'"
                )
            with pytest.raises(CheckpointDecodeError):
                await store.latest("b")
            assert heads(await store.list_sessions()) == [("b", "b1"), ("a", "a1")]
            assert session_lister(store) is store

    asyncio.run(main())
