"""Crash-test helper: a checkpointed workflow run in a child process that gets SIGKILLed.

Not a test module (pytest does not collect it). Run as a script::

    python tests/crash_child.py STORE_KIND PATH SESSION_ID

with STORE_KIND ``file`` (PATH a directory) or ``sqlite`` (PATH a database
file). The script opens the session over the store; when the session has no
checkpoint it runs the workflow with a fixed input, when it was interrupted it
resumes it, and when it already finished it runs nothing. It then prints one
JSON line ``{"outputs": [...], "mode": "run" | "resume" | "done"}``: the
outputs of the invocation that ran the last superstep, or, for ``done``, the
output the workflow recorded in its state when it finished.

Every handler invocation also appends ``"<superstep> <executor> <pid> start"`` (a map
item: ``<executor>.<item index>``) to
the journal ``PATH + ".effects"`` (an outside side effect, written before its
superstep commits) when it starts and ``... done`` when it has finished, so a
checker can see which handlers ran more than once, and which of those had
finished before (activation records should have kept them from running again).

Before opening the session it prints ``ready``: a driver times its kills from
that line, so start-up time (interpreter, imports) does not blur where they land.

The module also holds what the kill test (``tests/test_crash.py``) and the soak
script (``scripts/crash_soak.py``) share: `expected_outputs()` (one
uninterrupted run without a store), `reference()` (the same over a memory
store: the state at every superstep too), `crash_cycle()` (kill a child at
random moments until a run completes) and `verify()` (check the store
afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stepgraph as sg
from stepgraph.stores import CheckpointStore, MemoryCheckpointStore

SEED = 7
"""The fixed input of every run."""

ROUNDS = 10
"""Laps of the loop; each lap is 6 supersteps."""

FINAL_SUPERSTEP = 6 * ROUNDS + 1
"""Supersteps of one whole run: 10 laps, then the step that yields the output."""

BLOB_SIZE = 4096
"""Characters of the state value rewritten every lap (checkpoints of a few KiB)."""

TRAIL = "t" * 200
"""Padding of each item of the growing `trail` list (it seals into chunks within a run)."""

CHILD = Path(__file__).resolve()

# --------------------------------------------------------------------------- the workflow


@dataclass(frozen=True)
class Job:
    """A lap's work item, routed by a switch."""

    lap: int
    value: int


@dataclass(frozen=True)
class Item:
    """A worker's result, collected by the fan-in."""

    source: str
    value: int


@dataclass(frozen=True)
class Part:
    """An item of the lap's map (its index names it in the journal)."""

    index: int
    value: int


PARTS = 3
"""Items of the map in every lap."""


_journal_fd: int | None = None


def _mix(a: int, b: int, salt: str) -> int:
    """A deterministic 31-bit hash (no `hash()`: it differs between processes)."""
    x = (a * 1_103_515_245 + b * 12_345 + sum(map(ord, salt)) * 2_654_435_761) % (2**31 - 1)
    return x ^ (x >> 7)


def _note(ctx: sg.Context[Any, Any], what: str, name: str | None = None) -> None:
    """Journal a handler's start or end under `name` (a map item's: `<executor>.<index>`)."""
    if _journal_fd is not None:
        line = f"{ctx.superstep} {name or ctx.executor_id} {os.getpid()} {what}\n"
        os.write(_journal_fd, line.encode())


async def _step(ctx: sg.Context[Any, Any], value: int, name: str | None = None) -> None:
    """What every handler does: journal, yield, sleep a little, fold into the shared `mix`."""
    _note(ctx, "start", name)
    await asyncio.sleep(0)
    await asyncio.sleep(0.0002 * (value % 4))  # real, tiny: kills land mid-superstep
    await asyncio.sleep(0)
    ctx.state.set("mix", _mix(ctx.state.get("mix", 1), value, ctx.executor_id))
    ctx.state.set("last:" + ctx.executor_id, value)
    # A growing list (stored as chunks plus the appended items in a ChunkStore):
    # every handler extends the committed one; the later writer of a superstep wins.
    ctx.state.set("trail", [*ctx.state.get("trail", []), f"{ctx.executor_id}:{value}:" + TRAIL])


class Source(sg.Executor):
    """Starts each lap and yields the final output; keeps its laps in snapshot()/restore()."""

    def __init__(self, id: str, rounds: int) -> None:
        super().__init__(id=id)
        self.rounds = rounds
        self.seen: list[int] = []

    @sg.handler
    async def on_value(self, value: int, ctx: sg.Context[Job, dict[str, Any]]) -> None:
        await _step(ctx, value)
        self.seen.append(value)
        lap = len(self.seen)
        ctx.state.set("lap", lap)
        if lap > self.rounds:
            n, raw = ctx.state.get("pair", (0, b""))
            result = {
                "seen": list(self.seen),
                "mix": _mix(ctx.state.get("mix", 1), value, "final"),
                "joins": ctx.state.get("joins"),
                "pair": [n, raw.hex()],
                "blob": ctx.state.get("blob", "")[:16],
                "inflight": "inflight" in ctx.state,
            }
            ctx.state.set("emitted", [*ctx.state.get("emitted", []), result])
            await ctx.yield_output(result)
            _note(ctx, "done")
            return
        ctx.state.set("blob", "".join(chr(97 + (value >> i) % 26) for i in range(BLOB_SIZE)))
        await ctx.send(Job(lap, value))
        _note(ctx, "done")

    async def snapshot(self) -> list[int]:
        return list(self.seen)

    async def restore(self, data: list[int]) -> None:
        self.seen = list(data)


def _is_even(job: Job) -> bool:
    return job.lap % 2 == 0


@sg.executor(id="left")
async def left(job: Job, ctx: sg.Context[int]) -> None:
    await _step(ctx, job.value)
    await ctx.send(_mix(job.value, job.lap, "left"))
    _note(ctx, "done")


@sg.executor(id="right")
async def right(job: Job, ctx: sg.Context[int]) -> None:
    await _step(ctx, job.value)
    await ctx.send(_mix(job.value, job.lap, "right"))
    _note(ctx, "done")


@sg.executor(id="mid")
async def mid(value: int, ctx: sg.Context[int | list[Part]]) -> None:
    await _step(ctx, value)
    ctx.state.set("pair", (value % 1000, bytes([value % 256, 7])))
    ctx.state.set("inflight", value)  # deleted again by join: deltas carry deletions
    await ctx.send(value)  # to w1 and w3
    await ctx.send([Part(i, _mix(value, i, "part")) for i in range(PARTS)])  # over the map
    _note(ctx, "done")


@sg.executor(id="part")
async def part(p: Part, ctx: sg.Context[int]) -> None:
    """The map's worker: one activation per item, beside w1 and w3."""
    name = f"part.{p.index}"
    await _step(ctx, p.value, name)
    await ctx.send(_mix(p.value, p.index, "part"))
    _note(ctx, "done", name)


@sg.executor(id="w2")
async def gather(values: list[int], ctx: sg.Context[Item]) -> None:
    """The map's collector: the items' results in item order, on to the fan-in as w2's."""
    await _step(ctx, sum(values) % 1_000_003)
    ctx.state.set("parts", values)
    await ctx.send(Item("w2", _mix(sum(i * v for i, v in enumerate(values)), 3, "w2")))
    _note(ctx, "done")


def _worker(name: str) -> sg.Executor:
    async def work(value: int, ctx: sg.Context[Item]) -> None:
        await _step(ctx, value)
        await ctx.send(Item(name, _mix(value, 3, name)))
        _note(ctx, "done")

    return sg.executor(id=name)(work)


@sg.executor(id="w3")
async def w3(value: int, ctx: sg.Context[int]) -> None:
    await _step(ctx, value)
    await ctx.send(_mix(value, 5, "w3"))
    _note(ctx, "done")


class Join(sg.Executor):
    """Fan-in target (its buffer is half full at a checkpoint); counts joins in a snapshot."""

    def __init__(self, id: str) -> None:
        super().__init__(id=id)
        self.sums: list[int] = []

    @sg.handler
    async def on_items(self, items: list[Item], ctx: sg.Context[int]) -> None:
        total = sum(i.value for i in items) % 1_000_003
        await _step(ctx, total)
        self.sums.append(total)
        ctx.state.set("joins", len(self.sums))
        ctx.state.delete("inflight")
        await ctx.send(_mix(total, len(self.sums), "".join(i.source for i in items)))
        _note(ctx, "done")

    async def snapshot(self) -> list[int]:
        return list(self.sums)

    async def restore(self, data: list[int]) -> None:
        self.sums = list(data)


def build() -> sg.Workflow[int]:
    """Switch, chain, fan-out, a map, a fan-in fed one superstep apart, a loop; 61 supersteps.

    `mid` sends its value to w1 and w3 and a list of `PARTS` items over a map
    edge: the items run beside w1 and w3, and their collector (`w2`) feeds
    the fan-in with w3b one superstep later.
    """
    source = Source("source", ROUNDS)
    join = Join("join")
    w1, w3b = _worker("w1"), _worker("w3b")
    return (
        sg.WorkflowBuilder[int](start=source)
        .add_switch(source, [sg.Case(when=_is_even, target=left)], default=right)
        .add_edge(left, mid)
        .add_edge(right, mid)
        .add_fan_out(mid, [w1, w3])
        .add_map(mid, part, gather)
        .add_chain([w3, w3b])
        .add_fan_in([w1, gather, w3b], join)
        .add_edge(join, source)
        .build(name="crash", max_supersteps=FINAL_SUPERSTEP + 5)
    )


def expected_outputs() -> list[Any]:
    """The outputs of one uninterrupted run without a store, JSON-normalized."""
    result = asyncio.run(build().run(SEED))
    assert result.status is sg.RunStatus.IDLE, result.status
    return _normal(result.outputs)


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted run gives, to compare crashed sessions with."""

    outputs: list[Any]
    """The outputs, JSON-normalized."""
    states: dict[int, dict[str, Any]]
    """The committed state at every checkpoint, by superstep."""
    schedule: dict[int, set[str]]
    """The executors that run in each superstep."""


def reference() -> Reference:
    """One uninterrupted run over a memory store: outputs, state at each superstep, schedule."""

    async def run() -> Reference:
        store = MemoryCheckpointStore()
        result = await build().session("reference", store=store).run(SEED)
        states: dict[int, dict[str, Any]] = {}
        for info in await store.list("reference"):
            states[info.superstep] = (await store.load(info.id)).state
        schedule: dict[int, set[str]] = {}
        for event in result.events:
            if isinstance(event, sg.ExecutorInvoked):
                eid = event.executor_id
                name = eid if event.item is None else f"{eid}.{event.item}"  # as journaled
                schedule.setdefault(event.superstep, set()).add(name)
        await store.aclose()
        return Reference(_normal(result.outputs), states, schedule)

    ref = asyncio.run(run())
    assert ref.outputs == expected_outputs(), "a store changed the outputs"
    assert sorted(ref.states) == list(range(FINAL_SUPERSTEP + 1)), sorted(ref.states)
    return ref


def _normal(value: Any) -> Any:
    """What a value looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------- the child


def open_store(kind: str, path: str | os.PathLike[str]) -> CheckpointStore:
    """A store of `kind` ("file" or "sqlite") over `path`."""
    if kind == "file":
        from stepgraph.stores.file import FileCheckpointStore

        return FileCheckpointStore(path)
    if kind == "sqlite":
        from stepgraph.stores.sqlite import SqliteCheckpointStore

        return SqliteCheckpointStore(path)
    raise SystemExit(f"unknown store kind {kind!r} (file or sqlite)")


async def _child(kind: str, path: str, session_id: str) -> dict[str, Any]:
    store = open_store(kind, path)
    try:
        session = build().session(session_id, store=store)
        print("ready", flush=True)
        await session.load()
        if session.head is None:
            mode, outputs = "run", (await session.run(SEED)).outputs
        elif session.status in (sg.RunStatus.INTERRUPTED, sg.RunStatus.FAILED):
            mode, outputs = "resume", (await session.resume()).outputs
        elif session.status is sg.RunStatus.IDLE and "emitted" in session.state:
            mode, outputs = "done", list(session.state["emitted"])
        else:
            raise RuntimeError(
                f"unexpected session after load: status {session.status.name}, superstep "
                f"{session.superstep}, state keys {sorted(session.state)}"
            )
    finally:
        await store.aclose()
    return {"outputs": _normal(outputs), "mode": mode}


def main(argv: list[str]) -> int:
    """The child process's entry point."""
    global _journal_fd
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    kind, path, session_id = argv
    _journal_fd = os.open(path + ".effects", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    report = asyncio.run(_child(kind, path, session_id))
    print(json.dumps(report), flush=True)
    return 0


# --------------------------------------------------------------------------- the driver


@dataclass(frozen=True)
class Timing:
    """How long a child takes, to spread kill delays over its life."""

    startup: float
    """Seconds from launch to the child's ``ready`` line (interpreter, imports, build)."""
    run: float
    """Seconds from ``ready`` to the output line of an uninterrupted run."""
    exit: float
    """Seconds from the output line to the exit (interpreter teardown)."""

    def delay(self, rng: random.Random, left: float = 1.0) -> tuple[bool, float]:
        """When to kill a child with the fraction `left` of the run to do: (after ``ready``?, s).

        15% during start-up (before the child's first checkpoint), 75% during
        the rest of the run (mid-superstep, mid-save), 10% around its end (after
        the last checkpoint, before the exit; some let the child finish).
        """
        run = self.run * max(left, 0.05)
        x = rng.random()
        if x < 0.15:
            return False, rng.uniform(0.0, self.startup)
        if x < 0.90:
            return True, rng.uniform(0.0, run)
        return True, rng.uniform(0.9 * run, run + 1.2 * self.exit)


def child_command(kind: str, path: str | os.PathLike[str], session_id: str) -> list[str]:
    """The command line of one child run."""
    return [sys.executable, str(CHILD), kind, os.fspath(path), session_id]


def calibrate(kind: str, workdir: Path, expected: list[Any], workers: int = 1) -> Timing:
    """Time whole child runs, `workers` at once (as loaded as the crash runs will be).

    Checks each run's output against `expected` on the way.
    """

    def one(n: int) -> tuple[float, float, float]:
        path = workdir / f"calibrate-{kind}-{n}"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            child_command(kind, path, "calibrate"), stdout=subprocess.PIPE, bufsize=0
        )
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        t1 = time.perf_counter()
        out = proc.stdout.readline()
        t2 = time.perf_counter()
        proc.communicate(timeout=60)
        t3 = time.perf_counter()
        report = json.loads(out)
        if ready != b"ready\n" or report != {"outputs": expected, "mode": "run"}:
            raise AssertionError(f"an uninterrupted child printed {ready!r} {report}")
        return t1 - t0, t2 - t1, t3 - t2

    with ThreadPoolExecutor(workers) as pool:
        times = list(pool.map(one, range(workers)))
    # start-up: the quickest seen (kills meant for it must not land in the run); the rest: means
    return Timing(
        startup=min(t[0] for t in times),
        run=sum(t[1] for t in times) / workers,
        exit=sum(t[2] for t in times) / workers,
    )


@dataclass
class Cycle:
    """What happened to one session: children killed, then one that completed."""

    kills: int = 0
    launches: int = 0
    completed: dict[str, Any] = field(default_factory=dict[str, Any])
    """The JSON line of the run that completed."""
    problems: list[str] = field(default_factory=list[str])
    committed_at_launch: dict[int, int] = field(default_factory=dict[int, int])
    """Per child pid, the newest superstep saved in the store when it was started."""
    supersteps_at_kill: list[tuple[int, int]] = field(default_factory=list[tuple[int, int]])
    """Per kill, the newest saved superstep before the child started and after it was
    killed (-1: nothing saved)."""

    def in_map(self) -> int:
        """Kills while a lap's map items ran or were being saved (superstep 6k + 4 of a lap)."""
        return sum(a % 6 == 3 for _, a in self.supersteps_at_kill)

    def where(self) -> tuple[int, int, int]:
        """Kills (before the child's first checkpoint, mid-run, after the run's last one)."""
        early = sum(a == b < FINAL_SUPERSTEP for b, a in self.supersteps_at_kill)
        late = sum(a == FINAL_SUPERSTEP for _, a in self.supersteps_at_kill)
        return early, len(self.supersteps_at_kill) - early - late, late


def crash_cycle(
    kind: str,
    path: Path,
    session_id: str,
    rng: random.Random,
    timing: Timing,
    max_kills: int,
) -> Cycle:
    """Start children on one session, SIGKILL them at random, until one run completes.

    After `max_kills` kills the next child is left to finish. After every
    kill the store is read: every checkpoint listed before must still be
    listed (a completed superstep is never lost).
    """
    cycle = Cycle()
    before: dict[str, int] = {}
    while not cycle.completed and not cycle.problems:
        cycle.launches += 1
        proc = subprocess.Popen(
            child_command(kind, path, session_id),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,  # unbuffered: reading the ready line must not swallow what follows
        )
        cycle.committed_at_launch[proc.pid] = max(before.values(), default=0)
        if cycle.kills >= max_kills:
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                cycle.problems.append(f"child run {cycle.launches} hung for 60 s")
                break
        else:
            left = 1 - (max(before.values(), default=0) / FINAL_SUPERSTEP)
            after_ready, delay = timing.delay(rng, left)
            head = proc.stdout.readline() if after_ready and proc.stdout else b""
            try:
                out, err = proc.communicate(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                out, err = proc.communicate()
            out = head + out
        if proc.returncode == -signal.SIGKILL:
            cycle.kills += 1
            after = asyncio.run(_listing(kind, path, session_id))
            lost = sorted(set(before) - set(after))
            if lost:
                cycle.problems.append(
                    f"kill {cycle.kills}: checkpoints {lost} vanished from the store"
                )
            cycle.supersteps_at_kill.append(
                (max(before.values(), default=-1), max(after.values(), default=-1))
            )
            before = after
        elif proc.returncode == 0:
            try:
                cycle.completed = json.loads(out.splitlines()[-1])
            except (ValueError, IndexError):
                cycle.problems.append(f"child printed {out!r}")
        else:
            cycle.problems.append(
                f"child run {cycle.launches} exited {proc.returncode}: {err.decode()[-2000:]}"
            )
    return cycle


async def _listing(kind: str, path: Path, session_id: str) -> dict[str, int]:
    store = open_store(kind, path)
    try:
        return {info.id: info.superstep for info in await store.list(session_id)}
    finally:
        await store.aclose()


@dataclass
class Verdict:
    """What `verify` found in a store after a crash cycle."""

    checkpoints: int = 0
    corrupt: list[str] = field(default_factory=list[str])
    """Checkpoints that failed to load or decode (must stay empty)."""
    mismatched: list[str] = field(default_factory=list[str])
    """Outputs that differ from the uninterrupted run's, or not seen exactly once."""
    problems: list[str] = field(default_factory=list[str])
    """Every other broken guarantee (must stay empty)."""
    reruns: int = 0
    """Handler invocations beyond the first for a (superstep, executor): at-least-once at work."""
    finished_reruns: int = 0
    """Re-runs of an activation that had finished in an earlier process, in a superstep of
    several activations: activation records should prevent them (a kill between the
    handler's end and its record being saved is the documented window)."""
    single_reruns: int = 0
    """Re-runs of a finished activation in a superstep of one (its record is the
    superstep's checkpoint: at least once by design)."""


async def verify(
    kind: str,
    path: Path,
    session_id: str,
    ref: Reference,
    committed_at_launch: dict[int, int] | None = None,
    *,
    journal: bool = True,
) -> Verdict:
    """Check a store after crashes: every checkpoint readable and right, one chain, one output.

    Every checkpoint's state must equal the uninterrupted run's at its
    superstep, and each (superstep, executor) of `ref.schedule` must have run
    at least once (from the journal). `committed_at_launch` (pid -> newest
    superstep saved when that child started) finds handlers that re-ran a
    superstep already committed. Without `journal` (in-process runs keep
    none), the handler checks are skipped.
    """
    expected = ref.outputs
    v = Verdict()
    wf = build()
    store = open_store(kind, path)
    try:
        infos = await store.list(session_id)
        v.checkpoints = len(infos)
        for info in infos:
            try:
                cp = await store.load(info.id)
                assert cp.info == info, (cp.info, info)
                state = cp.state  # decodes every state value (raises if one cannot be)
                # the whole content (executor snapshots, queues, fan-in buffers) decodes too
                probe = MemoryCheckpointStore()
                await probe.save(cp)
                await wf.session(session_id, store=probe).restore(info.id)
            except Exception as exc:
                v.corrupt.append(f"{info.id} (superstep {info.superstep}): {exc!r}")
                continue
            if state != ref.states.get(info.superstep):
                v.problems.append(
                    f"{info.id}: the state at superstep {info.superstep} differs from an "
                    f"uninterrupted run's: {_diff(state, ref.states.get(info.superstep, {}))}"
                )
        v.problems.extend(lineage(infos))
        session = wf.session(session_id, store=store, lease=False)  # nothing else runs it now
        await session.load()
        if session.status is not sg.RunStatus.IDLE or session.superstep != FINAL_SUPERSTEP:
            v.problems.append(
                f"reopened session is {session.status.name} at superstep {session.superstep}"
            )
        emitted = _normal(session.state.get("emitted"))
        if emitted != expected:
            v.mismatched.append(f"the stored output is {emitted}, expected {expected} exactly once")
        again = await session.resume()
        if again.outputs or session.superstep != FINAL_SUPERSTEP:
            v.mismatched.append(f"resuming the finished session ran again: {again.outputs}")
    finally:
        await store.aclose()
    entries = _journal(Path(str(path) + ".effects")) if journal else []
    ran: dict[tuple[int, str], int] = {}
    finished: set[tuple[int, str]] = set()
    for superstep, eid, pid, what in entries:
        if what == "done":
            finished.add((superstep, eid))
            continue
        if (superstep, eid) in finished:  # it had finished in an earlier process
            if len(ref.schedule.get(superstep, ())) > 1:
                v.finished_reruns += 1
            else:
                v.single_reruns += 1
        ran[superstep, eid] = ran.get((superstep, eid), 0) + 1
        if committed_at_launch and superstep <= committed_at_launch.get(pid, -1):
            v.problems.append(
                f"{eid} ran superstep {superstep} again in process {pid}, started after "
                f"superstep {committed_at_launch[pid]} was committed"
            )
    for superstep, executors in ref.schedule.items() if journal else ():
        for eid in executors:
            n = ran.get((superstep, eid), 0)
            if n == 0:
                v.problems.append(f"{eid} never ran superstep {superstep}")
            v.reruns += max(n - 1, 0)
    return v


def crash_and_verify(
    kind: str,
    path: Path,
    session_id: str,
    rng: random.Random,
    timing: Timing,
    max_kills: int,
    ref: Reference,
) -> tuple[Cycle, Verdict]:
    """`crash_cycle`, then `verify` (and the completing child's output checked too)."""
    cycle = crash_cycle(kind, path, session_id, rng, timing, max_kills)
    if cycle.problems:
        return cycle, Verdict(problems=["the crash cycle did not complete"])
    verdict = asyncio.run(verify(kind, path, session_id, ref, cycle.committed_at_launch))
    if cycle.completed.get("outputs") != ref.outputs:
        verdict.mismatched.append(f"the completing child printed {cycle.completed}")
    return cycle, verdict


def _diff(got: dict[str, Any], want: dict[str, Any]) -> str:
    keys = sorted(k for k in got.keys() | want.keys() if got.get(k, ...) != want.get(k, ...))
    return ", ".join(
        f"{k}: {got.get(k, '<absent>')!r:.60} != {want.get(k, '<absent>')!r:.60}" for k in keys
    )


def lineage(infos: list[sg.CheckpointInfo], *, complete: bool = True) -> list[str]:
    """One unbroken chain, oldest to newest: supersteps 0, 1, 2, ... each parent the one before.

    With `complete`, the chain must also exist and reach the last superstep.
    """
    problems: list[str] = []
    if not infos and not complete:
        return problems
    oldest_first = list(reversed(infos))
    ids = [i.id for i in oldest_first]
    if len(set(ids)) != len(ids):
        problems.append("a checkpoint id is listed twice")
    position = {cid: n for n, cid in enumerate(ids)}
    roots = [i for i in oldest_first if i.parent_id is None]
    if len(roots) != 1:
        problems.append(f"{len(roots)} roots, expected one")
    for n, info in enumerate(oldest_first):
        if info.parent_id is not None and position.get(info.parent_id, n) >= n:
            problems.append(f"{info.id}: parent {info.parent_id} missing or not older")
        if n and info.parent_id != oldest_first[n - 1].id:
            problems.append(f"{info.id}: a branch (parent is not the previous head)")
        if info.superstep != n:
            problems.append(f"{info.id}: superstep {info.superstep} at position {n}")
    if complete and oldest_first and oldest_first[-1].superstep != FINAL_SUPERSTEP:
        problems.append(f"the newest checkpoint is at superstep {oldest_first[-1].superstep}")
    return problems


def _journal(path: Path) -> list[tuple[int, str, int, str]]:
    """What a journal recorded: (superstep, executor id, pid, "start" or "done")."""
    entries: list[tuple[int, str, int, str]] = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 4:
                continue  # a line cut short by the kill
            superstep, eid, pid, what = parts
            entries.append((int(superstep), eid, int(pid), what))
    return entries


if __name__ == "__main__":
    # Run the imported module, not `__main__`: the graph signature names classes by module,
    # and the test process (which verifies the store) imports this file as `crash_child`.
    import crash_child

    sys.exit(crash_child.main(sys.argv[1:]))
