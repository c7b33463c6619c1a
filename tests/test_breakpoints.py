"""Breakpoints: `interrupt_before` / `interrupt_after` stop a run `PAUSED`; `resume()` goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import store_of

import stepgraph as sg

KINDS = ["memory", "sqlite", "file"]


def _chain(ran: list[str]) -> sg.Workflow[int]:
    """a -> b -> c: each notes that it ran and writes its input to state; c outputs."""

    @sg.executor(id="a")
    async def a(n: int, ctx: sg.Context[int]) -> None:
        ran.append("a")
        ctx.state.set("a", n)
        await ctx.send(n + 1)

    @sg.executor(id="b")
    async def b(n: int, ctx: sg.Context[int]) -> None:
        ran.append("b")
        ctx.state.set("b", n)
        await ctx.send(n + ctx.state.get("bonus", 0))

    @sg.executor(id="c")
    async def c(n: int, ctx: sg.Context[None, int]) -> None:
        ran.append("c")
        await ctx.yield_output(n)

    return sg.WorkflowBuilder(start=a).add_chain([a, b, c]).build(name="chain")


def _invoked(result: sg.RunResult) -> list[str]:
    return [e.executor_id for e in result.events if isinstance(e, sg.ExecutorInvoked)]


@pytest.mark.parametrize("kind", KINDS)
def test_interrupt_before_pauses_and_a_reopened_session_resumes(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        ran: list[str] = []
        wf = _chain(ran)
        store = store_of(kind, tmp_path)
        session = wf.session("s", store=store)
        result = await session.run(1, interrupt_before=["b"])
        assert result.status is sg.RunStatus.PAUSED
        assert session.status is sg.RunStatus.PAUSED
        assert ran == ["a"]
        assert result.outputs == []
        assert dict(session.state) == {"a": 1}
        assert result.checkpoint_id == session.head
        head = await session.checkpoint()
        assert head.status == "PAUSED"
        assert head.has_queued_messages
        assert isinstance(result.events[-1], sg.RunCompleted)
        assert result.events[-1].status is sg.RunStatus.PAUSED
        with pytest.raises(sg.NotIdleError):
            session.run(5)

        # A restart: a new session object (over a new store object where it persists).
        again = wf.session("s", store=store if kind == "memory" else store_of(kind, tmp_path))
        await again.load()
        assert again.status is sg.RunStatus.PAUSED
        assert again.head == session.head
        resumed = await again.resume(interrupt_before=["b"])  # not stopped where it paused
        assert resumed.status is sg.RunStatus.IDLE
        assert resumed.outputs == [2]
        assert ran == ["a", "b", "c"]
        assert (await again.checkpoint()).status == "IDLE"

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_interrupt_after_pauses_after_the_superstep_it_ran_in(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        ran: list[str] = []
        session = _chain(ran).session("s", store=store_of(kind, tmp_path))
        result = await session.run(1, interrupt_after=["b"])
        assert result.status is sg.RunStatus.PAUSED
        assert ran == ["a", "b"]
        assert dict(session.state) == {"a": 1, "b": 2}  # b's superstep was committed
        assert session.superstep == 2
        history = await session.history()
        assert history[0].id == session.head
        assert history[0].parent_id == history[1].id  # the pause follows b's checkpoint
        assert history[0].superstep == history[1].superstep == 2
        resumed = await session.resume(interrupt_after=["b"])
        assert resumed.status is sg.RunStatus.IDLE
        assert resumed.outputs == [2]
        assert ran == ["a", "b", "c"]

    asyncio.run(main())


def test_the_skip_after_a_pause_covers_only_the_first_superstep() -> None:
    async def main() -> None:
        ran: list[str] = []
        session = _chain(ran).session("s", store=sg.MemoryCheckpointStore())
        assert (await session.run(1, interrupt_before=["b", "c"])).status is sg.RunStatus.PAUSED
        assert ran == ["a"]
        paused = await session.resume(interrupt_before=["b", "c"])
        assert paused.status is sg.RunStatus.PAUSED  # b ran, then c's breakpoint held
        assert ran == ["a", "b"]
        assert _invoked(paused) == ["b"]
        done = await session.resume(interrupt_before=["b", "c"])
        assert done.status is sg.RunStatus.IDLE
        assert done.outputs == [2]
        assert ran == ["a", "b", "c"]

    asyncio.run(main())


def test_interrupt_before_the_start_executor_stops_before_any_superstep() -> None:
    async def main() -> None:
        ran: list[str] = []
        session = _chain(ran).session("s", store=sg.MemoryCheckpointStore())
        result = await session.run(1, interrupt_before=["a"])
        assert result.status is sg.RunStatus.PAUSED
        assert ran == []
        assert session.superstep == 0
        assert not any(isinstance(e, sg.SuperstepStarted) for e in result.events)
        assert (await session.resume()).outputs == [2]

    asyncio.run(main())


def test_interrupt_after_the_last_superstep_ends_the_run_as_usual() -> None:
    async def main() -> None:
        ran: list[str] = []
        session = _chain(ran).session("s", store=sg.MemoryCheckpointStore())
        result = await session.run(1, interrupt_after=["c"])
        assert result.status is sg.RunStatus.IDLE  # nothing queued: nothing to pause
        assert result.outputs == [2]
        assert session.status is sg.RunStatus.IDLE

    asyncio.run(main())


def test_without_a_store_a_pause_lives_in_memory() -> None:
    async def main() -> None:
        ran: list[str] = []
        session = _chain(ran).session("s")
        result = await session.run(1, interrupt_after=["a"])
        assert result.status is sg.RunStatus.PAUSED
        assert result.checkpoint_id is None
        assert session.status is sg.RunStatus.PAUSED
        assert (await session.resume()).outputs == [2]
        assert ran == ["a", "b", "c"]

    asyncio.run(main())


def test_a_streamed_run_ends_paused_after_saving_the_pause() -> None:
    async def main() -> None:
        session = _chain([]).session("s", store=sg.MemoryCheckpointStore())
        events = [e async for e in session.run(1, interrupt_before=["c"])]
        assert events[-1] == sg.RunCompleted(sg.RunStatus.PAUSED)
        saved = events[-2]
        assert isinstance(saved, sg.CheckpointSaved)
        assert saved.checkpoint_id == session.head
        assert saved.superstep == 2
        assert session.status is sg.RunStatus.PAUSED

    asyncio.run(main())


def test_breakpoints_on_respond_and_time_travel_to_a_pause() -> None:
    class Ask(sg.Executor):
        @sg.handler
        async def on_start(self, text: str, ctx: sg.Context[str]) -> None:
            await ctx.request(text, response_type=str)

        @sg.response_handler
        async def on_answer(self, question: str, answer: str, ctx: sg.Context[str]) -> None:
            await ctx.send(f"{question}: {answer}")

    @sg.executor(id="tell")
    async def tell(text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(text)

    wf = sg.WorkflowBuilder(start=Ask(id="ask")).add_edge("ask", tell).build()

    async def main() -> None:
        session = wf.session("s", store=sg.MemoryCheckpointStore())
        first = await session.run("go?")
        assert first.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        (request,) = session.pending_requests
        paused = await session.respond({request.id: "yes"}, interrupt_before=["tell"])
        assert paused.status is sg.RunStatus.PAUSED
        assert paused.outputs == []
        pause = session.head
        assert pause is not None
        done = await session.resume()
        assert done.outputs == ["go?: yes"]
        # Time travel back to the pause: it is paused again, and goes on the same way.
        again = await session.resume(pause, interrupt_before=["tell"])
        assert again.status is sg.RunStatus.IDLE
        assert again.outputs == ["go?: yes"]

    asyncio.run(main())


def test_unknown_or_misspelt_breakpoints_are_refused_before_anything_runs() -> None:
    async def main() -> None:
        ran: list[str] = []
        session = _chain(ran).session("s")
        with pytest.raises(ValueError, match=r"'x'.*'a', 'b', 'c'"):
            session.run(1, interrupt_before=["a", "x"])
        with pytest.raises(ValueError, match="interrupt_after names no executor 'y'"):
            session.resume(interrupt_after=["y"])
        with pytest.raises(TypeError, match=r"interrupt_before=\['b'\]"):
            session.run(1, interrupt_before="b")
        assert ran == []
        assert (await session.run(1)).outputs == [2]  # the guard was never taken

    asyncio.run(main())


def test_a_loop_stops_at_every_activation_of_its_breakpoint() -> None:
    @sg.executor(id="count")
    async def count(n: int, ctx: sg.Context[int, int]) -> None:
        if n < 3:
            await ctx.send(n + 1)
        else:
            await ctx.yield_output(n)

    @sg.executor(id="echo")
    async def echo(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    wf = (
        sg.WorkflowBuilder(start=count)
        .add_edge(count, echo)
        .add_edge(echo, count)
        .build(name="loop")
    )

    async def main() -> None:
        session = wf.session("s", store=sg.MemoryCheckpointStore())
        stops: list[Any] = []
        result = await session.run(0, interrupt_before=["echo"])
        while result.status is sg.RunStatus.PAUSED:
            stops.append(session.superstep)
            result = await session.resume(interrupt_before=["echo"])
        assert stops == [1, 3, 5]
        assert result.outputs == [3]

    asyncio.run(main())
