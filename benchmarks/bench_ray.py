"""The Ray backend: CPU-bound speed-up and per-superstep overhead (issue 9, point 5).

Run with `.venv/bin/python benchmarks/bench_ray.py` (needs the `ray` extra).

1. CPU: `start` fans out to 8 executors, each doing about 0.5 s of pure-Python
   work in the same superstep, fanned in to `join`. In process the handlers
   share one core (one event loop, one GIL); on Ray each runs in its own
   actor process, so the step spreads over the machine's cores. The work is
   calibrated once, in process, to `--work` seconds per executor. Ray is
   timed warm (the session's actors already started by a warm-up run) and
   the first, cold run (actor start-up included) is reported beside it.
2. Loop: ping <-> pong for 200 supersteps, two actors: the per-superstep
   cost of the Ray backend when few actors share the machine.
3. W1: the chain of 100 of `shared/bench/workloads.md` (each node adds 1),
   in process vs on Ray with warm actors (all 100 started by `prestart`),
   with `confirm_sends` on (the default) and off; overhead per superstep =
   (Ray - in process) / 100. A chain's sends need no confirmation round trip
   (a lone unconditional successor cannot refuse them), so both are alike.

Prints a table and one JSON line per case. No assertion on time; exits
non-zero when a result is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

import ray

import stepgraph as sg
from stepgraph.distributed import RayBackend


def spin(iterations: int) -> int:
    """Pure-Python CPU work (holds the GIL throughout)."""
    acc = 0
    for i in range(iterations):
        acc = (acc * 31 + i) % 1_000_003
    return acc


def calibrate(seconds: float) -> int:
    """Iterations of `spin` that take about `seconds` here."""
    n = 200_000
    while True:
        t0 = time.perf_counter()
        spin(n)
        dt = time.perf_counter() - t0
        if dt > 0.1:
            return int(n * seconds / dt)
        n *= 2


# ---------------------------------------------------------------- CPU-bound fan-out
class Start(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(v)


class Burn(sg.Executor):
    def __init__(self, id: str, iterations: int) -> None:
        super().__init__(id)
        self.iterations = iterations

    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(spin(self.iterations + v) % 7)


class Join(sg.Executor):
    @sg.handler
    async def on(self, values: list[int], ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(len(values))


def cpu_workflow(width: int, iterations: int) -> sg.Workflow[int]:
    start, join = Start(id="start"), Join(id="join")
    workers = [Burn(id=f"burn{i}", iterations=iterations) for i in range(width)]
    return (
        sg.WorkflowBuilder(start=start)
        .add_fan_out(start, workers)
        .add_fan_in(workers, join)
        .build()
    )


# ---------------------------------------------------------------- W1 chain
class Inc(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(v + 1)


class IncOut(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(v + 1)


def chain(n: int) -> sg.Workflow[int]:
    execs = [(Inc if i < n - 1 else IncOut)(id=f"n{i}") for i in range(n)]
    return sg.WorkflowBuilder(start=execs[0]).add_chain(execs).build(max_supersteps=n + 10)


# ---------------------------------------------------------------- timing
def check(result: sg.RunResult, want: list[Any], what: str) -> None:
    if result.outputs != want or result.status is not sg.RunStatus.IDLE:
        print(f"{what}: expected {want}, got {result.outputs} ({result.status})", file=sys.stderr)
        raise SystemExit(1)


async def timed(session: sg.Session[int], value: int, want: list[Any], what: str) -> float:
    t0 = time.perf_counter()
    result = await session.run(value)
    dt = time.perf_counter() - t0
    check(result, want, what)
    return dt


def emit(case: str, **fields: Any) -> None:
    print(json.dumps({"bench": "ray", "case": case, **fields}), file=sys.stderr)


async def cpu(args: argparse.Namespace) -> None:
    iterations = calibrate(args.work)
    wf = cpu_workflow(args.width, iterations)
    want = [args.width]
    local = [await timed(wf.session(f"l{i}"), 0, want, "cpu local") for i in range(args.reps)]
    async with RayBackend() as backend:
        session = wf.session("ray", backend=backend)
        cold = await timed(session, 0, want, "cpu ray cold")
        remote = [await timed(session, 0, want, "cpu ray") for _ in range(args.reps)]
    lo, re_ = statistics.median(local), statistics.median(remote)
    print(f"CPU fan-out: {args.width} executors x {args.work:.2f} s of pure-Python work")
    print(f"  in process        {lo:8.3f} s  (median of {args.reps})")
    print(f"  Ray, warm actors  {re_:8.3f} s  (median of {args.reps})  speed-up {lo / re_:.2f}x")
    print(f"  Ray, first run    {cold:8.3f} s  (actor start-up included)  {lo / cold:.2f}x")
    emit(
        "cpu",
        width=args.width,
        work_s=args.work,
        local_s=lo,
        ray_s=re_,
        ray_cold_s=cold,
        speedup=lo / re_,
        speedup_cold=lo / cold,
        cores=os.cpu_count(),
    )


async def w1(args: argparse.Namespace) -> None:
    n = args.n
    wf = chain(n)
    want = [n]
    for _ in range(2):
        await timed(wf.session("warm"), 0, want, "w1 local")
    local = [await timed(wf.session(f"l{i}"), 0, want, "w1 local") for i in range(args.reps)]
    lo = statistics.median(local)
    print(f"W1 chain of {n}: in process {lo * 1e3:8.2f} ms/run, {lo / n * 1e6:8.1f} µs/superstep")
    emit("w1-local", n=n, seconds=lo, per_superstep_us=lo / n * 1e6)
    async with RayBackend() as backend:
        session = wf.session("ray", backend=backend)
        t0 = time.perf_counter()
        await backend.prestart(session)
        cold = time.perf_counter() - t0
        print(f"  Ray prestart of {n} actors  {cold:8.2f} s")
        await timed(session, 0, want, "w1 ray first")
        for confirm in (True, False):
            backend.confirm_sends = confirm
            await timed(session, 0, want, "w1 ray")
            remote = [await timed(session, 0, want, "w1 ray") for _ in range(args.reps)]
            re_ = statistics.median(remote)
            over = (re_ - lo) / n
            print(
                f"  Ray confirm_sends={confirm!s:5}  {re_ * 1e3:8.1f} ms/run, "
                f"{re_ / n * 1e3:6.2f} ms/superstep, overhead {over * 1e3:6.2f} ms/superstep"
            )
            emit(
                "w1-ray",
                n=n,
                confirm_sends=confirm,
                seconds=re_,
                per_superstep_ms=re_ / n * 1e3,
                overhead_per_superstep_ms=over * 1e3,
                prestart_seconds=cold,
            )


class Hop(sg.Executor):
    def __init__(self, id: str, target: int) -> None:
        super().__init__(id)
        self.target = target

    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int, int]) -> None:
        if v + 1 >= self.target:
            await ctx.yield_output(v + 1)
        else:
            await ctx.send(v + 1)


async def loop(args: argparse.Namespace) -> None:
    """Ping-pong between two actors: the per-superstep floor, without 100 idle actors."""
    n = args.loop
    ping, pong = Hop(id="ping", target=n), Hop(id="pong", target=n)
    wf = (
        sg.WorkflowBuilder(start=ping)
        .add_edge(ping, pong)
        .add_edge(pong, ping)
        .build(max_supersteps=n + 10)
    )
    lo = statistics.median(
        [await timed(wf.session(f"l{i}"), 0, [n], "loop local") for i in range(args.reps)]
    )
    async with RayBackend() as backend:
        session = wf.session("ray", backend=backend)
        await timed(session, 0, [n], "loop ray first")
        re_ = statistics.median(
            [await timed(session, 0, [n], "loop ray") for _ in range(args.reps)]
        )
    over = (re_ - lo) / n
    print(f"Loop ping<->pong, {n} supersteps (2 actors)")
    print(f"  in process {lo / n * 1e6:8.1f} µs/superstep; Ray {re_ / n * 1e3:6.2f} ms/superstep")
    emit("loop", n=n, local_s=lo, ray_s=re_, overhead_per_superstep_ms=over * 1e3)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--width", type=int, default=8, help="CPU executors (default 8)")
    parser.add_argument("--work", type=float, default=0.5, help="seconds of work each (0.5)")
    parser.add_argument("--n", type=int, default=100, help="W1 chain length (default 100)")
    parser.add_argument("--loop", type=int, default=200, help="loop supersteps (default 200)")
    parser.add_argument("--reps", type=int, default=5, help="timed runs per case (default 5)")
    parser.add_argument("--only", choices=("cpu", "w1", "loop"), help="run one part only")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=os.cpu_count() or 2,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        logging_level="warning",
    )
    try:
        print(f"Ray {ray.__version__}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        if args.only in (None, "cpu"):
            await cpu(args)
        if args.only in (None, "loop"):
            await loop(args)
        if args.only in (None, "w1"):
            await w1(args)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
