"""Black-box tests of ARCHITECTURE.md section 4 rule 5 and section 3: cancellation.

A run stopped mid-superstep (task cancelled, `run.cancel()`, stream closed, left by
`async with`, or dropped) cancels its handlers, commits nothing of that superstep,
drops its undelivered messages and fan-in buffers, leaves the session CANCELLED at
its last committed superstep and releases the guard; the next run starts clean.
The handler is always blocked on an asyncio.Event when the run is stopped, and the
Event is set afterwards: an orphaned handler would then wake up and leak.
"""

import asyncio
from typing import Any

import pytest
from tests.lifecycle_support import SAFETY_S, Entered, Hub, spin, wait

import stepgraph as sg


class Entry(sg.Executor):
    def __init__(self, id: str, hub: Hub) -> None:
        super().__init__(id=id)
        self.hub = hub

    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[int, str]) -> None:
        self.hub.entry_supersteps.append(ctx.superstep)
        ctx.state.set(f"entry{n}", True)
        await ctx.yield_output(f"in{n}")
        await ctx.send(n)


class Worker(sg.Executor):
    """Passes `n` on as `out<n>`; for a gated `n` it first writes state, yields an
    output, sends, emits `Entered(n)` and blocks until the gate opens."""

    def __init__(self, id: str, hub: Hub) -> None:
        super().__init__(id=id)
        self.hub = hub

    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[str, str]) -> None:
        self.hub.calls.append(n)
        gate = self.hub.gates.get(n)
        if gate is not None:
            ctx.state.set(f"w{n}", True)
            await ctx.yield_output(f"partial{n}")
            await ctx.send(f"early{n}")
            await ctx.emit(Entered(n))
            self.hub.entered[n].set()
            try:
                await asyncio.wait_for(gate.wait(), SAFETY_S)
            except asyncio.CancelledError:
                self.hub.cancelled.append(n)
                raise
        await ctx.send(f"out{n}")


class Sink(sg.Executor):
    @sg.handler
    async def on_str(self, message: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(message)


def gated_workflow(hub: Hub) -> sg.Workflow:
    entry, worker, sink = Entry("entry", hub), Worker("worker", hub), Sink("sink")
    return sg.WorkflowBuilder(start=entry).add_chain([entry, worker, sink]).build()


async def iterate_until_entered(run: Any, n: int) -> list[Any]:
    """Iterate `run` until its worker is blocked on gate `n`; keeps no reference."""
    seen: list[Any] = []
    async for event in run:
        seen.append(event)
        if isinstance(event, Entered) and event.n == n:
            break
    return seen


def check_clean_after_cancel(hub: Hub, session: Any, after: dict[str, Any]) -> None:
    """What every way of cancelling must leave behind."""
    assert hub.cancelled == [1], "the blocked handler was not cancelled"
    assert after["status"] is sg.RunStatus.CANCELLED
    assert after["state"] == (True, False)  # superstep 1 kept, superstep 2 not
    result = after["next"]
    assert result.status is sg.RunStatus.IDLE
    assert result.outputs == ["in2", "out2"]  # nothing of the old run
    assert hub.calls == [1, 2]  # the old run's queued message was dropped, not redelivered
    assert session.status is sg.RunStatus.IDLE
    assert "w1" not in session.state
    assert hub.entry_supersteps[1] >= 2  # numbering goes on from the last committed superstep


async def finish_checks(hub: Hub, session: Any) -> dict[str, Any]:
    after: dict[str, Any] = {"status": session.status}
    hub.gates[1].set()  # an orphaned handler would wake up and send "early1"/"out1" now
    await spin()
    after["state"] = ("entry1" in session.state, "w1" in session.state)
    after["next"] = await session.run(2)
    return after


@pytest.mark.parametrize("how", ["aclose", "async_with_exit", "cancel_and_drain"])
def test_stream_stopped_mid_superstep_leaves_nothing_behind(how: str) -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> dict[str, Any]:
        hub.gate(1)
        tail: list[Any] = []
        if how == "aclose":
            run = session.run(1)
            await iterate_until_entered(run, 1)
            await run.aclose()
        elif how == "async_with_exit":
            async with session.run(1) as run:
                async for event in run:
                    if isinstance(event, Entered):
                        break
        else:
            run = session.run(1)
            async for event in run:
                tail.append(event)
                if isinstance(event, Entered):
                    run.cancel()
        # The consumer awaited the close: the handler has stopped by now.
        stopped_at_once = list(hub.cancelled)
        after = await finish_checks(hub, session)
        after["stopped_at_once"] = stopped_at_once
        after["tail"] = tail
        return after

    after = asyncio.run(main())
    check_clean_after_cancel(hub, session, after)
    assert after["stopped_at_once"] == [1]
    if how == "cancel_and_drain":
        last = after["tail"][-1]
        assert isinstance(last, sg.RunCompleted)
        assert last.status is sg.RunStatus.CANCELLED


def test_stream_dropped_mid_superstep_leaves_nothing_behind() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> dict[str, Any]:
        hub.gate(1)
        await iterate_until_entered(session.run(1), 1)  # the stream is garbage now
        for _ in range(50):  # "within a few iterations of the event loop"
            if hub.cancelled:
                break
            await asyncio.sleep(0)
        return await finish_checks(hub, session)

    after = asyncio.run(main())
    check_clean_after_cancel(hub, session, after)


@pytest.mark.parametrize("wrapped", [False, True])
def test_cancelling_the_task_awaiting_a_run_leaves_nothing_behind(wrapped: bool) -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def await_run(run: Any) -> Any:
        return await run

    async def main() -> dict[str, Any]:
        hub.gate(1)
        run = session.run(1)
        task = asyncio.create_task(await_run(run) if wrapped else run)
        await wait(hub.entered[1])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stopped_at_once = list(hub.cancelled)
        after = await finish_checks(hub, session)
        after["stopped_at_once"] = stopped_at_once
        return after

    after = asyncio.run(main())
    check_clean_after_cancel(hub, session, after)
    assert after["stopped_at_once"] == [1]


def test_run_cancel_makes_await_return_a_cancelled_result_without_rolled_back_outputs() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def await_run(run: Any) -> Any:
        return await run

    async def main() -> dict[str, Any]:
        hub.gate(1)
        run = session.run(1)
        task = asyncio.create_task(await_run(run))
        await wait(hub.entered[1])
        run.cancel()
        cancelled_result = await task
        after = await finish_checks(hub, session)
        after["cancelled_result"] = cancelled_result
        return after

    after = asyncio.run(main())
    check_clean_after_cancel(hub, session, after)
    result = after["cancelled_result"]
    assert result.status is sg.RunStatus.CANCELLED
    assert result.outputs == ["in1"]  # "partial1" came from the rolled-back superstep
    events = list(result.events)
    assert isinstance(events[0], sg.RunStarted)
    assert isinstance(events[-1], sg.RunCompleted)
    assert events[-1].status is sg.RunStatus.CANCELLED
    outputs = [e.value for e in events if isinstance(e, sg.Output)]
    assert outputs == ["in1"]
    assert Entered(1) in events  # user events are kept, only Output/RequestIssued dropped


def test_streamed_then_cancelled_run_awaits_to_a_result_without_rolled_back_outputs() -> None:
    """The live sink drops a rolled-back superstep's outputs from the result, as the tape does."""
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> dict[str, Any]:
        hub.gate(1)
        run = session.run(1)
        seen = await iterate_until_entered(run, 1)  # the blocked superstep yielded "partial1"
        run.cancel()
        result = await run
        after = await finish_checks(hub, session)
        after["seen"] = seen
        after["cancelled_result"] = result
        return after

    after = asyncio.run(main())
    check_clean_after_cancel(hub, session, after)
    assert "partial1" in [e.value for e in after["seen"] if isinstance(e, sg.Output)]
    result = after["cancelled_result"]
    assert result.status is sg.RunStatus.CANCELLED
    assert result.outputs == ["in1"]
    assert [e.value for e in result.events if isinstance(e, sg.Output)] == ["in1"]
    assert Entered(1) in result.events


def test_aclose_of_a_run_awaited_elsewhere_stops_it() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def await_run(run: Any) -> Any:
        return await run

    async def main() -> dict[str, Any]:
        hub.gate(1)
        run = session.run(1)
        task = asyncio.create_task(await_run(run))
        await wait(hub.entered[1])
        await run.aclose()  # "await run.aclose() / run.cancel() stop it"
        stopped_at_once = list(hub.cancelled)
        try:
            awaited: Any = await task
        except asyncio.CancelledError:
            awaited = "CancelledError"
        after = await finish_checks(hub, session)
        after["stopped_at_once"] = stopped_at_once
        after["awaited"] = awaited
        return after

    after = asyncio.run(main())
    check_clean_after_cancel(hub, session, after)
    assert after["stopped_at_once"] == [1]
    awaited = after["awaited"]
    assert awaited == "CancelledError" or awaited.status is sg.RunStatus.CANCELLED


def test_cancelling_the_task_that_iterates_a_stream_cancels_the_run() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> dict[str, Any]:
        hub.gate(1)
        run = session.run(1)  # still referenced here: not a dropped stream

        async def consume() -> None:
            async for _ in run:
                pass

        task = asyncio.create_task(consume())
        await wait(hub.entered[1])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(50):  # a few iterations for the cancellation to reach the handler
            if hub.cancelled:
                break
            await asyncio.sleep(0)
        after = await finish_checks(hub, session)
        after["run_still_referenced"] = run is not None
        return after

    after = asyncio.run(main())
    check_clean_after_cancel(hub, session, after)


def test_asyncio_timeout_around_an_awaited_run_cancels_it_cleanly() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> dict[str, Any]:
        hub.gate(1)
        loop = asyncio.get_running_loop()

        async def expire_once_blocked(cm: asyncio.Timeout) -> None:
            await wait(hub.entered[1])
            cm.reschedule(loop.time())  # the deadline passes only once the handler blocks

        async def run_with_timeout() -> None:
            async with asyncio.timeout(None) as cm:
                arm = asyncio.create_task(expire_once_blocked(cm))
                try:
                    await session.run(1)
                finally:
                    await arm

        with pytest.raises(TimeoutError):
            await run_with_timeout()
        stopped_at_once = list(hub.cancelled)
        after = await finish_checks(hub, session)
        after["stopped_at_once"] = stopped_at_once
        return after

    after = asyncio.run(main())
    check_clean_after_cancel(hub, session, after)
    assert after["stopped_at_once"] == [1]


def test_run_cancelled_before_it_starts_awaits_to_a_cancelled_result() -> None:
    # Lead's decision: `await run` after `run.cancel()` returns a RunResult whose
    # status is CANCELLED; a Run that never started does nothing.
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> tuple[Any, Any]:
        run = session.run(1)
        run.cancel()
        result = await run
        return result, await session.run(2)

    result, after = asyncio.run(main())
    assert result.status is sg.RunStatus.CANCELLED
    assert list(result.outputs) == []
    assert after.outputs == ["in2", "out2"]
    assert hub.calls == [2]


# --------------------------------------------------------------------------- fan-in and snapshots


class Collect(sg.Executor):
    @sg.handler
    async def on_list(self, items: list[int], ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(list(items))


def test_cancellation_drops_fan_in_buffers_of_the_cancelled_run() -> None:
    hub = Hub()

    @sg.executor(id="s")
    async def s(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    @sg.executor(id="quick")
    async def quick(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n * 10)  # superstep 2: buffered at the fan-in, committed

    @sg.executor(id="detour")
    async def detour(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    @sg.executor(id="late")
    async def late(n: int, ctx: sg.Context[int]) -> None:
        gate = hub.gates.get(n)
        if gate is not None:
            hub.entered[n].set()
            try:
                await asyncio.wait_for(gate.wait(), SAFETY_S)
            except asyncio.CancelledError:
                hub.cancelled.append(n)
                raise
        await ctx.send(n * 100)  # superstep 3

    join = Collect("join")
    wf = (
        sg.WorkflowBuilder(start=s)
        .add_fan_out(s, [quick, detour])
        .add_edge(detour, late)
        .add_fan_in([quick, late], join)
        .build()
    )

    async def main() -> tuple[Any, Any]:
        session = wf.session()
        gate = hub.gate(1)
        run = session.run(1)
        task = asyncio.create_task(run)
        await wait(hub.entered[1])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        status = session.status
        return status, await session.run(2)

    status, result = asyncio.run(main())
    assert hub.cancelled == [1]
    assert status is sg.RunStatus.CANCELLED
    assert result.outputs == [[20, 200]]


class Snapshotting(sg.Executor):
    def __init__(self, id: str, hub: Hub) -> None:
        super().__init__(id=id)
        self.hub = hub
        self.count = 0

    async def snapshot(self) -> dict[str, int]:
        return {"count": self.count}

    async def restore(self, data: dict[str, int]) -> None:
        self.count = data["count"]

    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[None, Any]) -> None:
        self.count += 1
        await ctx.yield_output(("snap", self.count))
        gate = self.hub.gates.get(n)
        if gate is not None:
            self.hub.entered[n].set()
            await asyncio.wait_for(gate.wait(), SAFETY_S)


def test_cancellation_rolls_back_executor_snapshots() -> None:
    hub = Hub()

    @sg.executor(id="s")
    async def s(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    wf = sg.WorkflowBuilder(start=s).add_edge(s, Snapshotting("snap", hub)).build()

    async def main() -> Any:
        session = wf.session()
        gate = hub.gate(1)
        task = asyncio.create_task(session.run(1))
        await wait(hub.entered[1])  # count is 1 inside the superstep being cancelled
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        return await session.run(2)

    assert asyncio.run(main()).outputs == [("snap", 1)]
