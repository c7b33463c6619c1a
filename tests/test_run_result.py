"""`RunResult`: what an awaited run gives back, and what a finished run keeps alive."""

import asyncio
import copy
import dataclasses
import gc
import pickle
import weakref
from dataclasses import dataclass
from typing import Any

import pytest

import stepgraph as sg


@dataclass(frozen=True)
class Note(sg.Event):
    text: str


class Start(sg.Executor):
    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[int, str]) -> None:
        await ctx.emit(Note(f"start saw {n}"))
        await ctx.yield_output(f"out {n}")
        await ctx.send(n + 1)


class Ask(sg.Executor):
    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(["a list output", n])
        await ctx.request(n, str)

    @sg.response_handler
    async def on_answer(self, question: int, answer: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(answer)


class Echo(sg.Executor):
    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(sg.RunStatus)  # a class as an output value
        await ctx.emit(Note("echo"))


def build() -> sg.Workflow[int]:
    start, ask, echo = Start("start"), Ask("ask"), Echo("echo")
    return sg.WorkflowBuilder(start=start).add_fan_out(start, [ask, echo]).build()


def test_awaited_events_are_the_streamed_events() -> None:
    async def main() -> tuple[sg.RunResult, list[sg.Event], sg.RunResult]:
        wf = build()
        awaited = await wf.run(1)
        streamed = [event async for event in wf.stream(1)]
        # Answering runs the response handler; its result is compared with its stream too.
        session = wf.session()
        await session.run(1)
        (request,) = session.pending_requests
        answered = await session.respond({request.id: "yes"})
        return awaited, streamed, answered

    awaited, streamed, answered = asyncio.run(main())
    kinds = [type(e).__name__ for e in awaited.events]
    assert kinds[0] == "RunStarted"
    assert kinds[-1] == "RunCompleted"
    assert "Note" in kinds
    assert "RequestIssued" in kinds
    assert "Output" in kinds

    def same(e: sg.Event) -> Any:  # ids of requests and sessions differ between runs
        if isinstance(e, sg.RequestIssued):
            return ("RequestIssued", e.request.payload)
        if isinstance(e, sg.RunStarted):
            return "RunStarted"
        return e

    assert [same(e) for e in awaited.events] == [same(e) for e in streamed]
    outputs = [e.value for e in awaited.events if isinstance(e, sg.Output)]
    assert outputs == awaited.outputs == ["out 1", ["a list output", 2], sg.RunStatus]
    assert answered.outputs == ["yes"]
    assert answered.events[-1] == sg.RunCompleted(sg.RunStatus.IDLE)


def test_run_result_is_immutable_comparable_and_printable() -> None:
    async def main() -> tuple[sg.RunResult, sg.RunResult]:
        session = build().session()
        first = await session.run(1)
        return first, sg.RunResult(
            first.session_id,
            list(first.outputs),
            list(first.events),
            first.status,
            first.pending_requests,
            first.checkpoint_id,
        )

    result, copy = asyncio.run(main())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = sg.RunStatus.FAILED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del result.outputs  # type: ignore[misc]
    assert result == copy
    assert result != sg.RunResult(result.session_id, [], [], result.status)
    assert result.events is result.events  # made once
    text = repr(result)
    assert text.startswith("RunResult(session_id=")
    assert "SuperstepStarted(superstep=1)" in text


def test_a_result_copies_and_pickles_before_its_events_are_read() -> None:
    """An awaited run's events are built on first read; a copy made before that has them too."""
    result = asyncio.run(build().run(1))
    pickled = pickle.loads(pickle.dumps(result))
    copied = copy.deepcopy(result)
    assert pickled == copied == result
    assert isinstance(pickled.events[0], sg.RunStarted)
    assert not hasattr(result, "event")  # other names are not invented
    with pytest.raises(TypeError):
        hash(result)  # holds lists


def test_a_finished_run_lets_its_one_shot_session_go() -> None:
    """The `Run` keeps its result, not the session, its executors or the awaiting task."""

    async def main() -> tuple[Any, Any, sg.Run, bool]:
        wf = build()
        session = wf.session()
        run = session.run(1)
        result = await run
        assert result.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        gone = weakref.ref(session)
        executor = weakref.ref(session.core.content.executors[0])  # pyright: ignore[reportPrivateUsage, reportArgumentType]
        del session
        task = asyncio.ensure_future(wf.run(2))
        await task
        task_run = weakref.ref(task.get_coro())  # type: ignore[arg-type]
        del task
        await asyncio.sleep(0)  # the loop lets go of the finished task
        return gone, executor, run, task_run() is None

    gc.disable()  # freed by reference counting alone: no cycle is left behind
    try:
        gone, executor, run, task_run_freed = asyncio.run(main())
        assert gone() is None
        assert executor() is None
        assert run.result is not None
        assert run.result.outputs[0] == "out 1"
        assert task_run_freed
    finally:
        gc.enable()
