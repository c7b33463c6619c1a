"""The functional API beside the graph API: W1 (chain) and W3 (ping-pong).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_functional.py [--reps 40] [--n1 100] [--n3 1000]

W1: N=100 hops, each adding one: the graph API's chain of 100 executors
(`bench_stepgraph.build_chain`, variants `class` and `fn`) against a
`@sg.workflow` awaiting a `@sg.step` 100 times. W3: N=1000 hops between two
executors (`build_loop`) against a workflow alternating two steps. No store
(as in bench_stepgraph's W1/W3). Cases are interleaved per rep after a
warm-up; each run is verified. Prints one line per case (median µs per run,
per hop, IQR) and the ratio functional / graph.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics as st
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_stepgraph as graph

import stepgraph as sg


@sg.step
async def add_one(v: int) -> int:
    return v + 1


@sg.step
async def ping(v: int) -> int:
    return v + 1


@sg.step
async def pong(v: int) -> int:
    return v + 1


def functional_chain(n: int) -> sg.Workflow[int]:
    @sg.workflow
    async def chain(v: int) -> int:
        for _ in range(n):
            v = await add_one(v)
        return v

    return chain


def functional_loop(n: int) -> sg.Workflow[int]:
    @sg.workflow
    async def loop(v: int) -> int:
        while True:
            v = await ping(v)
            if v >= n:
                return v
            v = await pong(v)
            if v >= n:
                return v

    return loop


def runner(wf: sg.Workflow[int], want: int) -> Callable[[], Awaitable[float]]:
    async def once() -> float:
        t0 = time.perf_counter()
        result = await wf.run(0)
        dt = time.perf_counter() - t0
        if result.outputs != [want]:
            raise SystemExit(f"wrong result {result.outputs}, expected [{want}]")
        return dt

    return once


async def measure(cases: dict[str, Callable[[], Awaitable[float]]], reps: int) -> dict[str, Any]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(max(3, reps // 5)):  # warm-up
        for once in cases.values():
            await once()
    for _ in range(reps):
        for name, once in cases.items():
            gc.collect()
            times[name].append(await once())
    return times


def report(workload: str, n: int, times: dict[str, list[float]]) -> None:
    medians = {name: st.median(t) for name, t in times.items()}
    for name, t in times.items():
        q = st.quantiles(t, n=4)
        print(
            f"{workload} N={n} {name:<10} median {medians[name] * 1e6:9.1f} µs/run "
            f"{medians[name] / n * 1e6:6.2f} µs/hop  IQR {q[0] * 1e6:.1f}-{q[2] * 1e6:.1f}"
        )
    for base in ("class", "fn"):
        ratio = medians["functional"] / medians[base]
        print(f"{workload} functional / graph {base}: {ratio:.2f}x")


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=40)
    p.add_argument("--n1", type=int, default=100)
    p.add_argument("--n3", type=int, default=1000)
    a = p.parse_args()
    w1 = {
        "class": runner(graph.build_chain(a.n1, "class"), a.n1),
        "fn": runner(graph.build_chain(a.n1, "fn"), a.n1),
        "functional": runner(functional_chain(a.n1), a.n1),
    }
    report("W1", a.n1, await measure(w1, a.reps))
    w3 = {
        "class": runner(graph.build_loop(a.n3, "class"), a.n3),
        "fn": runner(graph.build_loop(a.n3, "fn"), a.n3),
        "functional": runner(functional_loop(a.n3), a.n3),
    }
    report("W3", a.n3, await measure(w3, max(5, a.reps // 4)))


if __name__ == "__main__":
    asyncio.run(main())
