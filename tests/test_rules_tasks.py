"""The tasks of a superstep (section 4, rules 3-6): who owns them and when they end.

A superstep with several executors runs each in its own task. Every task is
owned by the superstep: a failure cancels the siblings, cancelling the run
cancels every handler and waits for all of them, and no handler task is still
running when the run reports its end.
"""

import asyncio
import time
from typing import Any

import pytest

import stepgraph as sg

SAFETY_S = 5.0


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), SAFETY_S)


def fan(*workers: sg.Executor) -> sg.Workflow[int]:
    @sg.executor(id="start")
    async def start(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    return sg.WorkflowBuilder(start=start).add_fan_out(start, list(workers)).build()


def test_cancelling_the_run_waits_for_a_handler_that_cleans_up_slowly() -> None:
    async def main() -> dict[str, Any]:
        entered = asyncio.Event()
        cleanup_may_end = asyncio.Event()
        seen: dict[str, Any] = {"cleaned": False, "tasks": []}

        @sg.executor(id="slow")
        async def slow(n: int, ctx: sg.Context[None, int]) -> None:
            seen["tasks"].append(asyncio.current_task())
            entered.set()
            try:
                await asyncio.sleep(SAFETY_S)
            except asyncio.CancelledError:
                await wait(cleanup_may_end)  # cleanup that takes a while
                seen["cleaned"] = True
                raise

        @sg.executor(id="quick")
        async def quick(n: int, ctx: sg.Context[None, int]) -> None:
            seen["tasks"].append(asyncio.current_task())
            await ctx.yield_output(n)

        session = fan(slow, quick).session()
        task = asyncio.ensure_future(session.run(1))
        await wait(entered)
        task.cancel()
        # The run is not over while its handler still cleans up.
        done, _ = await asyncio.wait([task], timeout=0)
        seen["ended_before_cleanup"] = bool(done)
        cleanup_may_end.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen["handler_tasks_done"] = [t.done() for t in seen["tasks"]]
        seen["status"] = session.status
        seen["state"] = dict(session.state)
        return seen

    seen = asyncio.run(main())
    assert seen["ended_before_cleanup"] is False
    assert seen["cleaned"] is True
    assert seen["handler_tasks_done"] == [True, True]
    assert seen["status"] is sg.RunStatus.CANCELLED


def test_a_handler_that_swallows_cancellation_does_not_keep_a_cancelled_run_alive() -> None:
    """Cancelling the run must end it even when a handler suppresses its own cancellation."""

    async def main() -> dict[str, Any]:
        entered = asyncio.Event()
        out: dict[str, Any] = {"swallowed": 0}

        @sg.executor(id="stubborn")
        async def stubborn(n: int, ctx: sg.Context[None, str]) -> None:
            entered.set()
            try:
                await asyncio.sleep(SAFETY_S)
            except asyncio.CancelledError:
                out["swallowed"] += 1  # and returns normally
            await ctx.yield_output("stubborn finished")

        @sg.executor(id="idle")
        async def idle(n: int, ctx: sg.Context[None, str]) -> None:
            await asyncio.sleep(SAFETY_S)

        session = fan(stubborn, idle).session()
        run = session.run(1)
        task = asyncio.ensure_future(run)
        await wait(entered)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        out["status"] = session.status
        out["superstep"] = session.superstep
        return out

    out = asyncio.run(main())
    assert out["swallowed"] == 1
    assert out["status"] is sg.RunStatus.CANCELLED
    assert out["superstep"] == 1  # the cancelled superstep 2 committed nothing


def test_a_failure_before_siblings_start_ends_the_superstep_without_hanging() -> None:
    async def main() -> dict[str, Any]:
        started: list[str] = []

        @sg.executor(id="bad")
        async def bad(n: int, ctx: sg.Context[None, int]) -> None:
            started.append("bad")
            raise ValueError("at once")

        def sibling(eid: str) -> sg.Executor:
            @sg.executor(id=eid)
            async def run(n: int, ctx: sg.Context[None, int]) -> None:
                started.append(eid)
                await asyncio.sleep(SAFETY_S)

            return run

        session = fan(bad, sibling("a"), sibling("b")).session()
        with pytest.raises(sg.ExecutorFailedError) as info:
            await asyncio.wait_for(session.run(1), SAFETY_S)
        return {"eid": info.value.executor_id, "status": session.status, "started": started}

    out = asyncio.run(main())
    assert out["eid"] == "bad"
    assert out["status"] is sg.RunStatus.FAILED
    assert out["started"][0] == "bad"


def test_the_first_of_two_failures_is_reported_and_both_tasks_end() -> None:
    async def main() -> dict[str, Any]:
        first_failed = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []

        @sg.executor(id="first")
        async def first(n: int, ctx: sg.Context[None, int]) -> None:
            tasks.append(asyncio.current_task())  # type: ignore[arg-type]
            await asyncio.sleep(0)
            first_failed.set()
            raise KeyError("first")

        @sg.executor(id="second")
        async def second(n: int, ctx: sg.Context[None, int]) -> None:
            tasks.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await first_failed.wait()  # cancelled by the sibling's failure
                await asyncio.sleep(SAFETY_S)
            finally:
                raise RuntimeError("second, while being cancelled")

        session = fan(first, second).session()
        with pytest.raises(sg.ExecutorFailedError) as info:
            await session.run(1)
        return {"eid": info.value.executor_id, "done": [t.done() for t in tasks]}

    out = asyncio.run(main())
    assert out["eid"] == "first"
    assert out["done"] == [True, True]


def test_handler_tasks_come_from_the_loops_task_factory() -> None:
    async def main() -> list[str]:
        made: list[str] = []
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            made.append(getattr(coro, "__qualname__", type(coro).__name__))
            return asyncio.Task(coro, loop=loop, **kwargs)

        @sg.executor(id="a")
        async def a(n: int, ctx: sg.Context[None, int]) -> None:
            await ctx.yield_output(n)

        @sg.executor(id="b")
        async def b(n: int, ctx: sg.Context[None, int]) -> None:
            await ctx.yield_output(n + 1)

        wf = fan(a, b)
        loop.set_task_factory(factory)
        try:
            result = await wf.run(1)
        finally:
            loop.set_task_factory(None)
        assert result.outputs == [1, 2]
        return made

    made = asyncio.run(main())
    assert len(made) == 2  # one task per executor of the fan-out superstep


def test_a_long_run_whose_handlers_never_await_still_lets_other_tasks_run() -> None:
    """Fairness: between supersteps a run yields the loop at least every TIME_SLICE_S."""

    async def main() -> list[int]:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0)

        seen: list[int] = []

        @sg.executor(id="spin")
        async def spin(n: int, ctx: sg.Context[int]) -> None:
            seen.append(ticks)
            end = time.perf_counter() + 0.0005
            while time.perf_counter() < end:  # CPU work without an await
                pass
            if n:
                await ctx.send(n - 1)

        wf = sg.WorkflowBuilder(start=spin).add_edge(spin, spin).build(max_supersteps=1000)
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)  # the ticker has started
        await wf.run(200)  # 201 supersteps of 0.5 ms: about 100 ms holding the loop
        stop.set()
        await task
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 201
    assert seen[-1] > seen[0]  # the ticker ran while the run was going


def test_an_eager_task_factory_failure_stops_the_remaining_members_from_starting() -> None:
    """With an eager factory (Python 3.12's `eager_task_factory`, emulated here), a member
    runs inside `create_task`; once one has failed, the others must not start."""

    async def main() -> tuple[list[str], str]:
        started: list[str] = []
        loop = asyncio.get_running_loop()

        async def finished(error: BaseException | None) -> None:
            if error is not None:
                raise error

        def eager(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            try:
                coro.send(None)  # the members below never suspend
            except StopIteration:
                return asyncio.Task(finished(None), loop=loop)
            except BaseException as exc:  # handed to the task, as eager start does
                return asyncio.Task(finished(exc), loop=loop)
            raise AssertionError("a member suspended in this test")

        @sg.executor(id="bad")
        async def bad(n: int, ctx: sg.Context[None, int]) -> None:
            started.append("bad")
            raise ValueError("at once")

        def sibling(eid: str) -> sg.Executor:
            @sg.executor(id=eid)
            async def run(n: int, ctx: sg.Context[None, int]) -> None:
                started.append(eid)

            return run

        session = fan(bad, sibling("a"), sibling("b")).session()
        loop.set_task_factory(eager)
        try:
            with pytest.raises(sg.ExecutorFailedError) as info:
                await session.run(1)
        finally:
            loop.set_task_factory(None)
        return started, info.value.executor_id

    started, eid = asyncio.run(main())
    assert eid == "bad"
    assert started == ["bad"]
