"""Cancelling a run with a map in flight: what a cancel keeps of a collecting map's batch.

Requests stay pending across a cancel, so a batch with an item waiting on a
request stays too: its finished items' results are kept, and once the
remaining requests are answered the collector gets the whole list, the same
list as without the cancel. A batch whose items had not committed yet is
dropped with the run's queued messages. Handlers are blocked on an
`asyncio.Event` when the run is cancelled: no sleeps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import stepgraph as sg
from stepgraph.stores import SqliteCheckpointStore


@dataclass(frozen=True)
class Ask:
    item: int


@dataclass
class Gates:
    """Items in `ask` request an answer; an answer "hold" (or a first run of an item in
    `hold`) blocks until the run is cancelled; `entered` is set once one is blocked."""

    ask: frozenset[int] = frozenset()
    hold: frozenset[int] = frozenset()
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[tuple[int, str]] = field(default_factory=list[tuple[int, str]])

    async def block(self) -> None:
        self.entered.set()
        await asyncio.Event().wait()  # until cancelled


class Split(sg.Executor):
    @sg.handler
    async def on_n(self, n: int, ctx: sg.Context[list[int]]) -> None:
        await ctx.send(list(range(n)))


class Collect(sg.Executor):
    @sg.handler
    async def on_list(self, results: list[str], ctx: sg.Context[None, list[str]]) -> None:
        await ctx.yield_output(results)


class Item(sg.Executor):
    def __init__(self, id: str, gates: Gates) -> None:
        super().__init__(id=id)
        self.gates = gates

    @sg.handler
    async def on_item(self, x: int, ctx: sg.Context[str]) -> None:
        g = self.gates
        g.calls.append((x, "run"))
        if x in g.hold and (x, "held") not in g.calls:
            g.calls.append((x, "held"))
            await g.block()
        if x in g.ask:
            await ctx.request(Ask(x), str)
            return
        await ctx.send(f"r{x}")

    @sg.response_handler
    async def on_answer(self, ask: Ask, answer: str, ctx: sg.Context[str]) -> None:
        self.gates.calls.append((ask.item, answer))
        if answer == "hold":
            await self.gates.block()
        await ctx.send(f"r{ask.item}:{answer}")


def workflow(gates: Gates) -> sg.Workflow[int]:
    split = Split(id="split")
    b = sg.WorkflowBuilder[int](start=split)
    return b.add_map(split, Item("item", gates), Collect(id="collect")).register_types(Ask).build()


async def cancel_when_blocked(run: sg.Run, gates: Gates) -> None:
    gates.entered.clear()
    task = asyncio.ensure_future(run)
    await gates.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def ids(result: sg.RunResult | sg.Session[Any]) -> dict[int, str]:
    return {r.payload.item: r.id for r in result.pending_requests}


@pytest.mark.parametrize("store", [False, True])
def test_a_cancel_keeps_a_batch_whose_items_wait_on_requests(store: bool, tmp_path: Path) -> None:
    """Items 0 and 2 ask, 1 and 3 finish; item 0's answer is being handled when the run is
    cancelled, item 2 still waits. Both requests stay pending; answered, the collector
    gets every item's result in item order, the finished items' from before the cancel."""
    gates = Gates(ask=frozenset({0, 2}))

    async def main() -> None:
        db = SqliteCheckpointStore(tmp_path / "runs.db") if store else None
        session = workflow(gates).session("s", store=db)
        first = await session.run(4)
        assert first.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        asked = ids(first)
        await cancel_when_blocked(session.respond({asked[0]: "hold"}), gates)
        assert session.status is sg.RunStatus.CANCELLED
        assert ids(session) == asked  # both questions are pending again
        if db is not None:  # new objects over the same store: the kept batch is in the checkpoint
            await db.aclose()
            db = SqliteCheckpointStore(tmp_path / "runs.db")
            session = workflow(gates).session("s", store=db)
            await session.load()
            assert ids(session) == asked
        last = await session.respond({asked[0]: "x", asked[2]: "y"})
        assert last.outputs == [["r0:x", "r1", "r2:y", "r3"]]
        assert last.status is sg.RunStatus.IDLE
        assert gates.calls.count((1, "run")) == gates.calls.count((3, "run")) == 1
        if db is not None:
            await db.aclose()

    asyncio.run(main())


def test_a_cancel_keeps_a_partly_answered_batch_until_its_last_answer() -> None:
    """Answer one of two questions, cancel while the other's answer is handled: the
    first answer's result stays, and only the second question is pending."""
    gates = Gates(ask=frozenset({0, 1}))

    async def main() -> None:
        session = workflow(gates).session("s")
        asked = ids(await session.run(2))
        done = await session.respond({asked[0]: "a"})
        assert done.outputs == []  # item 1 still waits
        await cancel_when_blocked(session.respond({asked[1]: "hold"}), gates)
        assert list(ids(session)) == [1]
        last = await session.respond({asked[1]: "b"})
        assert last.outputs == [["r0:a", "r1:b"]]

    asyncio.run(main())


def test_a_cancel_drops_a_batch_whose_items_had_not_committed() -> None:
    """Item 1 asks, item 0 is still running when the run is cancelled: nothing of the
    superstep commits (not even item 1's request), the batch is dropped, and the next
    run starts a new one."""
    gates = Gates(ask=frozenset({1}), hold=frozenset({0}))

    async def main() -> None:
        session = workflow(gates).session("s", store=sg.MemoryCheckpointStore())
        await cancel_when_blocked(session.run(3), gates)
        assert session.status is sg.RunStatus.CANCELLED
        assert session.pending_requests == ()
        second = await session.run(2)
        (request,) = second.pending_requests
        last = await session.respond({request.id: "z"})
        assert last.outputs == [["r0", "r1:z"]]

    asyncio.run(main())
