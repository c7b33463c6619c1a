"""PostgresCheckpointStore: the conformance suite, schema, damage, dropped connections, sizes.

Runs against the PostgreSQL server of this machine (see `pg_support`): skipped
when it is unreachable, failed instead under CI=true. Every store lives in a
schema named after this test process, dropped at the end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from tests.stores.chunk_support import check_histories, run_growing
from tests.stores.pg_support import RUN, drop_schemas, require_dsn

from stepgraph import CheckpointDecodeError, CheckpointError, testing
from stepgraph.stores import CheckpointStore
from stepgraph.testing import _Lineage

PAYLOAD = "x" * 10 * 1024
Check = Callable[[testing.StoreFactory], Awaitable[None]]


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    dsn = require_dsn()
    yield dsn
    drop_schemas(dsn)


def open_store(dsn: str, name: str = "", **kwargs: Any) -> Any:
    from stepgraph.stores.postgres import PostgresCheckpointStore

    schema = f"{RUN}_{name or uuid.uuid4().hex[:8]}"
    return PostgresCheckpointStore(dsn, schema=schema, **kwargs)


def raw(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def by_name(check: object) -> str:
    return getattr(check, "__name__", str(check))


ALL_CHECKS = (
    testing.STORE_CHECKS
    + testing.REOPEN_CHECKS
    + testing.RECORD_CHECKS
    + testing.RECORD_REOPEN_CHECKS
    + testing.SESSION_CHECKS
    + testing.SESSION_REOPEN_CHECKS
)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=by_name)
def test_conformance(check: Check, dsn: str) -> None:
    async def factory(name: str) -> CheckpointStore:
        return open_store(dsn, name, max_size=4)

    asyncio.run(check(factory))


@pytest.mark.parametrize("check", testing.CHUNK_CHECKS + testing.CHUNK_REOPEN_CHECKS, ids=by_name)
def test_chunk_conformance(check: Check, dsn: str) -> None:
    async def factory(name: str) -> CheckpointStore:
        return open_store(dsn, name, max_size=4)

    assert asyncio.run(testing.keeps_chunks(factory)), "PostgresCheckpointStore is a ChunkStore"
    asyncio.run(check(factory))


def test_settings_schema_and_indexes(dsn: str) -> None:
    from stepgraph.stores.postgres import SCHEMA_VERSION

    store = open_store(dsn, "settings", min_size=2, max_size=3, pool_kwargs={"max_idle": 60.0})
    schema = store.schema

    async def main() -> None:
        assert store.pool_stats() == {}  # nothing is connected at construction
        with raw(dsn) as conn:
            found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
            assert found.fetchone() is None  # nor created
        async with store:
            assert store.pool_settings == {"min_size": 2, "max_size": 3, "max_idle": 60.0}
            await store.save(_Lineage("s").next({"s:n": 1}))
            assert store.pool_stats()["pool_size"] >= 2
        with raw(dsn) as conn:
            versions = conn.execute(
                f'SELECT version FROM "{schema}".stepgraph_schema ORDER BY version'
            ).fetchall()
            assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]  # one per migration
            conn.execute("SET enable_seqscan = off")  # the tables are tiny; ask for the index
            for query in (
                f"SELECT id FROM \"{schema}\".stepgraph_checkpoints WHERE session_id = 's' ORDER BY seq DESC",
                f"SELECT id FROM \"{schema}\".stepgraph_checkpoints WHERE id = 'x'",
            ):
                plan = " ".join(r[0] for r in conn.execute(f"EXPLAIN {query}"))
                assert "Index" in plan, plan

    asyncio.run(main())


def test_a_newer_schema_is_refused(dsn: str) -> None:
    store = open_store(dsn, "newer")

    async def main() -> None:
        async with store:
            await store.list("s")
        with raw(dsn) as conn:
            conn.execute(f'INSERT INTO "{store.schema}".stepgraph_schema (version) VALUES (99)')
        async with open_store(dsn, store.schema.removeprefix(f"{RUN}_")) as again:
            with pytest.raises(CheckpointError, match="schema version 99"):
                await again.list("s")

    asyncio.run(main())


def test_a_damaged_record_raises_naming_it(dsn: str) -> None:
    line = _Lineage("s")

    async def main() -> None:
        async with open_store(dsn, "damaged") as store:
            for i in range(4):
                await store.save(line.next({"s:n": i}, full=i == 2))
            first, second, third, fourth = line.saved
            with raw(dsn) as conn:  # flip a bit inside a part: well-formed, wrong bytes
                conn.execute(
                    f'UPDATE "{store.schema}".stepgraph_checkpoints '
                    "SET record = overlay(record placing '\\x00'::bytea from length(record)) "
                    "WHERE id = %s",
                    (second,),
                )
            with pytest.raises(CheckpointDecodeError, match=f"{second}.*checksum"):
                await store.load(second)
            assert (await store.load(fourth)).state == {"n": 3}  # its chain starts at `third`
            assert [i.id for i in await store.list("s")] == [fourth, third, second, first]

    asyncio.run(main())


def test_bytes_stored_per_delta_save(dsn: str) -> None:
    line = _Lineage("s")

    async def main() -> None:
        async with open_store(dsn, "bytes") as store:
            await store.save(line.next({"s:payload": PAYLOAD, "s:n": 0}))
            for i in range(1, 16):
                await store.save(line.next({"s:n": i}))
            assert (await store.latest("s")).state["payload"] == PAYLOAD
            with raw(dsn) as conn:
                sizes = [
                    n
                    for (n,) in conn.execute(
                        f'SELECT octet_length(record) FROM "{store.schema}".stepgraph_checkpoints '
                        "ORDER BY seq"
                    )
                ]
        assert sizes[0] > 10 * 1024
        assert max(sizes[1:]) < 1024, sizes

    asyncio.run(main())


def test_dropped_connections_are_replaced(dsn: str) -> None:
    app = f"sg-drop-{uuid.uuid4().hex[:8]}"
    line = _Lineage("s")
    kwargs = {"kwargs": {"application_name": app}}

    def terminate_all() -> int:
        with raw(dsn) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (app,),
            ).fetchall()
        return len(rows)

    async def main() -> None:
        async with open_store(dsn, "drop", min_size=2, max_size=2, pool_kwargs=kwargs) as store:
            await store.save(line.next({"s:n": 0}))
            for i in range(1, 4):  # e.g. a proxy or a restart killed them during a model call
                assert terminate_all() == 2
                await asyncio.sleep(0.05)
                await store.save(cp := line.next({"s:n": i}))
                assert (await store.load(cp.id)).state == {"n": i}
                assert len(await store.list("s")) == i + 1
            assert store.pool_stats().get("connections_lost", 0) >= 1

    asyncio.run(main())


def test_an_unreachable_server_raises_checkpoint_error(dsn: str) -> None:
    from stepgraph.stores.postgres import PostgresCheckpointStore

    dead = "host=127.0.0.1 port=1 dbname=test user=postgres password=s3cret connect_timeout=1"

    async def main() -> None:
        async with PostgresCheckpointStore(dead, pool_kwargs={"timeout": 0.5}) as store:
            started = time.monotonic()
            with pytest.raises(CheckpointError, match=r"127\.0\.0\.1:1/test") as info:
                await store.latest("s")
            assert time.monotonic() - started < 5
            assert "s3cret" not in str(info.value)

    asyncio.run(main())


def test_server_errors_become_checkpoint_errors(dsn: str) -> None:
    import psycopg

    async def main() -> None:
        async with open_store(dsn, "errors") as store:
            await store.list("s")
            with raw(dsn) as conn:
                conn.execute(f'DROP TABLE "{store.schema}".stepgraph_checkpoints')
            with pytest.raises(CheckpointError, match="stepgraph_checkpoints") as info:
                await store.save(_Lineage("s").next({"s:n": 1}))
            assert isinstance(info.value.__cause__, psycopg.Error)

    asyncio.run(main())


def test_first_use_from_many_tasks_opens_one_pool(dsn: str) -> None:
    async def main() -> None:
        async with open_store(dsn, "first_use", max_size=3) as store:
            async with asyncio.TaskGroup() as tg:
                for i in range(10):
                    tg.create_task(store.save(_Lineage(f"s{i}").next({"s:n": i})))
            assert store.pool_stats()["pool_size"] <= 3

    asyncio.run(main())


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_schema_is_migrated_and_keeps_its_checkpoints(dsn: str, version: int) -> None:
    from stepgraph.stores.postgres import SCHEMA_VERSION

    line = _Lineage("s")

    async def main() -> None:
        async with open_store(dsn, f"v{version}") as store:
            for i in range(3):
                await store.save(line.next({"s:n": i}))
            schema = store.schema
        with raw(dsn) as conn:  # back to what that version created
            conn.execute(f'DROP TABLE "{schema}".stepgraph_chunk_refs, "{schema}".stepgraph_chunks')
            if version == 1:
                conn.execute(f'DROP TABLE "{schema}".stepgraph_records')
            conn.execute(f'DELETE FROM "{schema}".stepgraph_schema WHERE version > %s', (version,))
        async with open_store(dsn, schema.removeprefix(f"{RUN}_")) as store:
            assert [i.id for i in await store.list("s")] == list(reversed(line.saved))
            for cid, cp in line.saved.items():
                assert dict((await store.load(cid)).parts) == dict(cp.parts)
            head = next(reversed(line.saved))
            await store.save_record("s", head, "k", b"v" * 200)
            assert await store.load_records("s", head) == {"k": b"v" * 200}
            await store.delete([head])
            assert await store.load_records("s", head) == {}
            await run_growing(store, "grow", 60)  # the new chunk tables at work
            assert (await store.latest("grow")).chunks
            await check_histories(store, "grow")
        with raw(dsn) as conn:
            rows = conn.execute(
                f'SELECT version FROM "{schema}".stepgraph_schema ORDER BY version'
            ).fetchall()
            assert rows == [(v,) for v in range(1, SCHEMA_VERSION + 1)] == [(1,), (2,), (3,)]

    asyncio.run(main())
