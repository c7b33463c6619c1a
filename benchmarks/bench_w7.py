"""W7, a growing conversation: what one more item costs as the history grows.

The workload (shared/bench/workloads.md, W7): one node loops N supersteps;
each reads the list `history` from the state, builds a new list with one more
200-byte string and sets it back (the common user code), one checkpoint per
superstep. Measured side by side in one run, for N = 100, 1,000 and 10,000:

* stepgraph on `SqliteCheckpointStore` and `FileCheckpointStore` (a fresh
  session per rep, the store opened before the timer);
* the floor: a plain asyncio loop running the same user code that writes
  only the appended item durably (SQLite: one INSERT + COMMIT in WAL mode;
  file: one append + fdatasync), the least a durable append log does;
* LangGraph with its SQLite saver (`shared/bench/w7_growth_langgraph.py`, in the
  peers environment), at N = 100 and 1,000 only: it re-writes the whole list
  each step, so N = 10,000 would write ~20 GB.

Printed per case: µs per superstep (median of the reps), bytes on disk per
superstep after the run (the store closed: database + WAL, or every file),
the ratio of µs per superstep at N = 1,000 to N = 100, `latest()` on a freshly
opened store at the largest N (cold: first call; warm: median of 5), and the
memory the session keeps per byte of history (tracemalloc; 1.0 would be the
history alone). Verified: the final history has N items and the checkpoint at
superstep N/2 holds exactly N/2.

    .venv/bin/python benchmarks/bench_w7.py                 # all sizes, reps 5/3/1
    .venv/bin/python benchmarks/bench_w7.py --n 100,1000 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import sqlite3
import statistics as st
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import stepgraph as sg

REPO = Path(__file__).resolve().parents[1]
LANGGRAPH = REPO.parent / "shared" / "bench" / "w7_growth_langgraph.py"
MSG = "x" * 200


class Grow(sg.Executor):
    """Reads the history, appends one item, sets it back; loops `n` times."""

    def __init__(self, n: int) -> None:
        super().__init__(id="grow")
        self.n = n

    @sg.handler
    async def step(self, i: int, ctx: sg.Context[int, int]) -> None:
        history = ctx.state.get("history", [])
        ctx.state.set("history", [*history, f"{i}:{MSG}"])
        if i + 1 < self.n:
            await ctx.send(i + 1)
        else:
            await ctx.yield_output(len(history) + 1)


def workflow(n: int) -> sg.Workflow[Any, Any]:
    grow = Grow(n)
    return sg.WorkflowBuilder(start=grow).add_edge(grow, grow).build(max_supersteps=n + 10)


def open_store(kind: str, d: str) -> Any:
    if kind == "sqlite":
        return sg.SqliteCheckpointStore(os.path.join(d, "w7.sqlite"))
    return sg.FileCheckpointStore(os.path.join(d, "files"))


def disk_bytes(d: str) -> int:
    return sum(p.stat().st_size for p in Path(d).rglob("*") if p.is_file())


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"bench_w7: verification failed: {what}")


async def stepgraph_case(kind: str, n: int, measure_memory: bool) -> dict[str, Any]:
    d = tempfile.mkdtemp(prefix="w7-")
    try:
        store = open_store(kind, d)
        wf = workflow(n)
        await store.list("warm-up")  # open the store (and its schema) before the timer
        gc.collect()
        if measure_memory:
            tracemalloc.start()
        session = wf.session("w7", store=store)
        t0 = time.perf_counter()
        result = await session.run(0)
        dt = time.perf_counter() - t0
        history = session.state["history"]
        check(result.outputs == [n] and len(history) == n, f"{kind} N={n}: final history")
        kept = None
        del result  # its event log is the run's, not the session's
        if measure_memory:
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            own = sys.getsizeof(history) + sum(sys.getsizeof(s) for s in history)
            kept = held / own
        infos = await store.list("w7")
        middle = next(i for i in infos if i.superstep == n // 2)
        mid = (await store.load(middle.id)).state["history"]
        check(mid == [f"{j}:{MSG}" for j in range(n // 2)], f"{kind} N={n}: middle checkpoint")
        await store.aclose()
        size = disk_bytes(d)
        reopened = open_store(kind, d)
        t1 = time.perf_counter()
        latest = await reopened.latest("w7")
        cold = time.perf_counter() - t1
        warm: list[float] = []
        for _ in range(5):
            t2 = time.perf_counter()
            latest = await reopened.latest("w7")
            warm.append(time.perf_counter() - t2)
        check(latest is not None and len(latest.state["history"]) == n, "latest() history")
        await reopened.aclose()
        return {
            "us_step": dt / n * 1e6,
            "disk_step": size / n,
            "latest_cold_ms": cold * 1e3,
            "latest_warm_ms": st.median(warm) * 1e3,
            "memory_per_history_byte": kept,
        }
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def floor_case(kind: str, n: int) -> dict[str, Any]:
    """The same user code writing only the appended item durably."""
    d = tempfile.mkdtemp(prefix="w7-floor-")
    try:
        if kind == "sqlite":
            conn = sqlite3.connect(os.path.join(d, "floor.sqlite"))
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE log (step INTEGER PRIMARY KEY, item TEXT)")
            conn.commit()

            def write(i: int, item: str) -> None:
                conn.execute("INSERT INTO log VALUES (?, ?)", (i, item))
                conn.commit()

        else:
            fd = os.open(os.path.join(d, "floor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)

            def write(i: int, item: str) -> None:
                data = item.encode()
                os.write(fd, struct.pack(">I", len(data)) + data)
                os.fdatasync(fd)

        history: list[str] = []
        t0 = time.perf_counter()
        for i in range(n):
            history = [*history, f"{i}:{MSG}"]
            write(i, history[-1])
            await asyncio.sleep(0)  # one superstep: a turn of the loop
        dt = time.perf_counter() - t0
        if kind == "sqlite":
            conn.close()  # pyright: ignore[reportPossiblyUnbound]
        else:
            os.close(fd)  # pyright: ignore[reportPossiblyUnbound]
        check(len(history) == n, "floor history")
        return {"us_step": dt / n * 1e6, "disk_step": disk_bytes(d) / n}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def langgraph_case(py: Path, n: int) -> dict[str, Any] | None:
    out = subprocess.run(
        [str(py), str(LANGGRAPH), str(n)], capture_output=True, text=True, timeout=1800
    )
    m = re.search(r"len=(\d+) us/step=(\d+) disk_bytes/step=(\d+)", out.stdout)
    if out.returncode != 0 or m is None:
        print(f"  langgraph N={n} failed: {out.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    check(int(m.group(1)) == n, f"langgraph N={n}: history length")
    return {"us_step": float(m.group(2)), "disk_step": float(m.group(3))}


def peers_python() -> Path | None:
    env = os.environ.get("PEERS_PY")
    py = Path(env) if env else REPO / ".peers" / "bin" / "python"
    return py if py.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="100,1000,10000", help="comma-separated N")
    ap.add_argument("--reps", type=int, default=0, help="reps per case (0: 5/3/1 by size)")
    ap.add_argument("--stores", default="sqlite,file")
    a = ap.parse_args()
    sizes = [int(x) for x in a.n.split(",")]
    stores = a.stores.split(",")
    py = peers_python()
    rows: list[dict[str, Any]] = []
    for n in sizes:
        reps = a.reps or (5 if n <= 100 else 3 if n <= 1000 else 1)
        for kind in stores:
            runs = [asyncio.run(stepgraph_case(kind, n, measure_memory=False)) for _ in range(reps)]
            mem = asyncio.run(stepgraph_case(kind, n, measure_memory=True))
            floor = [asyncio.run(floor_case(kind, n)) for _ in range(reps)]
            rows.append(
                {
                    "engine": "stepgraph",
                    "store": kind,
                    "n": n,
                    "us_step": st.median(r["us_step"] for r in runs),
                    "disk_step": st.median(r["disk_step"] for r in runs),
                    "latest_cold_ms": st.median(r["latest_cold_ms"] for r in runs),
                    "latest_warm_ms": st.median(r["latest_warm_ms"] for r in runs),
                    "memory_per_history_byte": mem["memory_per_history_byte"],
                }
            )
            rows.append(
                {
                    "engine": "floor",
                    "store": kind,
                    "n": n,
                    "us_step": st.median(r["us_step"] for r in floor),
                    "disk_step": st.median(r["disk_step"] for r in floor),
                }
            )
        if py is not None and n <= 1000:
            lg = langgraph_case(py, n)
            if lg is not None:
                rows.append({"engine": "langgraph", "store": "sqlite", "n": n, **lg})
    report(rows)


def report(rows: list[dict[str, Any]]) -> None:
    def get(engine: str, store: str, n: int) -> dict[str, Any] | None:
        return next(
            (r for r in rows if (r["engine"], r["store"], r["n"]) == (engine, store, n)), None
        )

    print(f"{'case':<22}{'N':>7}{'us/step':>10}{'x floor':>9}{'B/step':>10}{'latest ms':>11}")
    for r in rows:
        fl = get("floor", r["store"], r["n"])
        ratio = r["us_step"] / fl["us_step"] if fl and r["engine"] != "floor" else None
        latest = f"{r['latest_cold_ms']:.1f}" if "latest_cold_ms" in r else ""
        print(
            f"{r['engine'] + ' ' + r['store']:<22}{r['n']:>7}{r['us_step']:>10.0f}"
            f"{(f'{ratio:.2f}' if ratio else ''):>9}{r['disk_step']:>10.0f}{latest:>11}"
        )
    for engine, store in {(r["engine"], r["store"]) for r in rows}:
        small, big = get(engine, store, 100), get(engine, store, 1000)
        if small and big:
            print(
                f"{engine} {store}: us/step at N=1,000 / N=100 = "
                f"{big['us_step'] / small['us_step']:.2f}"
            )
    for r in rows:
        if r.get("memory_per_history_byte") is not None:
            print(
                f"stepgraph {r['store']} N={r['n']}: session memory per byte of history "
                f"{r['memory_per_history_byte']:.2f}, latest() cold {r['latest_cold_ms']:.1f} ms "
                f"warm {r['latest_warm_ms']:.1f} ms"
            )
    for r in rows:
        print(json.dumps({"workload": "W7", **r}))


if __name__ == "__main__":
    main()
