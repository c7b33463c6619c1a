"""Black-box tests of ARCHITECTURE.md section 3: one run at a time per session.

The guard is taken synchronously when `run()`/`resume()` is called and released
when the run ends in any way; a late finalizer of an old run never touches a newer
run's guard. Races are ordered with asyncio.Event, never with sleeps.
"""

import asyncio
import gc
import warnings
from typing import Any

import pytest
from tests.lifecycle_support import SAFETY_S, Entered, Hub, spin, wait

import stepgraph as sg


class Entry(sg.Executor):
    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[int, str]) -> None:
        ctx.state.set(f"entry{n}", True)
        await ctx.yield_output(f"in{n}")
        await ctx.send(n)


class Worker(sg.Executor):
    """Passes `n` on as `out<n>`; for a gated `n` it first writes state, sends, emits
    `Entered(n)` and blocks until the gate opens."""

    def __init__(self, id: str, hub: Hub) -> None:
        super().__init__(id=id)
        self.hub = hub

    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[str]) -> None:
        self.hub.calls.append(n)
        gate = self.hub.gates.get(n)
        if gate is not None:
            ctx.state.set(f"w{n}", True)
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
    entry, worker, sink = Entry("entry"), Worker("worker", hub), Sink("sink")
    return sg.WorkflowBuilder(start=entry).add_chain([entry, worker, sink]).build()


async def iterate_until_entered(run: Any, n: int) -> list[sg.Event]:
    """Iterate `run` until its worker is blocked on gate `n`; keeps no reference."""
    seen: list[sg.Event] = []
    async for event in run:
        seen.append(event)
        if isinstance(event, Entered) and event.n == n:
            break
    return seen


# --------------------------------------------------------------------------- taken synchronously


def test_second_run_raises_concurrent_run_error_at_call_time_before_first_is_awaited() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()
    first = session.run(1)
    with pytest.raises(sg.ConcurrentRunError):
        session.run(2)
    with pytest.raises(sg.ConcurrentRunError):
        session.resume()
    assert hub.calls == []
    # The Run was made outside any event loop and still runs in one.
    result = asyncio.run(first)
    assert result.outputs == ["in1", "out1"]
    assert asyncio.run(session.run(2)).outputs == ["in2", "out2"]


def test_second_run_while_the_first_is_running_is_refused_without_disturbing_it() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> Any:
        gate = hub.gate(1)
        first = asyncio.create_task(session.run(1))
        await wait(hub.entered[1])
        with pytest.raises(sg.ConcurrentRunError):
            session.run(2)
        with pytest.raises(sg.ConcurrentRunError):
            session.resume()
        assert session.status is sg.RunStatus.RUNNING
        gate.set()
        return await first

    result = asyncio.run(main())
    assert result.outputs == ["in1", "early1", "out1"]
    assert result.status is sg.RunStatus.IDLE
    assert hub.calls == [1]
    assert asyncio.run(session.run(2)).outputs == ["in2", "out2"]


def test_different_sessions_never_block_each_other() -> None:
    hub = Hub()
    wf = gated_workflow(hub)

    async def main() -> tuple[Any, Any]:
        gate = hub.gate(1)
        busy, free = wf.session("busy"), wf.session("free")
        blocked = asyncio.create_task(busy.run(1))
        await wait(hub.entered[1])
        other = await free.run(2)  # completes while "busy" is mid-superstep
        gate.set()
        return other, await blocked

    other, blocked = asyncio.run(main())
    assert other.outputs == ["in2", "out2"]
    assert blocked.outputs == ["in1", "early1", "out1"]


# --------------------------------------------------------------------------- never started


def test_run_that_is_never_awaited_does_nothing_and_releases_the_guard_when_dropped() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session.run(1)  # dropped at once, never awaited
            gc.collect()
        assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []
        return await session.run(2)

    result = asyncio.run(main())
    assert result.outputs == ["in2", "out2"]
    assert hub.calls == [2]
    assert "entry1" not in session.state


def test_run_dropped_outside_any_event_loop_releases_the_guard() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()
    run = session.run(1)
    del run
    gc.collect()
    assert asyncio.run(session.run(2)).outputs == ["in2", "out2"]
    assert hub.calls == [2]


def test_stream_closed_before_iteration_releases_the_guard() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> Any:
        run = session.run(1)
        await run.aclose()
        return await session.run(2)

    assert asyncio.run(main()).outputs == ["in2", "out2"]
    assert hub.calls == [2]


def test_stream_iterator_dropped_before_iteration_releases_the_guard() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> Any:
        iterator = aiter(session.run(1))
        del iterator
        gc.collect()
        await spin(5)
        return await session.run(2)

    assert asyncio.run(main()).outputs == ["in2", "out2"]
    assert hub.calls == [2]


# --------------------------------------------------------------------------- late finalizers


def test_late_close_cancel_and_drop_of_a_finished_run_keep_the_newer_runs_guard() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        old = session.run(1)
        out["old_events"] = [event async for event in old]  # finished, still referenced
        gate = hub.gate(2)
        newer = asyncio.create_task(session.run(2))
        await wait(hub.entered[2])
        await old.aclose()
        old.cancel()
        del old
        gc.collect()
        await spin()
        with pytest.raises(sg.ConcurrentRunError):
            session.run(3)
        out["status_while_newer_runs"] = session.status
        gate.set()
        out["newer"] = await newer
        out["after"] = await session.run(3)
        return out

    out = asyncio.run(main())
    assert isinstance(out["old_events"][-1], sg.RunCompleted)
    assert out["status_while_newer_runs"] is sg.RunStatus.RUNNING
    assert out["newer"].outputs == ["in2", "early2", "out2"]
    assert out["newer"].status is sg.RunStatus.IDLE
    assert out["after"].outputs == ["in3", "out3"]
    assert hub.cancelled == []


def test_stream_dropped_mid_superstep_does_not_release_a_newer_runs_guard_later() -> None:
    hub = Hub()
    session = gated_workflow(hub).session()

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        old_gate = hub.gate(1)
        await iterate_until_entered(session.run(1), 1)  # the old stream is now garbage
        # Take the guard as soon as the old run lets go of it.
        newer_run = None
        for _ in range(50):
            try:
                newer_run = session.run(2)
                break
            except sg.ConcurrentRunError:
                await asyncio.sleep(0)
        assert newer_run is not None, "dropped run did not release the guard"
        new_gate = hub.gate(2)
        newer = asyncio.create_task(newer_run)
        del newer_run
        await wait(hub.entered[2])
        gc.collect()
        await spin()  # let every late finalizer of the old run run
        with pytest.raises(sg.ConcurrentRunError):
            session.run(3)
        out["status_while_newer_runs"] = session.status
        old_gate.set()  # an orphaned old handler would wake up and send now
        await spin()
        new_gate.set()
        out["newer"] = await newer
        out["state"] = ("w1" in session.state, "w2" in session.state)
        return out

    out = asyncio.run(main())
    assert hub.cancelled == [1]
    assert out["status_while_newer_runs"] is sg.RunStatus.RUNNING
    assert out["newer"].outputs == ["in2", "early2", "out2"]
    assert out["state"] == (False, True)
    assert hub.calls == [1, 2]
