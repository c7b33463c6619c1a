"""Black-box tests of ARCHITECTURE.md section 5 (events) and rule 9 (live streaming).

Events are compared through `describe()`, which keeps the fields the contract names
and ignores event kinds it does not list, so adding event kinds stays possible.
"""

import asyncio
import dataclasses
from typing import Any

import pytest

import stepgraph as sg

SAFETY_S = 5.0


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), SAFETY_S)


@dataclasses.dataclass(frozen=True)
class Progress(sg.Event):
    step: str


def describe(event: Any) -> tuple[Any, ...] | None:
    if isinstance(event, sg.RunStarted):
        return ("RunStarted", event.session_id)
    if isinstance(event, sg.SuperstepStarted):
        return ("SuperstepStarted", event.superstep)
    if isinstance(event, sg.SuperstepCompleted):
        return ("SuperstepCompleted", event.superstep)
    if isinstance(event, sg.ExecutorInvoked):
        return ("ExecutorInvoked", event.executor_id, event.superstep)
    if isinstance(event, sg.ExecutorCompleted):
        return ("ExecutorCompleted", event.executor_id, event.superstep)
    if isinstance(event, sg.ExecutorFailed):
        return ("ExecutorFailed", event.executor_id)
    if isinstance(event, sg.Output):
        return ("Output", event.executor_id, event.value)
    if isinstance(event, sg.RunCompleted):
        return ("RunCompleted", event.status)
    if isinstance(event, Progress):
        return ("Progress", event.step)
    return None


def described(events: Any) -> list[tuple[Any, ...]]:
    return [d for d in (describe(e) for e in events) if d is not None]


def chain_workflow() -> sg.Workflow:
    @sg.executor(id="a")
    async def a(n: int, ctx: sg.Context[int, str]) -> None:
        await ctx.emit(Progress("a"))
        await ctx.yield_output(f"A{n}")
        await ctx.send(n)

    @sg.executor(id="b")
    async def b(n: int, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"B{n}")

    return sg.WorkflowBuilder(start=a).add_edge(a, b).build()


def expected_chain(session_id: str, n: int, first: int) -> list[tuple[Any, ...]]:
    second = first + 1
    return [
        ("RunStarted", session_id),
        ("SuperstepStarted", first),
        ("ExecutorInvoked", "a", first),
        ("Progress", "a"),
        ("Output", "a", f"A{n}"),
        ("ExecutorCompleted", "a", first),
        ("SuperstepCompleted", first),
        ("SuperstepStarted", second),
        ("ExecutorInvoked", "b", second),
        ("Output", "b", f"B{n}"),
        ("ExecutorCompleted", "b", second),
        ("SuperstepCompleted", second),
        ("RunCompleted", sg.RunStatus.IDLE),
    ]


def test_streamed_events_in_order_with_numbering_over_the_session_life() -> None:
    wf = chain_workflow()

    async def main() -> list[list[Any]]:
        session = wf.session("ev")
        first = [e async for e in session.run(1)]
        second = [e async for e in session.run(2)]
        return [first, second]

    first, second = asyncio.run(main())
    assert described(first) == expected_chain("ev", 1, first=1)
    assert described(second) == expected_chain("ev", 2, first=3)


def test_awaited_result_events_match_the_streamed_events() -> None:
    wf = chain_workflow()

    async def main() -> tuple[list[Any], Any]:
        streamed = [e async for e in wf.session("same").run(5)]
        result = await wf.session("same").run(5)
        return streamed, result

    streamed, result = asyncio.run(main())
    assert described(result.events) == described(streamed) == expected_chain("same", 5, 1)
    assert result.outputs == ["A5", "B5"]
    assert result.status is sg.RunStatus.IDLE
    assert result.session_id == "same"
    assert result.checkpoint_id is None  # no store
    assert not any(isinstance(e, sg.CheckpointSaved) for e in [*result.events, *streamed])
    assert not result.pending_requests


def test_events_of_concurrent_executors_nest_inside_their_superstep() -> None:
    @sg.executor(id="s")
    async def s(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    def leaf(name: str) -> sg.Executor:
        @sg.executor(id=name)
        async def handle(n: int, ctx: sg.Context[None, str]) -> None:
            await ctx.emit(Progress(name))
            await asyncio.sleep(0)
            await ctx.yield_output(name)

        return handle

    x, y, z = leaf("x"), leaf("y"), leaf("z")
    wf = sg.WorkflowBuilder(start=s).add_fan_out(s, [x, y, z]).build()
    events = described(asyncio.run(wf.run(0)).events)
    begin = events.index(("SuperstepStarted", 2))
    end = events.index(("SuperstepCompleted", 2))
    inside = events[begin + 1 : end]
    for name in ("x", "y", "z"):
        invoked = inside.index(("ExecutorInvoked", name, 2))
        progress = inside.index(("Progress", name))
        output = inside.index(("Output", name, name))
        completed = inside.index(("ExecutorCompleted", name, 2))
        assert invoked < progress < output < completed
    assert events[0] == ("RunStarted", events[0][1])
    assert events[-1] == ("RunCompleted", sg.RunStatus.IDLE)
    assert [e for e in events if e[0] == "RunCompleted"] == [events[-1]]


def test_events_are_streamed_while_the_superstep_is_still_running() -> None:
    async def main() -> list[Any]:
        seen_output = asyncio.Event()

        @sg.executor(id="talker")
        async def talker(n: int, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output("first")
            await ctx.emit(Progress("first"))
            await wait(seen_output)  # only the consumer can set this
            await ctx.yield_output("second")

        wf = sg.WorkflowBuilder(start=talker).build()
        order: list[Any] = []
        async for event in wf.stream(0):
            d = describe(event)
            if d is not None:
                order.append(d)
            if d == ("Progress", "first"):
                seen_output.set()
        return order

    order = asyncio.run(main())
    assert order.index(("Output", "talker", "first")) < order.index(("Progress", "first"))
    assert order.index(("Progress", "first")) < order.index(("Output", "talker", "second"))
    assert order[-1] == ("RunCompleted", sg.RunStatus.IDLE)


def test_failed_stream_yields_executor_failed_and_run_completed_then_raises() -> None:
    boom = KeyError("bad input")

    @sg.executor(id="a")
    async def a(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    @sg.executor(id="bad")
    async def bad(n: int, ctx: sg.Context[None, str]) -> None:
        raise boom

    wf = sg.WorkflowBuilder(start=a).add_edge(a, bad).build()

    async def main() -> tuple[list[Any], sg.ExecutorFailedError]:
        seen: list[Any] = []

        async def consume() -> None:
            async for event in wf.session("f").run(1):
                seen.append(event)

        with pytest.raises(sg.ExecutorFailedError) as info:
            await consume()
        return seen, info.value

    seen, err = asyncio.run(main())
    events = described(seen)
    assert events[0] == ("RunStarted", "f")
    assert ("ExecutorFailed", "bad") in events
    assert events[-1] == ("RunCompleted", sg.RunStatus.FAILED)
    assert events.index(("ExecutorFailed", "bad")) < len(events) - 1
    assert ("SuperstepCompleted", 2) not in events
    assert err.__cause__ is boom
    assert err.executor_id == "bad"


def test_resume_stream_starts_with_run_started_and_ends_with_run_completed() -> None:
    attempts: list[int] = []

    @sg.executor(id="flaky")
    async def flaky(n: int, ctx: sg.Context[None, int]) -> None:
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        await ctx.yield_output(n)

    wf = sg.WorkflowBuilder(start=flaky).build()

    async def main() -> list[Any]:
        session = wf.session("r")
        with pytest.raises(sg.ExecutorFailedError):
            await session.run(3)
        return [e async for e in session.resume()]

    events = described(asyncio.run(main()))
    assert events[0] == ("RunStarted", "r")
    assert ("Output", "flaky", 3) in events
    assert events[-1] == ("RunCompleted", sg.RunStatus.IDLE)


def test_user_event_subclass_is_delivered_as_is() -> None:
    @sg.executor(id="emitter")
    async def emitter(n: int, ctx: sg.Context[None]) -> None:
        await ctx.emit(Progress(f"p{n}"))

    wf = sg.WorkflowBuilder(start=emitter).build()
    result = asyncio.run(wf.run(7))
    mine = [e for e in result.events if isinstance(e, Progress)]
    assert mine == [Progress("p7")]
    assert result.outputs == []


def test_events_are_frozen_dataclasses_and_event_declares_no_fields() -> None:
    assert not dataclasses.is_dataclass(sg.Event) or dataclasses.fields(sg.Event) == ()
    result = asyncio.run(chain_workflow().run(1))
    for event in result.events:
        assert isinstance(event, sg.Event)
        assert dataclasses.is_dataclass(event)
        field = dataclasses.fields(event)[0].name if dataclasses.fields(event) else "x"
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, field, None)


# --------------------------------------------------------------------------- a paused consumer


def three_step_chain(calls: list[tuple[str, int]]) -> sg.Workflow:
    def step(name: str) -> sg.Executor:
        @sg.executor(id=name)
        async def handle(n: int, ctx: sg.Context[int, str]) -> None:
            calls.append((name, ctx.superstep))
            ctx.state.set(name, n)
            await ctx.yield_output(name)
            if name != "c":
                await ctx.send(n)

        return handle

    a, b, c = step("a"), step("b"), step("c")
    return sg.WorkflowBuilder(start=a).add_chain([a, b, c]).build()


def test_consumer_that_stops_iterating_pauses_the_run_at_the_next_boundary() -> None:
    calls: list[tuple[str, int]] = []
    wf = three_step_chain(calls)

    async def main() -> tuple[list[Any], list[Any], list[Any]]:
        session = wf.session("p")
        run = session.run(1)
        first = [await anext(aiter(run))]  # RunStarted; superstep 1 is under way
        for _ in range(50):  # a few iterations: plenty to run every superstep if unpaused
            await asyncio.sleep(0)
        calls_while_paused = list(calls)
        rest = [event async for event in run]
        return calls_while_paused, described(first), described(rest)

    calls_while_paused, first, rest = asyncio.run(main())
    assert calls_while_paused == [("a", 1)]  # superstep 2 waits for the consumer
    assert first == [("RunStarted", "p")]
    assert [e for e in rest if e[0] == "Output"] == [
        ("Output", "a", "a"),
        ("Output", "b", "b"),
        ("Output", "c", "c"),
    ]
    assert rest[-1] == ("RunCompleted", sg.RunStatus.IDLE)
    assert calls == [("a", 1), ("b", 2), ("c", 3)]


def test_a_slow_consumer_holds_the_run_at_each_boundary_until_it_has_taken_the_events() -> None:
    """Backpressure: a consumer that awaits between events is never a superstep behind."""
    calls: list[tuple[str, int]] = []
    wf = three_step_chain(calls)

    async def main() -> list[tuple[int, int]]:
        seen: list[tuple[int, int]] = []  # (superstep of the event, newest superstep run)
        async for event in wf.stream(1):
            step = getattr(event, "superstep", None)
            if isinstance(step, int):
                seen.append((step, max(s for _, s in calls)))
            for _ in range(20):  # slow: plenty of loop turns for a producer to run ahead
                await asyncio.sleep(0)
        return seen

    seen = asyncio.run(main())
    assert {step for step, _ in seen} == {1, 2, 3}
    # While the consumer takes events of superstep k, no handler of k + 1 has run.
    assert all(newest == step for step, newest in seen)


def test_closing_a_paused_stream_cancels_it_at_the_last_committed_superstep() -> None:
    calls: list[tuple[str, int]] = []
    wf = three_step_chain(calls)

    async def main() -> tuple[Any, Any, Any]:
        session = wf.session("p")
        run = session.run(1)
        await anext(aiter(run))
        for _ in range(50):
            await asyncio.sleep(0)
        await run.aclose()
        status, state = session.status, dict(session.state)
        return status, state, await session.run(2)

    status, state, after = asyncio.run(main())
    assert status is sg.RunStatus.CANCELLED
    assert state == {"a": 1}
    assert after.outputs == ["a", "b", "c"]  # starts clean: nothing queued from run 1
    assert calls == [("a", 1), ("a", 2), ("b", 3), ("c", 4)]
