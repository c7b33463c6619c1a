"""W8 dynamic map in LlamaIndex Workflows (the peers environment): multiple events, one collector.

The idiomatic LlamaIndex form of a map over a list known at run time: the
planning step emits one `Work` event per item (`ctx.send_event`), a step with
`num_workers=n` handles each in its own task, and a collecting step gathers
the `Res` events with `ctx.collect_events` until it holds n of them. W8a:
n = 100 items that each await `asyncio.sleep(0.01)` (wall ms); W8b: n = 1,000
no-op items, against an `asyncio.gather` of 1,000 tasks measured in the same
process. 7 reps after 2 warm-ups (shared/bench/workloads.md); one JSON line
in the shape of `w8_map_langgraph.py`'s, plus `verified` and `w8b_ratio`.

    /work/main/.peers/bin/python benchmarks/w8_map_llamaindex.py [--variant list]

`--variant list` uses the 2.x form instead: the plan returns `list[Work]` and
the collector takes `list[Res]`.
"""

import argparse
import asyncio
import json
import statistics
import time
from importlib.metadata import version

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent

W8A_N, W8B_N = 100, 1000
SLEEP_S = 0.01
REPS, WARMUP = 7, 2


class MapStart(StartEvent):
    n: int


class Work(Event):
    item: int


class Res(Event):
    item: int


def build(n: int, sleep: bool, variant: str) -> Workflow:
    if variant == "list":
        return _build_list(n, sleep)

    class Map(Workflow):
        @step
        async def plan(self, ctx: Context, ev: MapStart) -> Work | None:
            for i in range(ev.n):
                ctx.send_event(Work(item=i))
            return None

        @step(num_workers=n)
        async def worker(self, ev: Work) -> Res:
            if sleep:
                await asyncio.sleep(SLEEP_S)
            return Res(item=ev.item)

        @step
        async def collect(self, ctx: Context, ev: Res) -> StopEvent | None:
            got = ctx.collect_events(ev, [Res] * n)
            if got is None:
                return None
            return StopEvent(result=[e.item for e in got])

    return Map(timeout=None)


def _build_list(n: int, sleep: bool) -> Workflow:
    """The 2.x form: the plan returns `list[Work]`, the collector takes `list[Res]`."""

    class MapList(Workflow):
        @step
        async def plan(self, ev: MapStart) -> list[Work]:
            return [Work(item=i) for i in range(ev.n)]

        @step(num_workers=n)
        async def worker(self, ev: Work) -> Res:
            if sleep:
                await asyncio.sleep(SLEEP_S)
            return Res(item=ev.item)

        @step
        async def collect(self, evs: list[Res]) -> StopEvent:
            return StopEvent(result=[e.item for e in evs])

    return MapList(timeout=None)


async def floor(n: int) -> float:
    async def item(i: int) -> int:
        return i

    t0 = time.perf_counter()
    await asyncio.gather(*(asyncio.ensure_future(item(i)) for i in range(n)))
    return time.perf_counter() - t0


async def timed(wf: Workflow, n: int) -> float:
    t0 = time.perf_counter()
    result = await wf.run(start_event=MapStart(n=n))
    dt = time.perf_counter() - t0
    assert sorted(result) == list(range(n)), f"collected {len(result)} of {n}"
    return dt


async def main(variant: str, reps: int) -> None:
    a, b = build(W8A_N, True, variant), build(W8B_N, False, variant)
    ta: list[float] = []
    tb: list[float] = []
    tf: list[float] = []
    for rep in range(WARMUP + reps):
        da, db, df = await timed(a, W8A_N), await timed(b, W8B_N), await floor(W8B_N)
        if rep >= WARMUP:
            ta.append(da)
            tb.append(db)
            tf.append(df)
    w8a, w8b, fl = (statistics.median(t) * 1e3 for t in (ta, tb, tf))
    record = {
        "engine": "llama-index-workflows",
        "engine_version": version("llama-index-workflows"),
        "workload": "W8",
        "variant": variant,
        "w8a_ms": round(w8a, 3),
        "w8b_ms": round(w8b, 3),
        "floor_gather_ms": round(fl, 3),
        "w8b_ratio": round(w8b / fl, 2),
        "verified": True,
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", default="W8", choices=["W8"])
    parser.add_argument("--variant", default="collect", choices=["collect", "list"])
    parser.add_argument("--reps", type=int, default=REPS)
    args = parser.parse_args()
    asyncio.run(main(args.variant, args.reps))
