"""Workflows for the Ray backend tests, importable by Ray's worker processes.

The test module puts this folder on the workers' PYTHONPATH, so executors and
messages defined here are pickled by reference and are the same classes on
both sides.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stepgraph as sg


@dataclass(frozen=True)
class Tick(sg.Event):
    executor_id: str
    value: Any


@dataclass(frozen=True)
class Where(sg.Event):
    executor_id: str
    pid: int


@dataclass(frozen=True)
class Item:
    sender: str
    n: int


# ---------------------------------------------------------------- chain
class Inc(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int]) -> None:
        await ctx.emit(Tick(ctx.executor_id, v))
        ctx.state.set(f"seen_{ctx.executor_id}", v)
        await ctx.send(v + 1)


class Last(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[None, int]) -> None:
        await ctx.emit(Where(ctx.executor_id, os.getpid()))
        await ctx.yield_output(v * 100 + len(ctx.state.keys()))


@sg.executor(id="double")
def double(v: int, ctx: sg.SyncContext[int]) -> None:
    """A sync function executor: runs in a worker thread of its actor."""
    ctx.emit(Where("double", os.getpid()))
    ctx.send(v * 2)


def chain() -> sg.Workflow[int]:
    a, b, last = Inc(id="a"), Inc(id="b"), Last(id="last")
    return sg.WorkflowBuilder(start=a).add_chain([a, b, double, last]).build()


# ---------------------------------------------------------------- fan-out / fan-in
class Split(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(v)


class Square(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int]) -> None:
        await ctx.emit(Tick(ctx.executor_id, v))
        await ctx.send(v * v + int(ctx.executor_id[1:]))


class Sum(sg.Executor):
    @sg.handler
    async def on(self, values: list[int], ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(sum(values))
        await ctx.yield_output(sorted(values))


def fan(width: int = 3) -> sg.Workflow[int]:
    src, agg = Split(id="src"), Sum(id="agg")
    workers = [Square(id=f"w{i}") for i in range(width)]
    return sg.WorkflowBuilder(start=src).add_fan_out(src, workers).add_fan_in(workers, agg).build()


# ---------------------------------------------------------------- loop
class Hop(sg.Executor):
    def __init__(self, id: str, target: int) -> None:
        super().__init__(id)
        self.target = target

    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int, int]) -> None:
        await ctx.emit(Tick(ctx.executor_id, v))
        if v + 1 >= self.target:
            await ctx.yield_output(v + 1)
        else:
            await ctx.send(v + 1)


def loop(target: int = 6) -> sg.Workflow[int]:
    ping, pong = Hop(id="ping", target=target), Hop(id="pong", target=target)
    return sg.WorkflowBuilder(start=ping).add_edge(ping, pong).add_edge(pong, ping).build()


# ---------------------------------------------------------------- ordering
class Burst(sg.Executor):
    """Sends `count` numbered items in one superstep."""

    def __init__(self, id: str, count: int) -> None:
        super().__init__(id)
        self.count = count

    @sg.handler
    async def on(self, v: int, ctx: sg.Context[Item]) -> None:
        for n in range(self.count):
            await ctx.send(Item(ctx.executor_id, n))


class Slow(sg.Executor):
    """Outputs `start`/`end` around an await: overlapping calls would interleave them."""

    @sg.handler
    async def on(self, item: Item, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"start {item.sender}:{item.n}")
        await asyncio.sleep(0.01)
        await ctx.yield_output(f"end {item.sender}:{item.n} pid={os.getpid()}")


def ordering() -> sg.Workflow[int]:
    start = Split(id="start")
    b1, b2, slow = Burst(id="b1", count=3), Burst(id="b2", count=2), Slow(id="slow")
    return (
        sg.WorkflowBuilder(start=start)
        .add_fan_out(start, [b1, b2])
        .add_edge(b1, slow)
        .add_edge(b2, slow)
        .build()
    )


# ---------------------------------------------------------------- failure and state
class Counter(sg.Executor):
    """Keeps a count across supersteps, with snapshot/restore."""

    def __init__(self, id: str, delay: float = 0) -> None:
        super().__init__(id)
        self.delay = delay
        self.count = 0

    @sg.handler
    async def on(self, v: int, ctx: sg.Context[None, int]) -> None:
        self.count += v
        await asyncio.sleep(self.delay)
        await ctx.yield_output(self.count)

    async def snapshot(self) -> int:
        return self.count

    async def restore(self, data: int) -> None:
        self.count = data


class Flaky(sg.Executor):
    """Fails on its first call only (a plain attribute: not rolled back, by the contract)."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.calls = 0

    @sg.handler
    async def on(self, v: int, ctx: sg.Context[None, int]) -> None:
        self.calls += 1
        ctx.state.set("flaky_wrote", v)
        await ctx.yield_output(-v)
        if self.calls == 1:
            raise ValueError(f"flaky failure on {v}")


def flaky() -> sg.Workflow[int]:
    start, counter, fl = Split(id="start"), Counter(id="counter"), Flaky(id="flaky")
    return sg.WorkflowBuilder(start=start).add_fan_out(start, [counter, fl]).build()


def counter_only(delay: float = 0) -> sg.Workflow[int]:
    counter = Counter(id="counter", delay=delay)
    return sg.WorkflowBuilder(start=counter).build()


class Writer(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int, Any]) -> None:
        before = ("k" in ctx.state, ctx.state.get("k"))
        ctx.state.set("k", v)
        ctx.state.delete("gone")
        own = (ctx.state.get("k"), "gone" in ctx.state)
        await ctx.yield_output(("writer", ctx.superstep, before, own))
        await ctx.send(v)


class Reader(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int, Any]) -> None:
        seen = (ctx.state.get("k"), "gone" in ctx.state, sorted(ctx.state.keys()))
        await ctx.yield_output(("reader", ctx.superstep, seen))
        await ctx.send(v)


class After(sg.Executor):
    @sg.handler
    async def on(self, values: list[int], ctx: sg.Context[None, Any]) -> None:
        seen = (ctx.state.get("k"), "gone" in ctx.state, sorted(ctx.state.keys()))
        await ctx.yield_output(("after", ctx.superstep, seen))


class Seed(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("gone", "x")
        ctx.state.set("k", 0)
        await ctx.send(v)


def visibility() -> sg.Workflow[int]:
    seed, writer, reader, after = (
        Seed(id="seed"),
        Writer(id="writer"),
        Reader(id="reader"),
        After(id="after"),
    )
    return (
        sg.WorkflowBuilder(start=seed)
        .add_fan_out(seed, [writer, reader])
        .add_fan_in([writer, reader], after)
        .build()
    )


# ---------------------------------------------------------------- requests and routing
@dataclass(frozen=True)
class Question:
    text: str


class Asker(sg.Executor):
    @sg.handler
    async def on(self, v: int, ctx: sg.Context[None, str]) -> None:
        request_id = await ctx.request(Question(f"ok {v}?"), response_type=bool)
        await ctx.yield_output(f"asked {request_id}")

    @sg.response_handler
    async def answered(self, q: Question, answer: bool, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"{q.text} -> {answer}")


def asking() -> sg.Workflow[int]:
    return sg.WorkflowBuilder(start=Asker(id="asker")).build()


class Misroute(sg.Executor):
    """Sends to a non-successor; catches the RoutingError when `catch`."""

    def __init__(self, id: str, catch: bool) -> None:
        super().__init__(id)
        self.catch = catch

    @sg.handler
    async def on(self, v: int, ctx: sg.Context[int, str]) -> None:
        try:
            await ctx.send(v, to="misroute")
        except sg.RoutingError as exc:
            if not self.catch:
                raise
            await ctx.yield_output(f"caught {type(exc).__name__}")
        await ctx.send(v)


def misrouting(catch: bool) -> sg.Workflow[int]:
    m = Misroute(id="misroute", catch=catch)
    return sg.WorkflowBuilder(start=m).add_edge(m, Last(id="last")).build()


# ---------------------------------------------------------------- live events
class Waiter(sg.Executor):
    """Emits a Tick, then waits until `flag` exists (the consumer creates it on the Tick)."""

    def __init__(self, id: str, flag: str) -> None:
        super().__init__(id)
        self.flag = flag

    @sg.handler
    async def on(self, v: int, ctx: sg.Context[None, str]) -> None:
        await ctx.emit(Tick(ctx.executor_id, v))
        deadline = time.monotonic() + 20
        while not Path(self.flag).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the Tick did not reach the consumer while the handler ran")
            await asyncio.sleep(0.01)
        await ctx.yield_output("released")


def waiting(flag: str) -> sg.Workflow[int]:
    return sg.WorkflowBuilder(start=Waiter(id="waiter", flag=flag)).build()


# ---------------------------------------------------------------- policies and sub-workflows
def retrying() -> sg.Workflow[int]:
    start, counter, fl = Split(id="start"), Counter(id="counter"), Flaky(id="flaky")
    return (
        sg.WorkflowBuilder(start=start)
        .add_fan_out(start, [counter, fl])
        .set_policy(fl, retry=sg.RetryPolicy(max_attempts=2))
        .build()
    )


def timing_out(delay: float, timeout: float) -> sg.Workflow[int]:
    counter = Counter(id="counter", delay=delay)
    return sg.WorkflowBuilder(start=counter).set_policy(counter, timeout=timeout).build()


def with_child() -> sg.Workflow[int]:
    sub = sg.SubWorkflow(chain(), id="sub")
    start = Split(id="start")
    return sg.WorkflowBuilder(start=start).add_edge(start, sub).build()
