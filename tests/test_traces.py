"""Checkpoint traces: what a durable save tells of its superstep (`Checkpoint.trace`).

Every store keeps a checkpoint's trace with its record, so a run's events and
handler timings can be replayed from the store when the live stream is gone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import store_of

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, AgentUpdate, ScriptedChatClient
from stepgraph.stores import Checkpoint, MemoryCheckpointStore


@dataclasses.dataclass(frozen=True)
class Note(sg.Event):
    text: str
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Ask:
    question: str


class Upper(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str]) -> None:
        await ctx.emit(Note(f"saw {text}", ("a", "b")))
        await ctx.send(text.upper())


@sg.executor(id="shout")
async def shout(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(text + "!")


def chain() -> sg.Workflow[str]:
    return sg.WorkflowBuilder[str](start=Upper(id="upper")).add_edge("upper", shout).build()


async def traces(store: sg.CheckpointStore, sid: str) -> list[Checkpoint]:
    """The session's checkpoints, oldest first, loaded from the store."""
    return [await store.load(i.id) for i in reversed(await store.list(sid))]


def test_each_save_tells_its_run_kind_timings_and_events() -> None:
    async def main() -> None:
        store = MemoryCheckpointStore()
        session = chain().session("s", store=store)
        await session.run("hi")
        await session.run("again")
        cps = await traces(store, "s")
        kinds = [(cp.trace or {}).get("kind") for cp in cps]
        assert kinds == ["input", "superstep", "superstep"] * 2
        first, second = {cp.trace["run"] for cp in cps[:3]}, {cp.trace["run"] for cp in cps[3:]}
        assert len(first) == len(second) == 1
        assert first != second  # one id per run
        step1, step2 = cps[1].trace, cps[2].trace
        assert [h[0] for h in step1["handlers"]] == ["upper"]
        assert [h[0] for h in step2["handlers"]] == ["shout"]
        for step in (step1, step2):
            (_, start, ms) = step["handlers"][0]
            assert start >= 0
            assert ms >= 0
            assert start + ms <= step["us"] + 2  # inside the superstep (truncated to µs)
        assert step1["events"] == [{"type": "note", "text": "saw hi", "tags": ["a", "b"]}]
        assert step2["events"] == [{"type": "output", "executor_id": "shout", "value": "HI!"}]
        assert "events" not in cps[0].trace

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "sqlite", "file"])
def test_traces_survive_the_store_and_a_reopen(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        store = store_of(kind, tmp_path)
        session = chain().session("s", store=store)
        for n in range(40):  # past FULL_EVERY: deltas and full records both
            await session.run(f"m{n}")
        live = [cp.trace for cp in await traces(store, "s")]
        if kind != "memory":  # a memory store holds nothing once closed
            await store.aclose()
        again = store_of(kind, tmp_path) if kind != "memory" else store
        stored = [cp.trace for cp in await traces(again, "s")]
        assert stored == live
        assert stored[-1] is not None
        assert stored[-1]["events"] == [{"type": "output", "executor_id": "shout", "value": "M39!"}]
        await again.aclose()

    asyncio.run(main())


def test_traces_in_postgres() -> None:
    from tests.stores.pg_support import RUN, require_dsn

    from stepgraph.stores.postgres import PostgresCheckpointStore

    dsn = require_dsn()

    async def main() -> None:
        schema = f"{RUN}_traces_{uuid.uuid4().hex[:6]}"
        store = PostgresCheckpointStore(dsn, schema=schema)
        session = chain().session("s", store=store)
        await session.run("pg")
        await store.aclose()
        again = PostgresCheckpointStore(dsn, schema=schema)
        cps = await traces(again, "s")
        assert [cp.trace["kind"] for cp in cps if cp.trace] == ["input", "superstep", "superstep"]
        assert cps[-1].trace is not None
        assert cps[-1].trace["events"][0]["value"] == "PG!"
        await again.aclose()

    asyncio.run(main())


class Asker(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.request(Ask(text), response_type=str)

    @sg.response_handler
    async def on_answer(self, ask: Ask, answer: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"{ask.question}={answer}")


def test_requests_pauses_and_cancellations_are_traced() -> None:
    async def main() -> None:
        store = MemoryCheckpointStore()
        wf = sg.WorkflowBuilder[str](start=Asker(id="ask")).build()
        session = wf.session("s", store=store)
        await session.run("colour?")
        request = session.pending_requests[0]
        cps = await traces(store, "s")
        (issued,) = cps[-1].trace["events"]
        assert issued["type"] == "request_issued"
        assert issued["request"]["id"] == request.id
        assert issued["request"]["payload"] == {"question": "colour?"}
        await session.respond({request.id: "blue"})
        assert (await traces(store, "s"))[-1].trace["events"] == [
            {"type": "output", "executor_id": "ask", "value": "colour?=blue"}
        ]

        paused = chain().session("p", store=store)
        await paused.run("x", interrupt_before=["shout"])
        assert [cp.trace["kind"] for cp in await traces(store, "p")] == [
            "input",
            "superstep",
            "paused",
        ]

        started = asyncio.Event()

        @sg.executor(id="slow")
        async def slow(text: str, ctx: sg.Context[None, str]) -> None:
            started.set()
            await asyncio.Event().wait()

        cancelled = sg.WorkflowBuilder[str](start=slow).build().session("c", store=store)
        run = asyncio.ensure_future(cancelled.run("x"))
        await started.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert [cp.trace["kind"] for cp in await traces(store, "c")] == ["input", "cancelled"]

    asyncio.run(main())


class Split(sg.Executor):
    @sg.handler
    async def on_n(self, n: int, ctx: sg.Context[list[int]]) -> None:
        await ctx.send(list(range(n)))


@sg.executor(id="work")
async def work(x: int, ctx: sg.Context[int]) -> None:
    await ctx.send(x * 10)


@sg.executor(id="total")
async def total(xs: list[int], ctx: sg.Context[None, int]) -> None:
    await ctx.yield_output(sum(xs))


def test_map_items_are_timed_one_row_each() -> None:
    async def main() -> None:
        store = MemoryCheckpointStore()
        split = Split(id="split")
        wf = sg.WorkflowBuilder[int](start=split).add_map(split, work, total).build()
        session = wf.session("m", store=store)
        assert (await session.run(4)).outputs == [60]
        rows = [r for cp in await traces(store, "m") for r in (cp.trace or {}).get("handlers", [])]
        items = sorted(r[3] for r in rows if r[0] == "work")
        assert items == [0, 1, 2, 3]
        assert all(len(r) == 3 for r in rows if r[0] != "work")  # no item index

    asyncio.run(main())


def test_a_failed_superstep_leaves_no_trace_and_resume_is_a_new_run() -> None:
    async def main() -> None:
        store = MemoryCheckpointStore()
        fail = {"on": True}

        @sg.executor(id="flaky")
        async def flaky(text: str, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output("partial")  # rolled back with its superstep
            if fail["on"]:
                raise RuntimeError("down")

        session = sg.WorkflowBuilder[str](start=flaky).build().session("f", store=store)
        with pytest.raises(sg.ExecutorFailedError):
            await session.run("x")
        before = await traces(store, "f")
        assert [cp.trace["kind"] for cp in before] == ["input"]
        fail["on"] = False
        await session.resume()
        after = await traces(store, "f")
        assert [cp.trace["kind"] for cp in after] == ["input", "superstep"]
        assert after[1].trace["run"] != after[0].trace["run"]
        assert after[1].trace["events"] == [
            {"type": "output", "executor_id": "flaky", "value": "partial"}
        ]

    asyncio.run(main())


def test_token_updates_stay_out_and_the_reply_is_kept() -> None:
    async def main() -> None:
        store = MemoryCheckpointStore()
        client = ScriptedChatClient(["a reply in several words"], chunk_words=1)
        agent = AgentExecutor(Agent("writer", client), stream=True)
        wf = sg.WorkflowBuilder[str](start=agent).build()
        session = wf.session("a", store=store)
        seen = [e async for e in session.run("hello")]
        assert any(isinstance(e, AgentUpdate) for e in seen)  # tokens did stream live
        events = [e for cp in await traces(store, "a") for e in (cp.trace or {}).get("events", [])]
        assert not [e for e in events if e["type"] == "agent_update"]
        outputs = [e for e in events if e["type"] == "output"]
        assert len(outputs) == 1
        assert "a reply in several words" in str(outputs[0]["value"])

    asyncio.run(main())


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: "x" * 100_000, "bytes, over the"),
        (lambda: "lone \ud800 surrogate", "UnicodeEncodeError"),
    ],
)
def test_an_event_that_cannot_be_kept_is_named_not_fatal(make: Callable[[], Any], why: str) -> None:
    async def main() -> None:
        store = MemoryCheckpointStore()

        @sg.executor(id="emit")
        async def emit(text: str, ctx: sg.Context[None, str]) -> None:
            await ctx.emit(Note(make()))
            await ctx.yield_output("done")

        session = sg.WorkflowBuilder[str](start=emit).build().session("e", store=store)
        assert (await session.run("x")).outputs == ["done"]  # the save did not fail
        events = (await traces(store, "e"))[-1].trace["events"]
        assert events[0]["type"] == "note"
        assert why in events[0]["omitted"]
        assert "text" not in events[0]
        assert events[1]["value"] == "done"

    asyncio.run(main())


def test_a_record_whose_trace_is_not_an_object_is_refused() -> None:
    from stepgraph.stores import _record

    async def main() -> None:
        store = MemoryCheckpointStore()
        session = chain().session("r", store=store)
        await session.run("x")
        cp = (await traces(store, "r"))[-1]
        blob = _record.pack(cp)
        assert _record.unpack(blob).trace == cp.trace
        bad = _record.pack(dataclasses.replace(cp, trace=["not", "an", "object"]))  # type: ignore[arg-type]
        with pytest.raises(sg.CheckpointDecodeError, match="trace is not an object"):
            _record.unpack(bad)

    asyncio.run(main())


def test_without_a_store_runs_save_nothing_and_create_checkpoint_says_so() -> None:
    async def main() -> None:
        session = chain().session("n")
        await session.run("x")
        assert await session.history() == []  # no store: the run saved nothing
        cid = await session.create_checkpoint()
        cp = await session.checkpoint(cid)
        assert cp is not None
        assert cp.trace == {"kind": "checkpoint"}

    asyncio.run(main())


def test_a_handler_that_waits_shows_at_least_its_wait() -> None:
    async def main() -> None:
        store = MemoryCheckpointStore()

        @sg.executor(id="waits")
        async def waits(text: str, ctx: sg.Context[None, str]) -> None:
            await asyncio.sleep(0.02)  # the duration under test, not a race
            await ctx.yield_output(text)

        session = sg.WorkflowBuilder[str](start=waits).build().session("w", store=store)
        await session.run("x")
        step = (await traces(store, "w"))[-1].trace
        assert step is not None
        (row,) = step["handlers"]
        assert row[0] == "waits"
        assert row[2] >= 19_900
        assert step["us"] >= row[2]

    asyncio.run(main())
