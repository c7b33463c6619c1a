"""Black-box tests of ARCHITECTURE.md section 4, rules 4 and 6 (and section 3 on FAILED).

A failing handler fails its superstep as a unit: siblings are cancelled, nothing of
the superstep is committed (state, sends, fan-in buffers), the session is FAILED at
the last committed superstep with its undelivered messages intact, `run()` raises
NotIdleError and `resume()` retries. `max_supersteps` bounds each invocation.
"""

import asyncio
from typing import Any

import pytest

import stepgraph as sg

SAFETY_S = 5.0


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), SAFETY_S)


class Start(sg.Executor):
    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("start_saw", message)
        await ctx.send(message)


def test_failed_superstep_commits_nothing_cancels_siblings_and_resume_retries() -> None:
    obs: dict[str, Any] = {"bad": 0, "good": 0, "cancelled": [], "bad_supersteps": []}
    boom = ValueError("transient failure")

    async def main() -> dict[str, Any]:
        good_wrote = asyncio.Event()
        never = asyncio.Event()

        @sg.executor(id="bad")
        async def bad(n: int, ctx: sg.Context[None, str]) -> None:
            obs["bad"] += 1
            obs["bad_supersteps"].append(ctx.superstep)
            await wait(good_wrote)  # the sibling has written state and sent
            if obs["bad"] == 1:
                raise boom
            await ctx.yield_output("bad-ok")

        @sg.executor(id="good")
        async def good(n: int, ctx: sg.Context[str]) -> None:
            obs["good"] += 1
            attempt = obs["good"]
            ctx.state.set("sibling", attempt)
            await ctx.send(f"g{attempt}")
            good_wrote.set()
            if attempt == 1:
                try:
                    await asyncio.wait_for(never.wait(), SAFETY_S)
                except asyncio.CancelledError:
                    obs["cancelled"].append(ctx.executor_id)
                    raise

        @sg.executor(id="sink")
        async def sink(message: str, ctx: sg.Context[None, Any]) -> None:
            await ctx.yield_output(("sink", message, ctx.superstep))

        start = Start("start")
        wf = (
            sg.WorkflowBuilder(start=start)
            .add_fan_out(start, [bad, good])
            .add_edge(good, sink)
            .build()
        )
        session = wf.session()
        with pytest.raises(sg.ExecutorFailedError) as info:
            await session.run(1)
        out: dict[str, Any] = {"error": info.value}
        # Checked at once: the sibling must be stopped by the time the failure is reported.
        out["cancelled_at_failure"] = list(obs["cancelled"])
        out["status_after_failure"] = session.status
        out["state_after_failure"] = (
            session.state.get("start_saw"),
            "sibling" in session.state,
        )
        with pytest.raises(sg.NotIdleError):
            await session.run(2)
        out["status_after_refusal"] = session.status
        result = await session.resume()
        out["result"] = result
        out["state_after_resume"] = session.state.get("sibling")
        out["status_after_resume"] = session.status
        out["next"] = await session.run(3)
        return out

    out = asyncio.run(main())
    err = out["error"]
    assert isinstance(err, sg.WorkflowError)
    assert err.__cause__ is boom
    assert err.executor_id == "bad"
    assert err.superstep == 2
    assert out["cancelled_at_failure"] == ["good"]
    assert out["status_after_failure"] is sg.RunStatus.FAILED
    assert out["state_after_failure"] == (1, False)  # superstep 1 kept, superstep 2 not
    assert out["status_after_refusal"] is sg.RunStatus.FAILED
    result = out["result"]
    assert result.status is sg.RunStatus.IDLE
    # The failed attempt's send ("g1") was never delivered; the retry's was, once.
    assert result.outputs == ["bad-ok", ("sink", "g2", 3)]
    assert out["state_after_resume"] == 2
    assert out["status_after_resume"] is sg.RunStatus.IDLE
    # The retried superstep is the failed one again: the session stayed at superstep 1.
    assert obs["bad_supersteps"][:2] == [2, 2]
    assert out["next"].outputs == ["bad-ok", ("sink", "g3", 6)]


def test_failure_in_the_first_superstep_keeps_the_input_for_resume() -> None:
    attempts: list[int] = []

    @sg.executor(id="flaky")
    async def flaky(n: int, ctx: sg.Context[None, int]) -> None:
        attempts.append(n)
        ctx.state.set("seen", n)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        await ctx.yield_output(n * 2)

    wf = sg.WorkflowBuilder(start=flaky).build()

    async def main() -> tuple[Any, ...]:
        session = wf.session()
        with pytest.raises(sg.ExecutorFailedError) as info:
            await session.run(21)
        status, has_seen = session.status, "seen" in session.state
        result = await session.resume()
        return info.value, status, has_seen, result

    err, status, has_seen, result = asyncio.run(main())
    assert isinstance(err.__cause__, RuntimeError)
    assert err.executor_id == "flaky"
    assert status is sg.RunStatus.FAILED
    assert has_seen is False
    assert attempts == [21, 21]
    assert result.outputs == [42]
    assert result.status is sg.RunStatus.IDLE


class Collect(sg.Executor):
    @sg.handler
    async def on_list(self, items: list[int], ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output((ctx.superstep, list(items)))


def test_failed_superstep_does_not_commit_fan_in_buffers() -> None:
    attempts = {"b": 0}

    async def main() -> list[Any]:
        a_sent = asyncio.Event()

        @sg.executor(id="a")
        async def a(n: int, ctx: sg.Context[int]) -> None:
            await ctx.send(n * 10)
            a_sent.set()

        @sg.executor(id="b")
        async def b(n: int, ctx: sg.Context[int]) -> None:
            attempts["b"] += 1
            await wait(a_sent)
            if attempts["b"] == 1:
                raise RuntimeError("transient")
            await ctx.send(n * 20)

        start, join = Start("start"), Collect("join")
        wf = (
            sg.WorkflowBuilder(start=start)
            .add_fan_out(start, [a, b])
            .add_fan_in([a, b], join)
            .build()
        )
        session = wf.session()
        with pytest.raises(sg.ExecutorFailedError):
            await session.run(1)
        result = await session.resume()
        later = await session.run(2)
        return [list(result.outputs), list(later.outputs)]

    assert asyncio.run(main()) == [[(3, [10, 20])], [(6, [20, 40])]]


class Counting(sg.Executor):
    """Counts its messages in a plain attribute; reports each increment to the hub."""

    def __init__(self, id: str, hub: dict[str, Any]) -> None:
        super().__init__(id=id)
        self.hub = hub
        self.count = 0

    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[None, Any]) -> None:
        self.count += 1
        self.hub["counted"].append(ctx.executor_id)
        if len(self.hub["counted"]) % 2 == 0:
            self.hub["both_counted"].set()
        await ctx.yield_output((ctx.executor_id, self.count))


class Snapshotting(Counting):
    """The same, but defines snapshot()/restore(), so rule 4 rolls it back."""

    async def snapshot(self) -> dict[str, int]:
        return {"count": self.count}

    async def restore(self, data: dict[str, int]) -> None:
        self.count = data["count"]


def test_executor_snapshots_are_rolled_back_on_failure_plain_attributes_are_not() -> None:
    attempts = {"bad": 0}

    async def main() -> list[Any]:
        hub: dict[str, Any] = {"counted": [], "both_counted": asyncio.Event()}

        @sg.executor(id="bad")
        async def bad(n: int, ctx: sg.Context[None]) -> None:
            attempts["bad"] += 1
            await wait(hub["both_counted"])  # both siblings have incremented
            if attempts["bad"] == 1:
                raise RuntimeError("transient")

        start = Start("start")
        snap, plain = Snapshotting("snap", hub), Counting("plain", hub)
        wf = sg.WorkflowBuilder(start=start).add_fan_out(start, [snap, plain, bad]).build()
        session = wf.session()
        with pytest.raises(sg.ExecutorFailedError):
            await session.run(1)
        hub["both_counted"].clear()
        result = await session.resume()
        return list(result.outputs)

    assert asyncio.run(main()) == [("snap", 1), ("plain", 2)]


# --------------------------------------------------------------------------- rule 6


def _counter(goal: int, max_supersteps: int) -> sg.Workflow:
    class Hop(sg.Executor):
        @sg.handler
        async def on_int(self, n: int, ctx: sg.Context[int, int]) -> None:
            ctx.state.set("last", n)
            if n < goal:
                await ctx.send(n + 1)
            else:
                await ctx.yield_output(n)

    ping, pong = Hop("ping"), Hop("pong")
    return (
        sg.WorkflowBuilder(start=ping)
        .add_edge(ping, pong)
        .add_edge(pong, ping)
        .build(max_supersteps=max_supersteps)
    )


def test_max_supersteps_reached_with_messages_queued_fails_and_resume_grants_a_new_budget() -> None:
    wf = _counter(goal=8, max_supersteps=3)

    async def main() -> list[Any]:
        session = wf.session()
        seen: list[Any] = []
        with pytest.raises(sg.ConvergenceError):
            await session.run(1)  # supersteps 1-3 handle 1, 2, 3; 4 stays queued
        seen.append((session.status, session.state.get("last")))
        with pytest.raises(sg.NotIdleError):
            await session.run(1)
        with pytest.raises(sg.ConvergenceError):
            await session.resume()  # 4, 5, 6
        seen.append((session.status, session.state.get("last")))
        result = await session.resume()  # 7, 8
        seen.append((session.status, session.state.get("last"), list(result.outputs)))
        return seen

    assert asyncio.run(main()) == [
        (sg.RunStatus.FAILED, 3),
        (sg.RunStatus.FAILED, 6),
        (sg.RunStatus.IDLE, 8, [8]),
    ]


def test_max_supersteps_bounds_each_run_not_the_session_life() -> None:
    wf = _counter(goal=3, max_supersteps=3)  # exactly 3 supersteps, then nothing queued

    async def main() -> list[Any]:
        session = wf.session()
        return [list((await session.run(1)).outputs) for _ in range(5)]

    assert asyncio.run(main()) == [[3]] * 5


def test_error_tree() -> None:
    for error in (
        sg.GraphError,
        sg.RoutingError,
        sg.ConcurrentRunError,
        sg.NotIdleError,
        sg.ExecutorFailedError,
        sg.ConvergenceError,
        sg.RequestError,
        sg.SerializationError,
        sg.CheckpointError,
    ):
        assert issubclass(error, sg.WorkflowError), error
    for error in (sg.CheckpointNotFoundError, sg.CheckpointDecodeError, sg.GraphMismatchError):
        assert issubclass(error, sg.CheckpointError), error
    assert issubclass(sg.GraphError, TypeError)
    assert issubclass(sg.GraphWarning, Warning)


def test_sync_executor_failure_fails_the_run_like_an_async_one() -> None:
    boom = ValueError("sync failure")

    @sg.executor(id="sync_bad")
    def sync_bad(n: int, ctx: sg.Context[None, int]) -> None:
        ctx.state.set("written", n)
        ctx.yield_output(n)
        raise boom

    wf = sg.WorkflowBuilder(start=sync_bad).build()

    async def main() -> tuple[Any, Any, bool]:
        session = wf.session()
        with pytest.raises(sg.ExecutorFailedError) as info:
            await session.run(1)
        return info.value, session.status, "written" in session.state

    err, status, written = asyncio.run(main())
    assert err.__cause__ is boom
    assert err.executor_id == "sync_bad"
    assert status is sg.RunStatus.FAILED
    assert written is False
