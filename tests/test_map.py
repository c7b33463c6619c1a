"""Dynamic parallel map: `WorkflowBuilder.add_map(source, worker, collect, max_concurrency=)`."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import stepgraph as sg
from stepgraph.stores import SqliteCheckpointStore


class Split(sg.Executor):
    """Maps over range(n)."""

    @sg.handler
    async def on_n(self, n: int, ctx: sg.Context[list[int]]) -> None:
        await ctx.send(list(range(n)))


class Collect(sg.Executor):
    @sg.handler
    async def on_list(self, results: list[str], ctx: sg.Context[None, list[str]]) -> None:
        await ctx.yield_output(results)


@dataclass
class Probe:
    """What the items of one test share (passed to the worker's constructor)."""

    calls: Counter[int] = field(default_factory=Counter[int])
    in_flight: int = 0
    peak: int = 0
    finished: list[int] = field(default_factory=list[int])
    events: dict[int, asyncio.Event] = field(default_factory=dict[int, asyncio.Event])
    instances: set[int] = field(default_factory=set[int])

    def event(self, n: int) -> asyncio.Event:
        return self.events.setdefault(n, asyncio.Event())


class Sleeper(sg.Executor):
    def __init__(self, id: str, seconds: float) -> None:
        super().__init__(id=id)
        self.seconds = seconds

    @sg.handler
    async def on_item(self, x: int, ctx: sg.Context[str]) -> None:
        await asyncio.sleep(self.seconds)
        await ctx.send(f"r{x}")


def _map(worker: sg.Executor, *, collect: bool = True, **kw: Any) -> sg.Workflow[int]:
    split = Split(id="split")
    b = sg.WorkflowBuilder[int](start=split)
    b.add_map(split, worker, Collect(id="collect") if collect else None, **kw)
    return b.build()


def test_ten_items_of_100_ms_run_concurrently() -> None:
    wf = _map(Sleeper("work", 0.1))

    async def main() -> None:
        t0 = time.perf_counter()
        result = await wf.run(10)
        wall = time.perf_counter() - t0
        assert result.outputs == [[f"r{i}" for i in range(10)]]
        assert wall < 0.2, wall

    asyncio.run(main())


class Counting(sg.Executor):
    """Counts items in flight; each yields to the loop a few times while in flight."""

    def __init__(self, id: str, probe: Probe) -> None:
        super().__init__(id=id)
        self.probe = probe

    @sg.handler
    async def on_item(self, x: int, ctx: sg.Context[str]) -> None:
        p = self.probe
        p.instances.add(id(self))
        p.in_flight += 1
        p.peak = max(p.peak, p.in_flight)
        for _ in range(5):
            await asyncio.sleep(0)  # a turn for every other ready item
        p.in_flight -= 1
        await ctx.send(f"r{x}")


@pytest.mark.parametrize(("limit", "peak"), [(None, 10), (2, 2), (1, 1)])
def test_max_concurrency_bounds_the_items_in_flight(limit: int | None, peak: int) -> None:
    probe = Probe()
    wf = _map(Counting("work", probe), max_concurrency=limit)
    result = asyncio.run(wf.run(10))
    assert result.outputs == [[f"r{i}" for i in range(10)]]
    assert probe.peak == peak
    assert len(probe.instances) == 10  # a fresh worker instance per item


class Reverse(sg.Executor):
    """Item i finishes only after item i+1 did: items finish in reverse order."""

    def __init__(self, id: str, probe: Probe, last: int) -> None:
        super().__init__(id=id)
        self.probe = probe
        self.last = last

    @sg.handler
    async def on_item(self, x: int, ctx: sg.Context[str]) -> None:
        if x < self.last:
            await self.probe.event(x + 1).wait()
        self.probe.finished.append(x)
        self.probe.event(x).set()
        await ctx.send(f"r{x}")


def test_collected_list_is_in_item_order_whatever_the_finishing_order() -> None:
    probe = Probe()
    wf = _map(Reverse("work", probe, 4))
    result = asyncio.run(wf.run(5))
    assert probe.finished == [4, 3, 2, 1, 0]
    assert result.outputs == [["r0", "r1", "r2", "r3", "r4"]]
    invoked = [e.item for e in result.events if isinstance(e, sg.ExecutorInvoked)]
    assert invoked == [None, 0, 1, 2, 3, 4, None]


def test_an_empty_sequence_delivers_an_empty_list() -> None:
    result = asyncio.run(_map(Sleeper("work", 0)).run(0))
    assert result.outputs == [[]]


def test_without_collect_items_messages_follow_the_workers_edges_in_item_order() -> None:
    probe = Probe()
    split, work = Split(id="split"), Reverse("work", probe, 3)
    got: list[str] = []

    @sg.executor(id="sink")
    async def sink(text: str, ctx: sg.Context[None, str]) -> None:
        got.append(text)

    wf = sg.WorkflowBuilder[int](start=split).add_map(split, work).add_edge(work, sink).build()
    asyncio.run(wf.run(4))
    assert probe.finished == [3, 2, 1, 0]
    assert got == ["r0", "r1", "r2", "r3"]


class Once(sg.Executor):
    """Item `bad` fails the first time, once every other item has finished."""

    def __init__(self, id: str, probe: Probe, bad: int, size: int) -> None:
        super().__init__(id=id)
        self.probe = probe
        self.bad = bad
        self.size = size

    @sg.handler
    async def on_item(self, x: int, ctx: sg.Context[str]) -> None:
        p = self.probe
        p.calls[x] += 1
        if x == self.bad and p.calls[x] == 1:
            await p.event(-1).wait()
            raise ConnectionError("429")
        p.finished.append(x)
        if len(p.finished) == self.size - 1:
            p.event(-1).set()
        await ctx.send(f"r{x}")


def test_a_failed_item_reruns_alone_on_resume(tmp_path: Path) -> None:
    probe = Probe()
    wf = _map(Once("work", probe, bad=2, size=5))

    async def main() -> None:
        store = SqliteCheckpointStore(tmp_path / "runs.db")
        session = wf.session("s", store=store)
        with pytest.raises(sg.ExecutorFailedError):
            await session.run(5)
        assert probe.calls == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}
        result = await session.resume()
        assert probe.calls == {0: 1, 1: 1, 2: 2, 3: 1, 4: 1}  # only item 2 ran again
        assert result.outputs == [[f"r{i}" for i in range(5)]]
        await store.aclose()

    asyncio.run(main())


@dataclass(frozen=True)
class Ask:
    item: int


class Asking(sg.Executor):
    """Item 1 asks a question; the others answer at once."""

    def __init__(self, id: str, probe: Probe) -> None:
        super().__init__(id=id)
        self.probe = probe

    @sg.handler
    async def on_item(self, x: int, ctx: sg.Context[str]) -> None:
        self.probe.calls[x] += 1
        if x == 1:
            await ctx.request(Ask(x), str)
            return
        await ctx.send(f"r{x}")

    @sg.response_handler
    async def on_answer(self, ask: Ask, answer: str, ctx: sg.Context[str]) -> None:
        self.probe.instances.add(id(self))
        await ctx.send(f"r{ask.item}:{answer}")


def _asking(probe: Probe) -> sg.Workflow[int]:
    split = Split(id="split")
    b = sg.WorkflowBuilder[int](start=split)
    return (
        b.add_map(split, Asking("work", probe), Collect(id="collect")).register_types(Ask).build()
    )


def test_an_item_waiting_on_a_request_pauses_only_itself() -> None:
    probe = Probe()
    wf = _asking(probe)

    async def main() -> None:
        session = wf.session("s")
        first = await session.run(3)
        assert first.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        assert first.outputs == []
        assert probe.calls == {0: 1, 1: 1, 2: 1}  # the others finished
        (request,) = first.pending_requests
        assert request.payload == Ask(1)
        second = await session.respond({request.id: "yes"})
        assert second.outputs == [["r0", "r1:yes", "r2"]]
        assert probe.calls == {0: 1, 1: 1, 2: 1}  # answered as item 1, nothing re-ran
        items = [e.item for e in second.events if isinstance(e, sg.ExecutorInvoked)]
        assert items == [1, None]

    asyncio.run(main())


def test_a_map_paused_on_a_request_survives_reopening_the_session(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"

    async def ask() -> str:
        store = SqliteCheckpointStore(db)
        result = await _asking(Probe()).session("conv", store=store).run(3)
        await store.aclose()
        return result.pending_requests[0].id

    async def answer(request_id: str) -> list[Any]:
        store = SqliteCheckpointStore(db)
        session = _asking(Probe()).session("conv", store=store)  # new objects, same store
        result = await session.respond({request_id: "ok"})
        await store.aclose()
        return result.outputs

    request_id = asyncio.run(ask())
    assert asyncio.run(answer(request_id)) == [["r0", "r1:ok", "r2"]]


def test_a_map_inside_a_sub_workflow() -> None:
    child = _map(Sleeper("work", 0.01))
    outer = sg.SubWorkflow(child, id="child")

    @sg.executor(id="report")
    async def report(results: list[str], ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(",".join(results))

    wf = sg.WorkflowBuilder[int](start=outer).add_edge(outer, report).build()
    result = asyncio.run(wf.run(3))
    assert result.outputs == ["r0,r1,r2"]


def test_item_events_carry_the_item_index_and_retries_apply_per_item() -> None:
    probe = Probe()
    split, work = Split(id="split"), Once("work", probe, bad=1, size=3)
    wf = (
        sg.WorkflowBuilder[int](start=split)
        .add_map(split, work, Collect(id="collect"))
        .set_policy(work, retry=sg.RetryPolicy(max_attempts=2, initial_delay=0))
        .build()
    )
    result = asyncio.run(wf.run(3))
    assert result.outputs == [["r0", "r1", "r2"]]
    assert probe.calls == {0: 1, 1: 2, 2: 1}
    done = [(e.executor_id, e.item) for e in result.events if isinstance(e, sg.ExecutorCompleted)]
    assert sorted(done, key=str) == sorted(
        [("split", None), ("work", 0), ("work", 1), ("work", 2), ("collect", None)], key=str
    )


# -- build-time checks ----------------------------------------------------------------------


class Keeper(sg.Executor):
    def __init__(self, id: str) -> None:
        super().__init__(id=id)
        self.seen: list[int] = []

    @sg.handler
    async def on_item(self, x: int, ctx: sg.Context[str]) -> None:
        await ctx.send(str(x))

    async def snapshot(self) -> list[int]:
        return list(self.seen)

    async def restore(self, data: list[int]) -> None:
        self.seen = list(data)


class Texts(sg.Executor):
    @sg.handler
    async def on_n(self, n: int, ctx: sg.Context[list[str]]) -> None:
        await ctx.send([str(n)])


class Numbers(sg.Executor):
    @sg.handler
    async def on_list(self, xs: list[int], ctx: sg.Context[None]) -> None:
        pass


def test_a_stateful_worker_is_refused() -> None:
    split = Split(id="split")
    with pytest.raises(sg.GraphError, match="'keeper' keeps state"):
        sg.WorkflowBuilder[int](start=split).add_map(split, Keeper("keeper")).build()


def test_the_source_must_send_sequences_of_what_the_worker_accepts() -> None:
    src = Texts(id="texts")
    with pytest.raises(sg.GraphError, match=r"'texts' sends sequences of str but 'work' accepts"):
        sg.WorkflowBuilder[int](start=src).add_map(src, Sleeper("work", 0)).build()

    @sg.executor(id="one")
    async def one(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    with pytest.raises(sg.GraphError, match="not a sequence"):
        sg.WorkflowBuilder[int](start=one).add_map(one, Sleeper("work", 0)).build()


def test_the_collector_must_take_lists_of_what_the_worker_sends() -> None:
    split = Split(id="split")
    with pytest.raises(sg.GraphError, match="'work' sends str but collector 'numbers' accepts"):
        (
            sg.WorkflowBuilder[int](start=split)
            .add_map(split, Sleeper("work", 0), Numbers(id="numbers"))
            .build()
        )


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_max_concurrency_must_be_a_positive_int(bad: Any) -> None:
    split = Split(id="split")
    with pytest.raises(sg.GraphError, match="max_concurrency"):
        sg.WorkflowBuilder[int](start=split).add_map(split, Sleeper("w", 0), max_concurrency=bad)


def test_an_item_the_worker_cannot_take_fails_the_sender() -> None:
    @sg.executor(id="mixed")
    async def mixed(n: int, ctx: sg.Context[list[Any]]) -> None:
        await ctx.send([1, "two"])

    wf = sg.WorkflowBuilder[int](start=mixed).add_map(mixed, Sleeper("work", 0)).build()
    with pytest.raises(sg.ExecutorFailedError, match="item 1 of the sequence"):
        asyncio.run(wf.run(0))
