"""Black-box tests of ARCHITECTURE.md section 4, rules 1, 2 and 9: supersteps.

Concurrency is proven with asyncio.Event barriers that every participant must reach
(a sequential engine would deadlock and fail on the safety timeout), and order is
tested with timing deliberately reversed against the declared order. The only wall
clock measurement is for rule 9 ("no polling interval"), with a bound derived from
the workload.
"""

import asyncio
import time
from typing import Any

import pytest

import stepgraph as sg

SAFETY_S = 5.0  # only turns a deadlock into a failure; never used to order a race


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), SAFETY_S)


class Start(sg.Executor):
    """Forwards its input unchanged."""

    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[int]) -> None:
        await ctx.send(message)


# --------------------------------------------------------------------------- numbering


def test_superstep_numbers_start_at_1_and_count_over_the_session_life() -> None:
    seen: list[tuple[str, str, int]] = []

    @sg.executor(id="a")
    async def a(n: int, ctx: sg.Context[int]) -> None:
        seen.append((ctx.session_id, "a", ctx.superstep))
        await ctx.send(n)

    @sg.executor(id="b")
    async def b(n: int, ctx: sg.Context[None, int]) -> None:
        seen.append((ctx.session_id, "b", ctx.superstep))
        await ctx.yield_output(ctx.superstep)

    wf = sg.WorkflowBuilder(start=a).add_edge(a, b).build()

    async def main() -> list[list[Any]]:
        one = wf.session("one")
        first = await one.run(1)
        second = await one.run(2)
        two = wf.session("two")
        other = await two.run(3)
        third = await one.run(4)
        return [list(r.outputs) for r in (first, second, other, third)]

    assert asyncio.run(main()) == [[2], [4], [2], [6]]
    assert seen == [
        ("one", "a", 1),
        ("one", "b", 2),
        ("one", "a", 3),
        ("one", "b", 4),
        ("two", "a", 1),
        ("two", "b", 2),
        ("one", "a", 5),
        ("one", "b", 6),
    ]


def test_context_reports_executor_and_session_ids() -> None:
    @sg.executor(id="who")
    async def who(n: int, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output((ctx.executor_id, ctx.session_id, ctx.superstep))

    wf = sg.WorkflowBuilder(start=who).build()
    result = asyncio.run(wf.session("conv-42").run(1))
    assert result.outputs == [("who", "conv-42", 1)]
    assert result.session_id == "conv-42"


# --------------------------------------------------------------------------- concurrency


class BarrierWorker(sg.Executor):
    """Every worker must arrive before any may leave: proves they run concurrently."""

    def __init__(self, id: str, hub: dict[str, Any]) -> None:
        super().__init__(id=id)
        self.hub = hub

    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[None, str]) -> None:
        hub = self.hub
        hub["arrived"].append(ctx.executor_id)
        if len(hub["arrived"]) == hub["expected"]:
            hub["all_here"].set()
        await wait(hub["all_here"])
        await asyncio.sleep(0.001)  # every worker sleeps; together they sleep once
        await ctx.yield_output(ctx.executor_id)


def test_four_executors_in_one_superstep_run_concurrently() -> None:
    async def main() -> tuple[list[Any], list[str]]:
        hub: dict[str, Any] = {"arrived": [], "expected": 4, "all_here": asyncio.Event()}
        workers = [BarrierWorker(f"w{i}", hub) for i in range(4)]
        start = Start("start")
        wf = sg.WorkflowBuilder(start=start).add_fan_out(start, workers).build()
        result = await wf.run(1)
        return list(result.outputs), hub["arrived"]

    outputs, arrived = asyncio.run(main())
    assert outputs == ["w0", "w1", "w2", "w3"]
    assert sorted(arrived) == ["w0", "w1", "w2", "w3"]


class Relay(sg.Executor):
    """Sends `<id>1` and `<id>2`, optionally only after another relay is done."""

    def __init__(self, id: str, hub: dict[str, asyncio.Event], after: str | None) -> None:
        super().__init__(id=id)
        self.hub = hub
        self.after = after

    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[str]) -> None:
        if self.after is not None:
            await wait(self.hub[self.after])
        await ctx.send(f"{ctx.executor_id}1")
        await asyncio.sleep(0)
        await ctx.send(f"{ctx.executor_id}2")
        self.hub[ctx.executor_id].set()


class Receiver(sg.Executor):
    """Yields each message; records how many of its handler calls overlapped."""

    def __init__(self, id: str, stats: dict[str, int]) -> None:
        super().__init__(id=id)
        self.stats = stats

    @sg.handler
    async def on_str(self, message: str, ctx: sg.Context[None, str]) -> None:
        self.stats["active"] += 1
        self.stats["max_active"] = max(self.stats["max_active"], self.stats["active"])
        try:
            for _ in range(5):  # give an overlapping call the chance to start
                await asyncio.sleep(0)
            await ctx.yield_output(message)
        finally:
            self.stats["active"] -= 1


@pytest.mark.parametrize("slow", ["a", "b"])
def test_two_sources_to_one_executor_order_by_declaration_then_send_order(slow: str) -> None:
    async def main() -> tuple[list[Any], dict[str, int]]:
        hub = {"a": asyncio.Event(), "b": asyncio.Event()}
        stats = {"active": 0, "max_active": 0}
        a = Relay("a", hub, after="b" if slow == "a" else None)
        b = Relay("b", hub, after="a" if slow == "b" else None)
        start, receiver = Start("start"), Receiver("r", stats)
        wf = (
            sg.WorkflowBuilder(start=start)
            .add_fan_out(start, [a, b])
            .add_edge(b, receiver)
            .add_edge(a, receiver)
            .build()
        )
        result = await wf.run(0)
        return list(result.outputs), stats

    outputs, stats = asyncio.run(main())
    assert outputs == ["a1", "a2", "b1", "b2"]
    assert stats["max_active"] == 1


def test_order_ignores_timing_alphabet_and_edge_order() -> None:
    async def main() -> tuple[list[Any], dict[str, int]]:
        hub = {name: asyncio.Event() for name in ("zed", "alpha", "mid")}
        stats = {"active": 0, "max_active": 0}
        # Timing order: mid, alpha, zed. Alphabetical and edge order: alpha, mid, zed.
        zed = Relay("zed", hub, after="alpha")
        alpha = Relay("alpha", hub, after="mid")
        mid = Relay("mid", hub, after=None)
        start, receiver = Start("start"), Receiver("r", stats)
        wf = (
            sg.WorkflowBuilder(start=start)
            .add_fan_out(start, [zed, alpha, mid])  # declaration order: zed, alpha, mid
            .add_edge(alpha, receiver)
            .add_edge(mid, receiver)
            .add_edge(zed, receiver)
            .build()
        )
        result = await wf.run(0)
        return list(result.outputs), stats

    outputs, stats = asyncio.run(main())
    assert outputs == ["zed1", "zed2", "alpha1", "alpha2", "mid1", "mid2"]
    assert stats["max_active"] == 1


# --------------------------------------------------------------------------- outputs


def test_outputs_ordered_by_superstep_then_declaration_then_yield_even_if_timing_reversed() -> None:
    async def main() -> list[Any]:
        q_done = asyncio.Event()

        @sg.executor(id="s")
        async def s(n: int, ctx: sg.Context[int, str]) -> None:
            await ctx.yield_output("s")
            await ctx.send(n)

        @sg.executor(id="p")
        async def p(n: int, ctx: sg.Context[int, str]) -> None:
            await wait(q_done)  # p is declared first but yields last
            await ctx.yield_output("p1")
            await ctx.yield_output("p2")
            await ctx.send(1)

        @sg.executor(id="q")
        async def q(n: int, ctx: sg.Context[int, str]) -> None:
            await ctx.yield_output("q1")
            await ctx.yield_output("q2")
            await ctx.send(2)
            q_done.set()

        @sg.executor(id="t")
        async def t(n: int, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output(f"t{n}")

        wf = (
            sg.WorkflowBuilder(start=s).add_fan_out(s, [p, q]).add_edge(q, t).add_edge(p, t).build()
        )
        return list((await wf.run(0)).outputs)

    assert asyncio.run(main()) == ["s", "p1", "p2", "q1", "q2", "t1", "t2"]


# --------------------------------------------------------------------------- rule 9 latency


def _ping_pong(steps: int) -> sg.Workflow:
    """A cycle in which every handler awaits 1 ms; the run takes `steps` supersteps."""

    class Hop(sg.Executor):
        @sg.handler
        async def on_int(self, n: int, ctx: sg.Context[int, int]) -> None:
            await asyncio.sleep(0.001)
            if n < steps:
                await ctx.send(n + 1)
            else:
                await ctx.yield_output(n)

    ping, pong = Hop("ping"), Hop("pong")
    return sg.WorkflowBuilder(start=ping).add_edge(ping, pong).add_edge(pong, ping).build()


STEPS = 20
# 20 supersteps of ~1 ms of work take ~20-40 ms. A 50 ms poll would cost ~1 s, a 25 ms
# poll ~0.5 s; the bound allows 25 ms per superstep of pure engine overhead.
LATENCY_BOUND_S = STEPS * 0.025


def test_cycle_of_1ms_handlers_has_no_polling_delay_when_awaited() -> None:
    wf = _ping_pong(STEPS)

    async def main() -> tuple[float, list[Any]]:
        await wf.run(STEPS - 1)  # warm-up
        started = time.perf_counter()
        result = await wf.run(1)
        return time.perf_counter() - started, list(result.outputs)

    elapsed, outputs = asyncio.run(main())
    assert outputs == [STEPS]
    assert elapsed < LATENCY_BOUND_S, f"{STEPS} supersteps took {elapsed:.3f}s"


def test_cycle_of_1ms_handlers_has_no_polling_delay_when_streamed() -> None:
    wf = _ping_pong(STEPS)

    async def main() -> tuple[float, int]:
        async for _ in wf.stream(STEPS - 1):  # warm-up
            pass
        started = time.perf_counter()
        supersteps = 0
        async for event in wf.stream(1):
            if isinstance(event, sg.SuperstepCompleted):
                supersteps += 1
        return time.perf_counter() - started, supersteps

    elapsed, supersteps = asyncio.run(main())
    assert supersteps == STEPS
    assert elapsed < LATENCY_BOUND_S, f"{STEPS} streamed supersteps took {elapsed:.3f}s"


def test_silent_supersteps_have_no_polling_delay() -> None:
    """Supersteps that emit nothing but superstep events (false conditions, fan-in wait)."""

    @sg.executor(id="s")
    async def s(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    @sg.executor(id="loop")
    async def loop(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n + 1)

    @sg.executor(id="end")
    async def end(n: int, ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(n)

    wf = (
        sg.WorkflowBuilder(start=s)
        .add_edge(s, loop)
        .add_edge(loop, loop, when=lambda n: n < STEPS)
        .add_edge(loop, end, when=lambda n: n >= STEPS)
        .build()
    )

    async def main() -> tuple[float, list[Any]]:
        await wf.run(STEPS)  # warm-up
        started = time.perf_counter()
        result = await wf.run(0)
        return time.perf_counter() - started, list(result.outputs)

    elapsed, outputs = asyncio.run(main())
    assert outputs == [STEPS]
    assert elapsed < LATENCY_BOUND_S, f"silent supersteps took {elapsed:.3f}s"
