"""Checkpoint stores: median cost of one save (full and delta), of one load, and bytes per save.

The state holds an unchanged 10 KiB string and a counter; a full save writes
both, a delta save (the checkpoint a session writes after a superstep that
only bumped the counter) writes the counter. Bytes per save are the bytes the
process handed to write()/pwrite() during the save (/proc/self/io `wchar`:
the log frame for the file store, WAL frames of whole pages for SQLite), and
for SQLite also the stored record. Saves are fsynced (file: fdatasync per
save; SQLite: WAL, synchronous=FULL). "fsync floor" is a raw 256-byte append +
fdatasync in the same directory, timed right after each delta save, so a
store's cost can be read against the disk's under the same load. On tmpfs
(--dir /dev/shm) fsync is free and the table shows the stores' own CPU cost.

A second table times activation records (`RecordStore`), as a superstep of 10
activations writes them: 10 `save_record` calls of a 200-byte record under
the session's head, then `load_records` (what a resume reads) and
`delete_records` (the garbage collection after the barrier). With `--pg DSN`
(or `STEPGRAPH_TEST_PG_DSN` set) both tables also cover PostgreSQL, in a
throwaway schema. Reports, never asserts.

    .venv/bin/python benchmarks/bench_stores.py               # temp dir under /tmp
    .venv/bin/python benchmarks/bench_stores.py --dir /path --saves 2000
    .venv/bin/python benchmarks/bench_stores.py --pg "host=127.0.0.1 dbname=test user=postgres"
"""

import argparse
import asyncio
import os
import statistics as st
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from stepgraph.stores import CheckpointStore, MemoryCheckpointStore, record_store
from stepgraph.stores.file import FileCheckpointStore
from stepgraph.stores.sqlite import SqliteCheckpointStore
from stepgraph.testing import _Lineage

PAYLOAD = "stepgraph " * 1024  # 10 KiB


def wchar() -> int | None:
    try:
        with open("/proc/self/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))
    except (OSError, StopIteration):
        return None


def floor_us(fd: int, size: int) -> float:
    """One raw append + fdatasync of `size` bytes: what the disk costs, without any store."""
    t0 = time.perf_counter()
    os.write(fd, b"x" * size)
    os.fdatasync(fd)
    return (time.perf_counter() - t0) * 1e6


async def measure(store: CheckpointStore, saves: int, floor_fd: int) -> dict[str, float]:
    floor: list[float] = []
    full_us: list[float] = []
    delta_us: list[float] = []
    delta_bytes: list[int] = []
    load_us: list[float] = []
    line = _Lineage("bench")
    for i in range(saves):
        changes = {"s:payload": PAYLOAD, "s:n": i} if i == 0 else {"s:n": i}
        cp = line.next(changes, full=i % 16 == 0)
        w0 = wchar()
        t0 = time.perf_counter()
        await store.save(cp)
        dt = (time.perf_counter() - t0) * 1e6
        w1 = wchar()
        if cp.is_full:
            full_us.append(dt)
        else:
            delta_us.append(dt)
            if w0 is not None and w1 is not None:
                delta_bytes.append(w1 - w0)
            floor.append(floor_us(floor_fd, 256))  # interleaved, so both see the same load
        if i % 4 == 3:  # load a delta at some depth of its chain
            t0 = time.perf_counter()
            await store.load(cp.id)
            load_us.append((time.perf_counter() - t0) * 1e6)
    return {
        "full_us": st.median(full_us),
        "delta_us": st.median(delta_us),
        "delta_p90_us": st.quantiles(delta_us, n=10)[-1],
        "delta_bytes": st.median(delta_bytes) if delta_bytes else float("nan"),
        "load_us": st.median(load_us),
        "floor_us": st.median(floor),
    }


async def measure_records(
    store: CheckpointStore, supersteps: int, floor_fd: int
) -> dict[str, float]:
    records = record_store(store)
    assert records is not None, f"{type(store).__name__} keeps no activation records"
    line = _Lineage("records")
    save_us: list[float] = []
    load_us: list[float] = []
    gc_us: list[float] = []
    floor: list[float] = []
    data = bytes(range(200))  # ~ a finished activation's effects: a send and a state write
    for step in range(supersteps):
        base = line.next({"s:n": step}, full=step == 0)
        await store.save(base)
        for n in range(10):
            t0 = time.perf_counter()
            await records.save_record("records", base.id, f"a:worker{n}:{step}", data)
            save_us.append((time.perf_counter() - t0) * 1e6)
            floor.append(floor_us(floor_fd, len(data)))
        t0 = time.perf_counter()
        loaded = await records.load_records("records", base.id)
        load_us.append((time.perf_counter() - t0) * 1e6)
        assert len(loaded) == 10, loaded.keys()
        t0 = time.perf_counter()
        await records.delete_records("records", base.id)
        gc_us.append((time.perf_counter() - t0) * 1e6)
    return {
        "save_us": st.median(save_us),
        "save_p90_us": st.quantiles(save_us, n=10)[-1],
        "load_us": st.median(load_us),
        "gc_us": st.median(gc_us),
        "floor_us": st.median(floor),
    }


def record_bytes(path: Path) -> float:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT length(record) FROM stepgraph_checkpoints WHERE full = 0"
        ).fetchall()
    finally:
        conn.close()
    return st.median(n for (n,) in rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files")
    parser.add_argument("--saves", type=int, default=1000)
    parser.add_argument("--pg", default=os.environ.get("STEPGRAPH_TEST_PG_DSN"), help="DSN")
    args = parser.parse_args()
    schema = f"bench_stores_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        stores: dict[str, Callable[[], CheckpointStore]] = {
            "memory": MemoryCheckpointStore,
            "file": lambda: FileCheckpointStore(root / "logs"),
            "sqlite": lambda: SqliteCheckpointStore(root / "cp.db"),
        }
        if args.pg:
            from stepgraph.stores.postgres import PostgresCheckpointStore

            stores["postgres"] = lambda: PostgresCheckpointStore(args.pg, schema=schema)
        floor_fd = os.open(root / "floor", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        print(f"{args.saves} saves per store, a full one every 32; medians; dir {root}")
        print(
            f"{'store':8} {'full save µs':>13} {'delta save µs':>14} {'delta p90 µs':>13} "
            f"{'bytes/delta':>12} {'load µs':>8} {'fsync floor µs':>15}"
        )
        for name, make in stores.items():
            async with make() as store:  # type: ignore[attr-defined]
                r = await measure(store, args.saves, floor_fd)
            if name == "postgres":  # its bytes go out through send(), which wchar misses
                r["delta_bytes"] = float("nan")
            extra = f"  (record {record_bytes(root / 'cp.db'):.0f} B)" if name == "sqlite" else ""
            print(
                f"{name:8} {r['full_us']:13.0f} {r['delta_us']:14.0f} {r['delta_p90_us']:13.0f} "
                f"{r['delta_bytes']:12.0f} {r['load_us']:8.0f} {r['floor_us']:15.0f}{extra}"
            )
        steps = max(args.saves // 10, 10)
        print(f"\nactivation records: {steps} supersteps of 10 save_record (200 B), medians")
        print(
            f"{'store':8} {'save_record µs':>15} {'p90 µs':>7} {'load_records µs':>16} "
            f"{'delete_records µs':>18} {'fsync floor µs':>15}"
        )
        for name, make in stores.items():
            async with make() as store:  # type: ignore[attr-defined]
                r = await measure_records(store, steps, floor_fd)
            print(
                f"{name:8} {r['save_us']:15.0f} {r['save_p90_us']:7.0f} {r['load_us']:16.0f} "
                f"{r['gc_us']:18.0f} {r['floor_us']:15.0f}"
            )
        os.close(floor_fd)
    if args.pg:
        drop_schema(args.pg, schema)


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


if __name__ == "__main__":
    asyncio.run(main())
