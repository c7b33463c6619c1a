"""Checkpoints that are checksum-valid but malformed, and engine rules found by porting tests."""

from __future__ import annotations

import asyncio
import dataclasses
import types
from typing import Any

import pytest

import stepgraph as sg
from stepgraph import serde
from stepgraph.stores import MemoryCheckpointStore


class Keeper(sg.Executor):
    def __init__(self, id: str) -> None:
        super().__init__(id=id)
        self.seen: list[str] = []

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str]) -> None:
        self.seen.append(text)
        await ctx.send(text)

    async def snapshot(self) -> list[str]:
        return list(self.seen)

    async def restore(self, data: list[str]) -> None:
        self.seen = list(data)


@sg.executor(id="plain")
async def plain(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(text)


def _workflow() -> sg.Workflow[str]:
    keeper = Keeper("keeper")
    return sg.WorkflowBuilder[str](start=keeper).add_edge(keeper, plain).build()


async def _tampered(change: dict[str, bytes | None], **fields: Any) -> sg.Session[str]:
    """A store holding the head of a finished run with some parts replaced, and a new session."""
    store = MemoryCheckpointStore()
    wf = _workflow()
    await wf.session("s", store=store).run("hi")
    head = (await store.list("s"))[0]
    cp = await store.load(head.id)
    parts = {**cp.parts, **{k: v for k, v in change.items() if v is not None}}
    for k, v in change.items():
        if v is None:
            parts.pop(k, None)
    bad = dataclasses.replace(
        cp,
        info=dataclasses.replace(cp.info, id="bad", parent_id=cp.info.id),
        parts=types.MappingProxyType(parts),
        **fields,
    )
    await store.save(bad)
    return wf.session("s", store=store)


@pytest.mark.parametrize(
    ("change", "fields", "says"),
    [
        ({"r": serde.encode({"not": "a list"})}, {}, "pending requests part is not a list"),
        ({"r": serde.encode(7)}, {}, "pending requests part is not a list"),
        ({"e:plain": serde.encode([1])}, {}, "keeps none"),
        ({"e:keeper": serde.encode(42)}, {}, "malformed"),  # restore() refuses an int
        ({"q": serde.encode(["x"])}, {}, "queued messages part"),
        ({}, {"version": 999}, "format version 999"),
        ({}, {"graph_signature": "other", "graph": '{"executors": 5}'}, "different graph"),
        ({}, {"graph_signature": "other", "graph": "[" * 5000}, "different graph"),
        ({}, {"graph_signature": "other", "graph": '"just a string"'}, "different graph"),
    ],
)
def test_a_malformed_checkpoint_raises_only_checkpoint_errors(
    change: dict[str, bytes | None], fields: dict[str, Any], says: str
) -> None:
    async def main() -> None:
        session = await _tampered(change, **fields)
        with pytest.raises(sg.CheckpointError) as info:
            await session.load()
        assert says in str(info.value)

    asyncio.run(main())


def test_ctx_emit_refuses_the_engines_own_events() -> None:
    forged: list[sg.Event] = [
        sg.RunCompleted(sg.RunStatus.IDLE),
        sg.Output("x", 1),
        sg.RequestIssued(sg.Request("r", "x", None, str)),
        sg.SuperstepCompleted(3),
        sg.CheckpointSaved("c", None, 1),
    ]

    @sg.executor(id="forger")
    async def forger(n: int, ctx: sg.Context[None, int]) -> None:
        await ctx.emit(forged[n])

    async def main() -> None:
        wf = sg.WorkflowBuilder[int](start=forger).build()
        for n, event in enumerate(forged):
            with pytest.raises(sg.ExecutorFailedError) as info:
                await wf.run(n)
            assert isinstance(info.value.__cause__, TypeError)
            assert type(event).__name__ in str(info.value.__cause__)

    asyncio.run(main())


def test_user_events_still_stream() -> None:
    @dataclasses.dataclass(frozen=True)
    class Progress(sg.Event):
        done: int

    @sg.executor(id="worker")
    async def worker(n: int, ctx: sg.Context[None, int]) -> None:
        await ctx.emit(Progress(n))

    async def main() -> None:
        result = await sg.WorkflowBuilder[int](start=worker).build().run(5)
        assert Progress(5) in result.events

    asyncio.run(main())


def test_restoring_a_fresh_sessions_checkpoint_keeps_the_count_like_reset() -> None:
    async def main() -> None:
        wf = _workflow()
        a = wf.session("a", store=MemoryCheckpointStore())
        fresh = await a.create_checkpoint()
        await a.run("one")
        await a.run("two")
        counted = a.superstep
        assert counted > 0
        await a.restore(fresh)
        b = wf.session("b")
        await b.run("one")
        await b.reset()
        assert (a.superstep, a.state, a.status) == (counted, {}, sg.RunStatus.IDLE)
        assert b.superstep > 0  # reset keeps it: the two behave alike

    asyncio.run(main())


def test_a_changed_child_graph_changes_the_parents_signature() -> None:
    def child(suffix: str) -> sg.Workflow[str]:
        @sg.executor(id=f"inner{suffix}")
        async def inner(text: str, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output(text)

        return sg.WorkflowBuilder[str](start=inner).build()

    def parent(suffix: str) -> sg.Workflow[str]:
        return sg.WorkflowBuilder[str](start=sg.SubWorkflow(child(suffix), id="sub")).build()

    assert parent("a").signature == parent("a").signature
    assert parent("a").signature != parent("b").signature

    async def main() -> None:
        store = MemoryCheckpointStore()
        await parent("a").session("s", store=store).run("x")
        with pytest.raises(sg.GraphMismatchError, match="sub"):
            await parent("b").session("s", store=store).load()

    asyncio.run(main())


def test_a_run_right_after_dropping_a_partly_read_stream_starts() -> None:
    import gc

    @sg.executor(id="count")
    async def count(n: int, ctx: sg.Context[int, int]) -> None:
        if n < 5:
            await ctx.send(n + 1)
        else:
            await ctx.yield_output(n)

    async def main() -> None:
        wf = sg.WorkflowBuilder[int](start=count).add_edge(count, count).build()
        session = wf.session("s")
        stream = session.run(0)
        seen = [await anext(stream) for _ in range(3)]
        assert isinstance(seen[0], sg.RunStarted)
        del stream
        gc.collect()
        result = await session.run(2)  # no ConcurrentRunError: the dropped run winds down first
        assert result.outputs == [5]
        assert session.status is sg.RunStatus.IDLE

    asyncio.run(main())


def test_a_live_run_still_refuses_a_second() -> None:
    async def main() -> None:
        wf = _workflow()
        session = wf.session("s")
        stream = session.run("a")
        await anext(stream)
        with pytest.raises(sg.ConcurrentRunError):
            session.run("b")
        await stream.aclose()

    asyncio.run(main())
