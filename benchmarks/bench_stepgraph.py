"""stepgraph: anchor benchmark (W1-W6 of shared/bench/workloads.md).

Same command line, workload sizes, reps, warm-up, verification and JSON line
as the shared peer scripts (bench_af.py, bench_langgraph.py, ...), which it
reuses through benchcommon.py from the shared bench folder, so the numbers
are directly comparable. Only stepgraph's public, idiomatic API is used:
Executor subclasses with @sg.handler (variant `class`, the default) or
@sg.executor functions (variant `fn`), WorkflowBuilder add_chain / add_edge /
add_fan_out / add_fan_in, `await wf.run(x)` and `async for ev in wf.stream(x)`; W4 uses
`wf.session(id, store=store)` and `await session.run(0)` with
`sg.MemoryCheckpointStore()` (variant `mem`), `sg.FileCheckpointStore(dir)`
(`file`) or `sg.SqliteCheckpointStore(path)` (`sqlite`).

Each timed rep measures the run alone; the result is verified right after,
untimed, and a wrong result exits non-zero with `"verified": false`.
"""

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics as st
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The shared bench folder sits beside the repository: <repo>/../shared/bench.
SHARED_BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "bench"
if not (SHARED_BENCH / "benchcommon.py").is_file():
    raise SystemExit(
        f"bench_stepgraph: {SHARED_BENCH / 'benchcommon.py'} not found. The shared anchor "
        "benchmarks (workloads.md, benchcommon.py) must sit at ../shared/bench relative to "
        "the repository root."
    )
sys.path.insert(0, str(SHARED_BENCH))

import benchcommon as bc  # noqa: E402

T_IMPORT0 = time.perf_counter()
import stepgraph as sg  # noqa: E402

IMPORT_S = time.perf_counter() - T_IMPORT0

ENGINE = "stepgraph"
VERSION = bc.pkg_version("stepgraph")
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W8")
VARIANTS = ("class", "fn")  # W1, W2, W3, W5, W6
W4_VARIANTS = ("mem", "file", "sqlite")  # W4: the checkpoint store
W2_VARIANTS = (*VARIANTS, "sqlite")  # W2 sqlite: with a store, the cost of activation records


# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class Tick(sg.Event):
    """W6a: the user-visible progress event node A streams before it holds."""

    value: int


# ---------------------------------------------------------------- executors (variant "class")
class Inc(sg.Executor):
    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(v + 1)


class IncOut(sg.Executor):
    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(v + 1)


class Source(sg.Executor):
    @sg.handler
    async def on_seed(self, seed: int, ctx: sg.Context[int]) -> None:
        await ctx.send(seed)


class Worker(sg.Executor):
    def __init__(self, id: str, idx: int) -> None:
        super().__init__(id=id)
        self.idx = idx

    @sg.handler
    async def on_seed(self, seed: int, ctx: sg.Context[int]) -> None:
        await ctx.send(self.idx + seed)


class Aggregate(sg.Executor):
    def __init__(self, id: str, width: int) -> None:
        super().__init__(id=id)
        self.width = width

    @sg.handler
    async def on_results(self, vals: list[int], ctx: sg.Context[None, int]) -> None:
        # A join delivers all W values at once; anything else is a wrong result.
        bc.check(
            len(vals) == self.width, f"W2 aggregator got {len(vals)} values, want {self.width}"
        )
        await ctx.yield_output(sum(vals))


class Hop(sg.Executor):
    def __init__(self, id: str, target: int) -> None:
        super().__init__(id=id)
        self.target = target

    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[int, int]) -> None:
        v += 1
        if v >= self.target:
            await ctx.yield_output(v)
        else:
            await ctx.send(v)


class EmitThenHold(sg.Executor):
    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[int]) -> None:
        await ctx.emit(Tick(v))
        await asyncio.sleep(bc.W6_HOLD_S)
        await ctx.send(v + 1)


class Sleepy(sg.Executor):
    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[int]) -> None:
        await asyncio.sleep(bc.W6_SLEEP_S)
        await ctx.send(v + 1)


class SleepyOut(sg.Executor):
    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[None, int]) -> None:
        await asyncio.sleep(bc.W6_SLEEP_S)
        await ctx.yield_output(v + 1)


class StatefulStart(sg.Executor):
    """W4 node 0: puts the 10 KiB payload (once) and the counter into the session's state."""

    def __init__(self, id: str, payload: str) -> None:
        super().__init__(id=id)
        self.payload = payload

    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("payload", self.payload)
        ctx.state.set("counter", v + 1)
        await ctx.send(v + 1)


class StatefulInc(sg.Executor):
    """W4 nodes 1..N-1: counter = state counter + 1 (the value travels through the state)."""

    def __init__(self, id: str, last: bool) -> None:
        super().__init__(id=id)
        self.last = last

    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[int, int]) -> None:
        c = ctx.state["counter"] + 1
        ctx.state.set("counter", c)
        if self.last:
            await ctx.yield_output(c)
        else:
            await ctx.send(c)


# ---------------------------------------------------------------- functions (variant "fn")
async def inc(v: int, ctx: sg.Context[int]) -> None:
    await ctx.send(v + 1)


async def inc_out(v: int, ctx: sg.Context[None, int]) -> None:
    await ctx.yield_output(v + 1)


async def source(seed: int, ctx: sg.Context[int]) -> None:
    await ctx.send(seed)


async def emit_then_hold(v: int, ctx: sg.Context[int]) -> None:
    await ctx.emit(Tick(v))
    await asyncio.sleep(bc.W6_HOLD_S)
    await ctx.send(v + 1)


async def sleepy(v: int, ctx: sg.Context[int]) -> None:
    await asyncio.sleep(bc.W6_SLEEP_S)
    await ctx.send(v + 1)


async def sleepy_out(v: int, ctx: sg.Context[None, int]) -> None:
    await asyncio.sleep(bc.W6_SLEEP_S)
    await ctx.yield_output(v + 1)


def fn_worker(eid: str, idx: int) -> sg.Executor:
    @sg.executor(id=eid)
    async def worker(seed: int, ctx: sg.Context[int]) -> None:
        await ctx.send(idx + seed)

    return worker


def fn_aggregate(eid: str, width: int) -> sg.Executor:
    @sg.executor(id=eid)
    async def aggregate(vals: list[int], ctx: sg.Context[None, int]) -> None:
        bc.check(len(vals) == width, f"W2 aggregator got {len(vals)} values, want {width}")
        await ctx.yield_output(sum(vals))

    return aggregate


def fn_hop(eid: str, target: int) -> sg.Executor:
    @sg.executor(id=eid)
    async def hop(v: int, ctx: sg.Context[int, int]) -> None:
        v += 1
        if v >= target:
            await ctx.yield_output(v)
        else:
            await ctx.send(v)

    return hop


# ---------------------------------------------------------------- builders
def chain_executors(n: int, variant: str, mid: Any, last: Any, prefix: str = "n") -> list[Any]:
    """n executors n0..n{n-1}; `mid`/`last` are the class or function of the inner/last node."""
    if variant == "class":
        return [(mid if i < n - 1 else last)(id=f"{prefix}{i}") for i in range(n)]
    return [sg.executor(id=f"{prefix}{i}")(mid if i < n - 1 else last) for i in range(n)]


def build_chain(n: int, variant: str, mid: Any = None, last: Any = None) -> sg.Workflow[int]:
    if mid is None:
        mid, last = (Inc, IncOut) if variant == "class" else (inc, inc_out)
    execs = chain_executors(n, variant, mid, last)
    return sg.WorkflowBuilder(start=execs[0]).add_chain(execs).build(max_supersteps=n + 10)


def build_fan(w: int, variant: str) -> sg.Workflow[int]:
    if variant == "class":
        src: sg.Executor = Source(id="src")
        workers = [Worker(id=f"w{i}", idx=i) for i in range(w)]
        agg = Aggregate(id="agg", width=w)
    else:
        src = sg.executor(id="src")(source)
        workers = [fn_worker(f"w{i}", i) for i in range(w)]
        agg = fn_aggregate("agg", w)
    return (
        sg.WorkflowBuilder(start=src)
        .add_fan_out(src, workers)
        .add_fan_in(workers, agg)
        .build(max_supersteps=10)
    )


def build_loop(n: int, variant: str) -> sg.Workflow[int]:
    if variant == "class":
        ping: sg.Executor = Hop(id="ping", target=n)
        pong: sg.Executor = Hop(id="pong", target=n)
    else:
        ping, pong = fn_hop("ping", n), fn_hop("pong", n)
    return (
        sg.WorkflowBuilder(start=ping)
        .add_edge(ping, pong)
        .add_edge(pong, ping)
        .build(max_supersteps=n + 10)
    )


# ---------------------------------------------------------------- verification helpers
def count(events: Any, kind: type) -> int:
    return sum(1 for e in events if isinstance(e, kind))


def check_result(res: Any, want: list[Any], supersteps: int | None, what: str) -> None:
    bc.check(res.outputs == want, f"{what} expected outputs {want} got {res.outputs}")
    bc.check(res.status is sg.RunStatus.IDLE, f"{what} expected status IDLE got {res.status}")
    if supersteps is not None:
        got = count(res.events, sg.SuperstepCompleted)
        bc.check(got == supersteps, f"{what} expected {supersteps} supersteps, got {got}")


# ---------------------------------------------------------------- workloads
async def w1(a: argparse.Namespace) -> None:
    tb = time.perf_counter()
    wf = build_chain(a.n, a.variant)
    build_s = time.perf_counter() - tb

    async def once() -> float:
        t0 = time.perf_counter()
        res = await wf.run(0)
        dt = time.perf_counter() - t0
        check_result(res, [a.n], a.n, "W1")
        return dt

    t = await bc.measure(once, a.reps, bc.WARMUP["W1"])
    s = bc.summarize(t)
    cen = await bc.census(once, a.n)
    bc.emit(
        ENGINE,
        VERSION,
        "W1",
        a.n,
        **cen,
        variant=a.variant,
        supersteps=a.n,
        build_seconds=build_s,
        import_seconds=IMPORT_S,
        per_superstep_us=bc.per_superstep_us(s["seconds"], a.n),
        **s,
    )


class _NoRecords:
    """A SQLite store seen only as a `CheckpointStore`: finished activations are kept in
    memory, never written (the baseline W2 sqlite subtracts to price one record)."""

    def __init__(self, inner: sg.SqliteCheckpointStore) -> None:
        self.inner = inner

    async def save(self, checkpoint: sg.Checkpoint) -> None:
        await self.inner.save(checkpoint)

    async def load(self, checkpoint_id: str) -> sg.Checkpoint:
        return await self.inner.load(checkpoint_id)

    async def list(self, session_id: str, limit: int | None = None) -> list[sg.CheckpointInfo]:
        return await self.inner.list(session_id, limit)

    async def latest(self, session_id: str) -> sg.Checkpoint | None:
        return await self.inner.latest(session_id)

    async def delete(self, checkpoint_ids: Any) -> None:
        await self.inner.delete(checkpoint_ids)

    async def delete_session(self, session_id: str) -> None:
        await self.inner.delete_session(session_id)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def w2_sqlite(a: argparse.Namespace) -> None:
    """W2 with a SQLite store: a checkpoint per superstep and, in the 100-wide superstep,
    one activation record per worker; against the same run whose records stay in memory."""
    wf = build_fan(a.n, "class")
    expect = a.n * (a.n + 1) // 2
    tmp = tempfile.mkdtemp(prefix="sg_w2_")
    store = sg.SqliteCheckpointStore(os.path.join(tmp, "w2.sqlite"))
    plain = _NoRecords(store)
    runs = [0]

    async def once(target: Any) -> float:
        runs[0] += 1
        session = wf.session(f"w2-{runs[0]}", store=target, lease=False)
        t0 = time.perf_counter()
        res = await session.run(1)
        dt = time.perf_counter() - t0
        check_result(res, [expect], 3, "W2 sqlite")
        return dt

    async def recorded() -> float:
        return await once(store)

    async def unrecorded() -> float:
        return await once(plain)

    with_records = bc.summarize(await bc.measure(recorded, a.reps, bc.WARMUP["W2"]))
    without = bc.summarize(await bc.measure(unrecorded, a.reps, bc.WARMUP["W2"]))
    await store.aclose()
    bc.emit(
        ENGINE,
        VERSION,
        "W2",
        a.n,
        variant="sqlite",
        supersteps=3,
        records_per_run=a.n,
        seconds_without_records=without["seconds"],
        per_record_us=(with_records["seconds"] - without["seconds"]) / a.n * 1e6,
        **with_records,
    )


async def w2(a: argparse.Namespace) -> None:
    if a.variant == "sqlite":
        await w2_sqlite(a)
        return
    tb = time.perf_counter()
    wf = build_fan(a.n, a.variant)
    build_s = time.perf_counter() - tb
    expect = a.n * (a.n + 1) // 2

    async def once() -> float:
        t0 = time.perf_counter()
        res = await wf.run(1)
        dt = time.perf_counter() - t0
        check_result(res, [expect], 3, "W2")
        joins = sum(
            1 for e in res.events if isinstance(e, sg.ExecutorInvoked) and e.executor_id == "agg"
        )
        bc.check(joins == 1, f"W2 aggregator ran {joins} times, want exactly 1 (a join)")
        return dt

    t = await bc.measure(once, a.reps, bc.WARMUP["W2"])
    s = bc.summarize(t)
    bc.emit(
        ENGINE,
        VERSION,
        "W2",
        a.n,
        variant=a.variant,
        supersteps=3,
        build_seconds=build_s,
        per_worker_us=s["seconds"] / a.n * 1e6,
        **s,
    )


async def w3(a: argparse.Namespace) -> None:
    wf = build_loop(a.n, a.variant)

    async def once() -> float:
        t0 = time.perf_counter()
        res = await wf.run(0)
        dt = time.perf_counter() - t0
        check_result(res, [a.n], a.n, "W3")
        return dt

    t = await bc.measure(once, a.reps, bc.WARMUP["W3"])
    s = bc.summarize(t)
    cen = await bc.census(once, a.n)
    bc.emit(
        ENGINE,
        VERSION,
        "W3",
        a.n,
        **cen,
        variant=a.variant,
        supersteps=a.n,
        per_superstep_us=bc.per_superstep_us(s["seconds"], a.n),
        **s,
    )


def build_ckpt_chain(n: int, payload: str) -> sg.Workflow[int]:
    execs: list[sg.Executor] = [StatefulStart(id="n0", payload=payload)]
    execs += [StatefulInc(id=f"n{i}", last=i == n - 1) for i in range(1, n)]
    return sg.WorkflowBuilder(start=execs[0]).add_chain(execs).build(max_supersteps=n + 10)


_FRAME = struct.Struct(">II")  # FileCheckpointStore frame header: u32 length | u32 crc32


def log_records(path: str) -> list[int]:
    """Record lengths of a FileCheckpointStore log (frames: u32 length | u32 crc | record)."""
    with open(path, "rb") as f:
        data = f.read()
    sizes: list[int] = []
    pos = 0
    while pos + _FRAME.size <= len(data):
        n, _crc = _FRAME.unpack_from(data, pos)
        sizes.append(n)
        pos += _FRAME.size + n
    bc.check(pos == len(data), f"W4 {path}: the log does not end at a frame boundary")
    return sizes


def wchar() -> int | None:
    """Bytes this process has handed to write() and friends so far (Linux /proc/self/io)."""
    try:
        with open("/proc/self/io") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("wchar:"))
    except (OSError, StopIteration, ValueError):
        return None


def list_logs(path: str) -> set[str]:
    """Checkpoint logs in `path` (beside them: lease files); empty when it does not exist yet
    (the store creates it on first use)."""
    return {n for n in os.listdir(path) if n.endswith(".log")} if os.path.isdir(path) else set()


def file_size(path: str) -> int:
    return os.stat(path).st_size


def sqlite_ro(path: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def sqlite_records(path: str, session_id: str) -> tuple[int, int, int, int, int]:
    """(rows, sum, min, max of length(record), full rows) of one session, read-only."""
    conn = sqlite_ro(path)
    try:
        row = conn.execute(
            "SELECT count(*), sum(length(record)), min(length(record)), max(length(record)), "
            "sum(full) FROM stepgraph_checkpoints WHERE session_id = ?",
            (session_id,),
        ).fetchone()
    finally:
        conn.close()
    return tuple(int(x or 0) for x in row)  # type: ignore[return-value]


async def w4_disk(wf: sg.Workflow[Any], variant: str, tmp: str, n: int) -> float:
    """Bytes on disk per superstep after one run in a fresh store, the store closed.

    SQLite: the database file plus its WAL (closing checkpoints the WAL into the
    database and removes it); file: every file under the store's folder.
    """
    where = os.path.join(tmp, f"disk-{variant}")
    db = where + ".sqlite"
    store = sg.SqliteCheckpointStore(db) if variant == "sqlite" else sg.FileCheckpointStore(where)
    await wf.session("disk", store=store).run(0)
    await store.aclose()
    return disk_size(db if variant == "sqlite" else where) / n


def disk_size(path: str) -> int:
    """A SQLite database with its WAL (if any), or every file under a folder."""
    if os.path.isdir(path):
        return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
    wal = path + "-wal"
    return file_size(path) + (file_size(wal) if os.path.exists(wal) else 0)


async def w4(a: argparse.Namespace) -> None:
    """Checkpointed chain: a checkpoint after every superstep, to memory, a file log or SQLite.

    The store object is shared by the reps (file, sqlite) and every rep runs a fresh
    session id, so each run writes a fresh log (file) or fresh rows (sqlite), as the
    peers do with a fresh thread id; `mem` gets a fresh store per rep. Timed: opening
    the session and `await session.run(0)`. Untimed: verification and byte counts.
    """
    variant, n = a.variant, a.n
    bc.check(n >= 2, "W4 needs n >= 2")
    payload = bc.make_payload()
    tb = time.perf_counter()
    wf = build_ckpt_chain(n, payload)
    build_s = time.perf_counter() - tb
    want_state = {"payload": payload, "counter": n}
    tmp = tempfile.mkdtemp(prefix="sg_w4_")
    logs = os.path.join(tmp, "logs")
    db = os.path.join(tmp, "cp.sqlite")
    shared: sg.FileCheckpointStore | sg.SqliteCheckpointStore | None = None
    if variant == "file":
        shared = sg.FileCheckpointStore(logs)
    elif variant == "sqlite":
        shared = sg.SqliteCheckpointStore(db)
    counter = [0]
    ckpts: list[int] = []  # checkpoints per run (history)
    stored: list[float] = []  # bytes stored per checkpoint: log growth / sum(length(record))
    wrote: list[int] = []  # bytes handed to write() during the run (/proc/self/io wchar)
    rec_min: list[int] = []
    rec_max: list[int] = []
    fulls: list[int] = []

    async def run_once(record: bool = True) -> float:
        counter[0] += 1
        sid = f"run-{counter[0]}"
        store = sg.MemoryCheckpointStore() if shared is None else shared
        before = list_logs(logs) if variant == "file" else set()
        w0 = wchar()
        t0 = time.perf_counter()
        session = wf.session(sid, store=store)
        res = await session.run(0)
        dt = time.perf_counter() - t0
        w1 = wchar()
        written = None if w0 is None or w1 is None else w1 - w0
        check_result(res, [n], n, "W4")
        hist = await session.history()
        bc.check(len(hist) >= n, f"W4 expected >= {n} checkpoints, got {len(hist)}")
        bc.check(
            all(h.session_id == sid for h in hist), "W4 history lists another session's checkpoint"
        )
        head = session.head
        bc.check(head is not None and hist[0].id == head, "W4 head is not the newest checkpoint")
        bc.check(res.checkpoint_id == head, "W4 RunResult.checkpoint_id is not the head")
        assert head is not None
        cp = await store.load(head)
        state = cp.with_types(wf.types).state
        bc.check(state.get("counter") == n, f"W4 latest checkpoint counter {state.get('counter')}")
        bc.check(state.get("payload") == payload, "W4 latest checkpoint lost the payload")
        bc.check(state == want_state, f"W4 latest checkpoint state has keys {sorted(state)}")
        bc.check(dict(session.state) == want_state, "W4 the session's state is wrong")
        new = sorted(list_logs(logs) - before) if variant == "file" else []
        bc.check(variant != "file" or len(new) == 1, f"W4 expected one new log, got {new}")
        ckpts.append(len(hist))
        if not record:
            return dt
        if variant == "file":
            path = os.path.join(logs, new[0])
            sizes = log_records(path)
            bc.check(
                len(sizes) == len(hist), f"W4 log holds {len(sizes)} frames, history {len(hist)}"
            )
            stored.append(file_size(path) / len(hist))
            rec_min.append(min(sizes))
            rec_max.append(max(sizes))
        elif variant == "sqlite":
            rows, total, lo, hi, full = sqlite_records(db, sid)
            bc.check(rows == len(hist), f"W4 table holds {rows} rows, history {len(hist)}")
            stored.append(total / rows)
            rec_min.append(lo)
            rec_max.append(hi)
            fulls.append(full)
        if written is not None:
            wrote.append(written)
        return dt

    extra: dict[str, Any] = {}
    try:
        t = await bc.measure(run_once, a.reps, bc.WARMUP["W4"])
        if variant == "sqlite":
            # One more run, untimed, that starts with an empty WAL: the WAL's growth is
            # what SQLite wrote for the run's commits (whole pages plus frame headers).
            # The timed runs never truncate it: their auto-checkpoints count in the timing.
            conn = sqlite3.connect(db)
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                page = int(conn.execute("PRAGMA page_size").fetchone()[0])
            finally:
                conn.close()
            wal = db + "-wal"
            if busy == 0 and file_size(wal) == 0:
                await run_once(record=False)
                wal_size = file_size(wal)
                frames = (wal_size - 32) / (page + 24) if wal_size else 0
                extra.update(
                    wal_bytes_per_checkpoint=wal_size / ckpts[-1],
                    wal_pages_per_checkpoint=frames / ckpts[-1],
                    page_size=page,
                )
            else:
                print("bench_stepgraph: W4 could not empty the WAL; no WAL figure", file=sys.stderr)
        if shared is not None:
            extra["disk_bytes_per_superstep"] = await w4_disk(wf, variant, tmp, n)
            # Durable means readable by a fresh store object: reopen and reload the head.
            sid = f"run-{counter[0]}"
            fresh = (
                sg.FileCheckpointStore(logs) if variant == "file" else sg.SqliteCheckpointStore(db)
            )
            try:
                latest = await fresh.latest(sid)
                bc.check(latest is not None, "W4 a fresh store finds no checkpoint")
                assert latest is not None
                bc.check(
                    latest.with_types(wf.types).state == want_state,
                    "W4 a fresh store reads a wrong latest checkpoint",
                )
            finally:
                await fresh.aclose()
            await shared.aclose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    s = bc.summarize(t)
    bytes_fields: dict[str, Any] = {}
    if variant == "file":
        bytes_fields["log_bytes_per_checkpoint"] = st.median(stored)
    elif variant == "sqlite":
        bytes_fields["record_bytes_per_checkpoint"] = st.median(stored)
        bytes_fields["full_records_per_run"] = st.median(fulls)
    if stored:
        bytes_fields["smallest_record_bytes"] = st.median(rec_min)
        bytes_fields["largest_record_bytes"] = st.median(rec_max)
    if wrote and variant != "mem":
        bytes_fields["write_bytes_per_checkpoint"] = st.median(wrote) / st.median(ckpts)
    bc.emit(
        ENGINE,
        VERSION,
        "W4",
        n,
        variant=variant,
        supersteps=n,
        checkpoints_per_run=ckpts[-1],
        durability={
            "mem": "in memory, no I/O",
            "file": "append + fdatasync per checkpoint, inline (the superstep waits)",
            "sqlite": "WAL, synchronous=FULL (fsync per commit), inline (the superstep waits)",
        }[variant],
        build_seconds=build_s,
        per_superstep_us=bc.per_superstep_us(s["seconds"], n),
        **bytes_fields,
        **extra,
        **s,
    )


async def w5(a: argparse.Namespace) -> None:
    # One prebuilt workflow; every wf.run(i) is an independent one-shot session.
    wf = build_chain(3, a.variant)

    async def once() -> float:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(wf.run(i) for i in range(a.n)))
        dt = time.perf_counter() - t0
        bc.check(len(results) == a.n, f"W5 expected {a.n} results, got {len(results)}")
        for i, res in enumerate(results):
            check_result(res, [i + 3], 3, f"W5 run {i}")
        sessions = {res.session_id for res in results}
        bc.check(len(sessions) == a.n, f"W5 expected {a.n} distinct sessions, got {len(sessions)}")
        return dt

    t = await bc.measure(once, a.reps, bc.WARMUP["W5"])
    s = bc.summarize(t)
    bc.emit(
        ENGINE,
        VERSION,
        "W5",
        a.n,
        variant=a.variant,
        prebuilt=True,
        runs_per_sec=a.n / s["seconds"],
        per_run_us=s["seconds"] / a.n * 1e6,
        **s,
    )


async def w6(a: argparse.Namespace) -> None:
    # (a) A emits Tick, holds 100 ms, sends 1 to B; B outputs 2. Time to first streamed event.
    if a.variant == "class":
        node_a: sg.Executor = EmitThenHold(id="a")
        node_b: sg.Executor = IncOut(id="b")
    else:
        node_a, node_b = sg.executor(id="a")(emit_then_hold), sg.executor(id="b")(inc_out)
    wfa = sg.WorkflowBuilder(start=node_a).add_edge(node_a, node_b).build()

    first_user: list[float] = []
    first_any: list[float] = []
    totals: list[float] = []
    types: list[str] = []
    for rep in range(a.reps + 1):
        t0 = time.perf_counter()
        t_any = t_user = None
        seen: list[Any] = []
        async for ev in wfa.stream(0):
            now = time.perf_counter() - t0
            seen.append(ev)
            if t_any is None:
                t_any = now
            if t_user is None and isinstance(ev, Tick):
                t_user = now
        total = time.perf_counter() - t0
        ticks = [e for e in seen if isinstance(e, Tick)]
        outs = [e.value for e in seen if isinstance(e, sg.Output)]
        done = [e.status for e in seen if isinstance(e, sg.RunCompleted)]
        bc.check(ticks == [Tick(0)], f"W6a expected one Tick(0), got {ticks}")
        bc.check(outs == [2], f"W6a expected outputs [2], got {outs}")
        bc.check(done == [sg.RunStatus.IDLE], f"W6a expected RunCompleted(IDLE), got {done}")
        bc.check(t_user is not None and t_any is not None, "W6a: no Tick event was streamed")
        if rep:  # rep 0 is the warm-up
            first_user.append(t_user)
            first_any.append(t_any)
            totals.append(total)
        types = [type(e).__name__ for e in seen]

    # (b) N-node chain, each node awaits 5 ms and emits nothing; consumed via the stream.
    wfb = (
        build_chain(a.n, "class", Sleepy, SleepyOut)
        if a.variant == "class"
        else build_chain(a.n, "fn", sleepy, sleepy_out)
    )
    n_events: list[int] = []

    async def once_b() -> None:
        seen = [ev async for ev in wfb.stream(0)]
        outs = [e.value for e in seen if isinstance(e, sg.Output)]
        bc.check(outs == [a.n], f"W6b expected outputs [{a.n}], got {outs}")
        steps = count(seen, sg.SuperstepCompleted)
        bc.check(steps == a.n, f"W6b expected {a.n} supersteps, got {steps}")
        n_events.append(len(seen))

    tb = await bc.measure(once_b, a.reps, 1)
    mb = st.median(tb)
    bc.emit(
        ENGINE,
        VERSION,
        "W6",
        a.n,
        variant=a.variant,
        first_user_event_ms=st.median(first_user) * 1e3,
        first_any_event_ms=st.median(first_any) * 1e3,
        w6a_total_ms=st.median(totals) * 1e3,
        live=st.median(first_user) < bc.W6_HOLD_S / 2,
        w6a_event_types=types,
        w6b_seconds=mb,
        w6b_events_per_run=n_events[-1],
        w6b_overhead_per_superstep_us=(mb - a.n * bc.W6_SLEEP_S) / a.n * 1e6,
        seconds=mb,
        reps=a.reps,
    )


# ---------------------------------------------------------------- W8 dynamic map
W8A_N, W8B_N = 100, 1000
W8_SLEEP_S = 0.01
W8_REPS, W8_WARMUP = 7, 2


@sg.executor(id="plan")
async def w8_plan(n: int, ctx: sg.Context[list[int]]) -> None:
    await ctx.send(list(range(n)))


@sg.executor(id="item")
async def w8_sleep_item(i: int, ctx: sg.Context[int]) -> None:
    await asyncio.sleep(W8_SLEEP_S)
    await ctx.send(i)


@sg.executor(id="item")
async def w8_noop_item(i: int, ctx: sg.Context[int]) -> None:
    await ctx.send(i)


@sg.executor(id="collect")
async def w8_collect(results: list[int], ctx: sg.Context[None, list[int]]) -> None:
    await ctx.yield_output(results)


def build_map(item: sg.Executor) -> sg.Workflow[int]:
    return sg.WorkflowBuilder[int](start=w8_plan).add_map(w8_plan, item, w8_collect).build()


async def w8_floor(n: int) -> float:
    """The floor: an `asyncio.gather` of n trivial tasks."""

    async def item(i: int) -> int:
        return i

    t0 = time.perf_counter()
    await asyncio.gather(*(asyncio.ensure_future(item(i)) for i in range(n)))
    return time.perf_counter() - t0


async def w8(a: argparse.Namespace) -> None:
    """W8a: 100 items that each sleep 10 ms (wall ms); W8b: 1,000 no-op items, and the
    ratio to an asyncio.gather of 1,000 tasks measured in this process."""
    wa, wb = build_map(w8_sleep_item), build_map(w8_noop_item)

    async def run(wf: sg.Workflow[int], n: int) -> float:
        t0 = time.perf_counter()
        res = await wf.run(n)
        dt = time.perf_counter() - t0
        bc.check(res.outputs == [list(range(n))], f"W8 collector got {res.outputs!r:.80}")
        return dt

    ta: list[float] = []
    tb: list[float] = []
    tf: list[float] = []
    for rep in range(W8_WARMUP + a.reps):
        da, db, df = await run(wa, W8A_N), await run(wb, W8B_N), await w8_floor(W8B_N)
        if rep >= W8_WARMUP:
            ta.append(da)
            tb.append(db)
            tf.append(df)
    w8a_ms, w8b_ms, floor_ms = (st.median(t) * 1e3 for t in (ta, tb, tf))
    bc.emit(
        ENGINE,
        VERSION,
        "W8",
        W8B_N,
        variant=a.variant,
        w8a_ms=w8a_ms,
        w8a_target_ms=20.0,
        w8b_ms=w8b_ms,
        floor_gather_ms=floor_ms,
        w8b_ratio=w8b_ms / floor_ms,
        w8b_target_ratio=3.0,
        seconds=st.median(tb),
        reps=a.reps,
    )


# ---------------------------------------------------------------- command line
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="stepgraph anchor benchmark: one workload per process, one JSON line on "
        "stdout (see shared/bench/workloads.md).",
        epilog="Defaults (n, reps, warm-up) are those of workloads.md.",
    )
    p.add_argument(
        "workload",
        choices=WORKLOADS,
        help="W1 chain, W2 fan-out/in, W3 loop, W4 checkpointed chain, "
        "W5 concurrent runs, W6 streaming, W8 dynamic map",
    )
    p.add_argument(
        "n",
        nargs="?",
        type=int,
        default=None,
        help="size (W1/W4 chain length, W2 width, W3 counter target, W5 number of runs, "
        "W6 chain length for part b)",
    )
    p.add_argument("--reps", type=int, default=None, help="timed reps (default per workload)")
    p.add_argument(
        "--variant",
        default=None,
        choices=tuple(dict.fromkeys(VARIANTS + W4_VARIANTS + W2_VARIANTS)),
        help="W1/W2/W3/W5/W6: class (Executor subclasses with @sg.handler, default) or fn "
        "(@sg.executor functions); W2 also sqlite (a SQLite store: the cost of activation "
        "records); W4: the checkpoint store, mem (MemoryCheckpointStore, "
        "default), file (FileCheckpointStore) or sqlite (SqliteCheckpointStore)",
    )
    a = p.parse_args()
    allowed = {"W4": W4_VARIANTS, "W2": W2_VARIANTS}.get(a.workload, VARIANTS)
    if a.variant is None:
        a.variant = allowed[0]
    elif a.variant not in allowed:
        p.error(f"{a.workload} variants: {', '.join(allowed)}")
    if a.n is None:
        a.n = bc.DEFAULT_N.get(a.workload, W8B_N)
    if a.reps is None:
        a.reps = bc.DEFAULT_REPS.get(a.workload, W8_REPS)
    return a


def main() -> None:
    a = parse_args()
    fn = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5, "W6": w6, "W8": w8}[a.workload]
    try:
        asyncio.run(fn(a))
    except bc.VerificationError as e:
        bc.fail(ENGINE, a.workload, e)
    except Exception as e:  # any engine error is a failed case, reported on stdout too
        traceback.print_exc()
        cause = e.__cause__
        bc.fail(ENGINE, a.workload, cause if isinstance(cause, bc.VerificationError) else e)


if __name__ == "__main__":
    main()
