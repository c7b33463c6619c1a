"""Error routes: an executor's failure becomes an `ExecutorFailure` message, not a failed run."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import stepgraph as sg
from stepgraph import serde
from stepgraph.stores import MemoryCheckpointStore


class Collector(sg.Executor):
    """Outputs what it is told, and every failure it receives."""

    @sg.handler
    async def on_failure(self, failure: sg.ExecutorFailure, ctx: sg.Context[None, object]) -> None:
        await ctx.yield_output(failure)


def _split() -> sg.FunctionExecutor:
    async def split(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    return sg.executor(id="split")(split)


def _worker(id: str, tries: list[int], fail_times: int) -> sg.FunctionExecutor:
    async def work(n: int, ctx: sg.Context[None, object]) -> None:
        tries.append(n)
        ctx.state.set(f"{id}-tried", True)
        await ctx.yield_output(f"{id} half-done")  # discarded when the call fails
        if len(tries) <= fail_times:
            raise ValueError(f"{id} cannot take {n}")
        await ctx.yield_output(f"{id} {n}")

    return sg.executor(id=id)(work)


def test_a_routed_failure_commits_the_rest_and_delivers_an_executor_failure() -> None:
    async def main() -> None:
        good: list[int] = []
        bad: list[int] = []
        split = _split()
        wf = (
            sg.WorkflowBuilder[int](start=split)
            .add_fan_out(split, [_worker("good", good, 0), _worker("bad", bad, 99)])
            .add_error_route("bad", Collector(id="errors"))
            .build()
        )
        session = wf.session("s", store=MemoryCheckpointStore())
        result = await session.run(7)
        assert result.status is sg.RunStatus.IDLE
        assert result.outputs[:2] == ["good half-done", "good 7"]
        failure = result.outputs[2]
        assert isinstance(failure, sg.ExecutorFailure)
        assert (failure.executor_id, failure.error_type, failure.message) == (
            "bad",
            "ValueError",
            7,
        )
        assert failure.error == "bad cannot take 7"
        assert failure.attempts == 1
        assert len(result.outputs) == 3  # the failed call's own output was discarded
        assert session.state == {"good-tried": True}  # ... and its state write
        assert any(isinstance(e, sg.ExecutorFailed) for e in result.events)
        # serde-encodable, as messages must be to be checkpointed
        back = serde.decode(serde.encode(failure, types=wf.types), types=wf.types)
        assert back == failure

    asyncio.run(main())


def test_retries_run_first_and_the_failure_counts_them() -> None:
    async def main() -> None:
        tries: list[int] = []
        split = _split()
        wf = (
            sg.WorkflowBuilder[int](start=split)
            .add_edge(split, _worker("w", tries, 99))
            .set_policy("w", retry=sg.RetryPolicy(max_attempts=3, initial_delay=0))
            .add_error_route("w", Collector(id="errors"))
            .build()
        )
        result = await wf.run(1)
        failures = [o for o in result.outputs if isinstance(o, sg.ExecutorFailure)]
        assert len(tries) == 3
        assert [f.attempts for f in failures] == [3]

    asyncio.run(main())


def test_a_retry_that_succeeds_never_reaches_the_route() -> None:
    async def main() -> None:
        tries: list[int] = []
        split = _split()
        wf = (
            sg.WorkflowBuilder[int](start=split)
            .add_edge(split, _worker("w", tries, 1))
            .set_policy("w", retry=sg.RetryPolicy(max_attempts=2, initial_delay=0))
            .add_error_route("w", Collector(id="errors"))
            .build()
        )
        result = await wf.run(1)
        assert result.outputs == ["w half-done", "w 1"]

    asyncio.run(main())


def test_without_a_route_a_failure_still_fails_the_run() -> None:
    async def main() -> None:
        split = _split()
        wf = (
            sg.WorkflowBuilder[int](start=split)
            .add_fan_out(split, [_worker("good", [], 0), _worker("bad", [], 99)])
            .add_error_route("good", Collector(id="errors"))
            .build()
        )
        session = wf.session("s")
        with pytest.raises(sg.ExecutorFailedError):
            await session.run(1)
        assert session.status is sg.RunStatus.FAILED

    asyncio.run(main())


def test_the_workflow_wide_default_route_covers_every_executor_but_its_handler() -> None:
    async def main() -> None:
        split = _split()
        wf = (
            sg.WorkflowBuilder[int](start=split)
            .add_fan_out(split, [_worker("a", [], 99), _worker("b", [], 99)])
            .add_error_route(None, Collector(id="errors"))
            .build()
        )
        result = await wf.run(2)
        failed = sorted(o.executor_id for o in result.outputs if isinstance(o, sg.ExecutorFailure))
        assert failed == ["a", "b"]

    asyncio.run(main())


def test_a_stateful_executor_gets_its_state_back_when_its_call_is_routed() -> None:
    class Counter(sg.Executor):
        def __init__(self, id: str) -> None:
            super().__init__(id=id)
            self.seen: list[int] = []

        @sg.handler
        async def on_int(self, n: int, ctx: sg.Context[None, object]) -> None:
            self.seen.append(n)
            if n < 0:
                raise ValueError("negative")
            await ctx.yield_output(list(self.seen))

        async def snapshot(self) -> list[int]:
            return list(self.seen)

        async def restore(self, data: list[int]) -> None:
            self.seen = list(data)

    async def main() -> None:
        async def fan(n: int, ctx: sg.Context[int]) -> None:
            for v in (n, -1, n + 1):
                await ctx.send(v)

        start = sg.executor(id="start")(fan)
        wf = (
            sg.WorkflowBuilder[int](start=start)
            .add_edge(start, Counter("count"))
            .add_error_route("count", Collector(id="errors"))
            .build()
        )
        result = await wf.run(1)
        lists = [o for o in result.outputs if isinstance(o, list)]
        assert lists == [[1], [1, 2]]  # the failed call's append was rolled back

    asyncio.run(main())


def test_error_route_handlers_are_checked_at_build_time() -> None:
    split = _split()
    plain = _worker("plain", [], 0)
    with pytest.raises(sg.GraphError, match=r"no handler for sg\.ExecutorFailure"):
        sg.WorkflowBuilder[int](start=split).add_edge(split, plain).add_error_route(
            split, _worker("takes_int", [], 0)
        ).build()
    with pytest.raises(sg.GraphError, match="unknown executor 'ghost'"):
        sg.WorkflowBuilder[int](start=split).add_edge(split, plain).add_error_route(
            "ghost", Collector(id="errors")
        ).build()


def test_routes_change_the_graph_signature_only_when_present() -> None:
    def build(route: bool) -> sg.Workflow[int]:
        split = _split()
        b = sg.WorkflowBuilder[int](start=split).add_edge(split, _worker("w", [], 0))
        if route:
            b = b.add_error_route("w", Collector(id="errors"))
        return b.build()

    with_route, without = build(True), build(False)
    assert with_route.describe()["error_routes"] == [["w", "errors"]]
    assert "error_routes" not in without.describe()
    assert dataclasses.is_dataclass(sg.ExecutorFailure)
