"""SqliteCheckpointStore specifics: damage, schema, locking, processes, bytes per save."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest
from tests.stores.chunk_support import check_histories, run_growing
from tests.stores.proc_support import run_together

from stepgraph import CheckpointDecodeError, CheckpointError
from stepgraph._checkpoint import apply_delta
from stepgraph.stores import Checkpoint, _record
from stepgraph.stores.sqlite import SCHEMA_VERSION, SqliteCheckpointStore
from stepgraph.testing import _Lineage

PAYLOAD = "x" * 10 * 1024


def raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


async def ids(store: SqliteCheckpointStore, session: str = "s") -> list[str]:
    return [info.id for info in await store.list(session)]


def test_settings_and_schema(tmp_path: Path) -> None:
    db = tmp_path / "cp.db"

    async def main() -> None:
        store = SqliteCheckpointStore(db)
        assert not db.exists()  # nothing happens at construction
        async with store:
            await store.save(_Lineage("s").next({"s:n": 1}))
            conn = store._conn
            assert conn is not None
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        with raw(db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            plan = conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM stepgraph_checkpoints WHERE session_id = 's' ORDER BY seq DESC"
            ).fetchall()
            assert "checkpoints_session" in str(plan)

    asyncio.run(main())


def test_a_damaged_record_raises_naming_the_file(tmp_path: Path) -> None:
    db = tmp_path / "cp.db"
    line = _Lineage("s")

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            for i in range(4):
                await store.save(line.next({"s:n": i}, full=i == 2))
        first, second, third, fourth = line.saved
        with raw(db) as conn:
            (blob,) = conn.execute(
                "SELECT record FROM stepgraph_checkpoints WHERE id = ?", (second,)
            ).fetchone()
            damaged = bytearray(blob)
            damaged[-1] ^= 0x01  # a bit flip inside a part: still well-formed, wrong bytes
            conn.execute(
                "UPDATE stepgraph_checkpoints SET record = ? WHERE id = ?", (bytes(damaged), second)
            )
        async with SqliteCheckpointStore(db) as store:
            with pytest.raises(CheckpointDecodeError, match=f"{second}.*{db}.*checksum"):
                await store.load(second)
            assert (await store.load(fourth)).state == {"n": 3}  # its chain starts at `third`
            assert await ids(store) == [fourth, third, second, first]  # list reads no records

    asyncio.run(main())


def test_a_file_that_is_not_a_checkpoint_database(tmp_path: Path) -> None:
    garbage, foreign, newer = tmp_path / "garbage.db", tmp_path / "foreign.db", tmp_path / "new.db"
    garbage.write_bytes(b"this is not sqlite" * 500)
    with raw(foreign) as conn:
        conn.execute("PRAGMA application_id = 42")
    with raw(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    async def main() -> None:
        for path, error, message in [
            (garbage, CheckpointDecodeError, "not a database"),
            (foreign, CheckpointDecodeError, "not a stepgraph database"),
            (newer, CheckpointError, f"schema version {SCHEMA_VERSION + 1}"),
            (tmp_path, CheckpointError, "unable to open"),
        ]:
            async with SqliteCheckpointStore(path) as store:
                with pytest.raises(error, match=message):
                    await store.list("s")

    asyncio.run(main())


def test_a_locked_database_raises_checkpoint_error_then_recovers(tmp_path: Path) -> None:
    db = tmp_path / "cp.db"
    line = _Lineage("s")

    async def main() -> None:
        async with SqliteCheckpointStore(db, busy_timeout=0.05) as store:
            await store.save(line.next({"s:n": 0}))
            with raw(db) as other:
                other.execute("BEGIN IMMEDIATE")
                with pytest.raises(CheckpointError, match="locked") as info:
                    await store.save(line.next({"s:n": 1}))
                assert isinstance(info.value.__cause__, sqlite3.OperationalError)
                other.execute("ROLLBACK")
            line.head, line.depth = next(iter(line.saved)), 0
            await store.save(cp := line.next({"s:n": 2}))
            assert (await store.load(cp.id)).state == {"n": 2}

    asyncio.run(main())


def test_bytes_stored_per_delta_save(tmp_path: Path) -> None:
    db = tmp_path / "cp.db"
    line = _Lineage("s")

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            await store.save(line.next({"s:payload": PAYLOAD, "s:n": 0}))
            for i in range(1, 16):
                await store.save(line.next({"s:n": i}))
            assert (await store.latest("s")) is not None
        with raw(db) as conn:
            sizes = [
                n
                for (n,) in conn.execute(
                    "SELECT length(record) FROM stepgraph_checkpoints ORDER BY seq"
                )
            ]
        assert sizes[0] > 10 * 1024
        assert max(sizes[1:]) < 1024, sizes

    asyncio.run(main())


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from stepgraph.stores.sqlite import SqliteCheckpointStore
    from stepgraph.testing import _Lineage

    async def main(path, me, n):
        line = _Lineage("shared", me)
        async with SqliteCheckpointStore(path) as store:
            print("ready", flush=True)
            sys.stdin.readline()
            for i in range(n):
                await store.save(line.next({"s:n": i, "s:by": me}, full=i % 10 == 0))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_processes_share_one_file_without_loss(tmp_path: Path) -> None:
    db, n, names = tmp_path / "cp.db", 100, ("p1", "p2", "p3")
    run_together([[sys.executable, "-c", CHILD, str(db), me, str(n)] for me in names])

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            got = await ids(store, "shared")
            assert len(got) == len(names) * n
            for me in names:
                mine = [cid for cid in got if cid.startswith(me)]
                assert mine == [f"{me}-{i:06d}" for i in range(n, 0, -1)]
            for cid in got:
                assert (await store.load(cid)).state["by"] == cid[:2]

    asyncio.run(main())


# --------------------------------------------------------------------------- older files

SCHEMA2 = Path(__file__).parents[1] / "fixtures" / "checkpoints" / "sqlite-schema2-golden.db"
"""A database written by stepgraph at schema version 2 (before activation records, commit
a8b3989): the golden workflow's session "golden", its ten checkpoints and a released lease."""


def golden_checkpoints() -> dict[str, Checkpoint]:
    whole: dict[str, Checkpoint] = {}
    for path in sorted(SCHEMA2.parent.glob("v1-golden-*.ckpt")):
        cp = _record.unpack(path.read_bytes())
        whole[cp.id] = cp if cp.is_full else apply_delta(whole[cp.info.parent_id or ""], cp)
    return whole


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_an_older_database_is_migrated_and_keeps_its_checkpoints(
    tmp_path: Path, version: int
) -> None:
    db = tmp_path / "old.db"
    shutil.copyfile(SCHEMA2, db)
    if version == 1:  # version 1 had no leases table
        with raw(db) as conn:
            conn.execute("DROP TABLE leases")
            conn.execute("PRAGMA user_version = 1")
    if version >= 3:  # version 3 added records, still without the stepgraph_ prefix
        with raw(db) as conn:
            conn.execute(
                "CREATE TABLE records (session_id TEXT NOT NULL, base_id TEXT NOT NULL, "
                "key TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (session_id, base_id, key))"
            )
            conn.execute("PRAGMA user_version = 3")
    if version == 4:  # version 4 prefixed every table with stepgraph_ (no chunk tables yet)
        with raw(db) as conn:
            conn.executescript(
                "ALTER TABLE checkpoints RENAME TO stepgraph_checkpoints;"
                "DROP INDEX checkpoints_session;"
                "CREATE INDEX stepgraph_checkpoints_session ON stepgraph_checkpoints (session_id, seq);"
                "ALTER TABLE leases RENAME TO stepgraph_leases;"
                "ALTER TABLE records RENAME TO stepgraph_records;"
                "PRAGMA user_version = 4;"
            )
    golden = golden_checkpoints()

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            assert await ids(store, "golden") == list(reversed(golden))
            for cid, want in golden.items():
                got = await store.load(cid)
                assert got.info == want.info
                assert dict(got.parts) == dict(want.parts)
            head = next(reversed(golden))
            assert await store.load_records("golden", head) == {}
            await store.save_record("golden", head, "a:x:0", b"record")
            assert await store.load_records("golden", head) == {"a:x:0": b"record"}
            lease = await store.acquire("golden", "me", 10.0)
            assert lease.token == (1 if version == 1 else 2)  # a kept lease row counts on
            await run_growing(store, "grow", 60)  # the new chunk tables at work
            assert (await store.latest("grow")).chunks
            await check_histories(store, "grow")
        with raw(db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
            names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
            assert names == {
                "stepgraph_checkpoints",
                "stepgraph_checkpoints_session",
                "stepgraph_leases",
                "stepgraph_records",
                "stepgraph_chunks",
                "stepgraph_chunk_refs",
                "stepgraph_chunk_refs_chunk",
                "sqlite_autoindex_stepgraph_checkpoints_1",
                "sqlite_autoindex_stepgraph_leases_1",
                "sqlite_autoindex_stepgraph_records_1",
            }
        assert SCHEMA2.read_bytes() != db.read_bytes()  # the copy was migrated, not the fixture

    asyncio.run(main())


def test_records_are_one_upsert_and_go_with_their_checkpoints(tmp_path: Path) -> None:
    db = tmp_path / "cp.db"
    line = _Lineage("s")

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            await store.save(a := line.next({"s:n": 0}))
            await store.save(b := line.next({"s:n": 1}))
            for base in (a.id, b.id):
                await store.save_record("s", base, "k", b"x" * 200)
                await store.save_record("s", base, "k", b"y" * 200)  # replaced in place
            with raw(db) as conn:
                rows = conn.execute(
                    "SELECT base_id, key, length(data) FROM stepgraph_records"
                ).fetchall()
                assert sorted(rows) == [(a.id, "k", 200), (b.id, "k", 200)]
                plan = conn.execute(
                    "EXPLAIN QUERY PLAN SELECT key, data FROM stepgraph_records "
                    "WHERE session_id = 's' AND base_id = 'x'"
                ).fetchall()
                assert "sqlite_autoindex_stepgraph_records_1" in str(plan)
            await store.delete([a.id])
            with raw(db) as conn:
                assert conn.execute("SELECT base_id FROM stepgraph_records").fetchall() == [(b.id,)]

    asyncio.run(main())


def test_the_store_shares_a_database_with_an_unrelated_checkpoints_table(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with raw(db) as conn:
        conn.execute("CREATE TABLE checkpoints (name TEXT PRIMARY KEY, passed INTEGER)")
        conn.execute("INSERT INTO checkpoints VALUES ('gate 1', 1)")
    line = _Lineage("s")
    cp = line.next({"s:n": 1})

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            await store.save(cp)
            assert (await store.load(cp.id)).info == cp.info
            lease = await store.acquire("s", "me", 10.0)
            await store.release(lease)

    asyncio.run(main())
    with raw(db) as conn:
        assert conn.execute("SELECT * FROM checkpoints").fetchall() == [("gate 1", 1)]


@pytest.mark.parametrize("content", [b"hello, not a database\n", bytes(range(256)) * 16])
def test_a_file_that_is_not_sqlite_is_named_as_not_a_stepgraph_database(
    tmp_path: Path, content: bytes
) -> None:
    db = tmp_path / "notes.db"
    db.write_bytes(content)

    async def main() -> None:
        async with SqliteCheckpointStore(db) as store:
            await store.acquire("s", "me", 10.0)

    with pytest.raises(CheckpointDecodeError, match="is not a stepgraph database") as info:
        asyncio.run(main())
    assert "lease" not in str(info.value)
    assert db.read_bytes() == content  # left as it was
