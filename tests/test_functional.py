"""The functional API: @sg.workflow, @sg.step, sg.request and sg.context."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.helpers import store_of

import stepgraph as sg


@dataclass(frozen=True)
class Draft:
    title: str
    words: int


def counting() -> tuple[list[str], sg.Step[[int], int]]:
    ran: list[str] = []

    @sg.step
    async def add_one(n: int) -> int:
        ran.append(f"add_one {n}")
        return n + 1

    return ran, add_one


def test_a_chain_of_steps_returns_its_output_and_writes_state() -> None:
    ran, add_one = counting()

    @sg.workflow
    async def chain(n: int) -> int:
        for _ in range(5):
            n = await add_one(n)
        sg.context().state.set("last", n)
        return n

    async def main() -> None:
        assert isinstance(chain, sg.Workflow)
        session = chain.session("s")
        result = await session.run(1)
        assert result.outputs == [6]
        assert result.status is sg.RunStatus.IDLE
        assert session.state["last"] == 6
        assert len(ran) == 5
        assert chain.executor_ids == ("chain",)

    asyncio.run(main())


def test_the_function_may_take_the_context_and_emit_events() -> None:
    @dataclass(frozen=True)
    class Progress(sg.Event):
        done: int

    @sg.step
    async def words(title: str) -> int:
        return len(title.split())

    @sg.workflow(name="drafts", types=[Draft])
    async def draft(title: str, ctx: sg.Context[None, Draft]) -> Draft:
        n = await words(title)
        await ctx.emit(Progress(n))
        assert ctx is sg.context()
        return Draft(title, n)

    async def main() -> None:
        assert draft.name == "drafts"
        events = [e async for e in draft.stream("a tidy title")]
        assert Progress(3) in events
        assert sg.Output("draft", Draft("a tidy title", 3)) in events

    asyncio.run(main())


def test_none_is_no_output_and_wrong_input_is_refused() -> None:
    @sg.workflow
    async def quiet(n: int) -> None:
        sg.context().state.set("n", n)

    async def main() -> None:
        assert (await quiet.run(3)).outputs == []
        with pytest.raises(sg.RoutingError):
            await quiet.run("three")  # type: ignore[arg-type]

    asyncio.run(main())


def test_concurrent_steps_run_together_and_replay_by_call_order() -> None:
    """Both steps must be running at once; the second finishes first, yet each result
    goes back to its own call on replay (keys come from call order, not timing)."""
    ran: list[str] = []

    async def main() -> None:
        started: dict[str, asyncio.Event] = {"a": asyncio.Event(), "b": asyncio.Event()}

        @sg.step
        async def fetch(name: str) -> str:
            ran.append(name)
            started[name].set()
            other = "b" if name == "a" else "a"
            await started[other].wait()  # deadlocks unless both run concurrently
            if name == "a":
                await asyncio.sleep(0.01)  # finish after b
            return f"page {name}"

        @sg.workflow
        async def both(_: int) -> str:
            a, b = await asyncio.gather(fetch("a"), fetch("b"))
            ok = await sg.request("ok?", response_type=bool)
            return f"{a} + {b} ({ok})"

        session = both.session("s")
        first = await asyncio.wait_for(session.run(0), 5)
        (req,) = first.pending_requests
        result = await session.respond({req.id: True})
        assert result.outputs == ["page a + page b (True)"]
        assert sorted(ran) == ["a", "b"]  # not run again after the answer

    asyncio.run(main())


def test_a_request_pauses_and_the_answer_continues_without_rerunning_steps() -> None:
    ran, add_one = counting()

    @sg.workflow
    async def approve(n: int) -> str:
        n = await add_one(n)
        verdict = await sg.request(Draft("budget", n), response_type=bool)
        n = await add_one(n)
        note = await sg.request(f"note for {n}?", response_type=str)
        return f"{n} {verdict} {note}"

    async def main() -> None:
        session = approve.session("s")
        first = await session.run(1)
        assert first.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        (req,) = first.pending_requests
        assert req.payload == Draft("budget", 2)
        assert req.response_type is bool
        assert req.executor_id == "approve"
        with pytest.raises(sg.RequestError):
            session.respond({req.id: "not a bool"})
        second = await session.respond({req.id: True})
        assert second.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        (req2,) = second.pending_requests
        assert req2.payload == "note for 3?"
        third = await session.respond({req2.id: "fine"})
        assert third.outputs == ["3 True fine"]
        assert third.status is sg.RunStatus.IDLE
        assert ran == ["add_one 1", "add_one 2"]  # each step ran once across three runs

    asyncio.run(main())


def test_two_requests_at_once_and_new_input_while_one_waits() -> None:
    @sg.workflow
    async def pair(tag: str) -> str:
        a, b = await asyncio.gather(
            sg.request(f"{tag}-a", response_type=int), sg.request(f"{tag}-b", response_type=int)
        )
        return f"{tag}={a + b}"

    async def main() -> None:
        session = pair.session("s")
        first = await session.run("x")
        ra, rb = first.pending_requests
        assert (ra.payload, rb.payload) == ("x-a", "x-b")
        await session.run("y")  # a second call of the function, beside the first
        after_b = await session.respond({rb.id: 2})
        assert after_b.outputs == []
        assert after_b.pending_requests[0].id == ra.id  # asked once, not again
        done = await session.respond({ra.id: 1})
        assert done.outputs == ["x=3"]
        ya, yb = session.pending_requests
        assert (await session.respond({ya.id: 5, yb.id: 5})).outputs == ["y=10"]

    asyncio.run(main())


def test_a_divergent_replay_is_reported() -> None:
    flip: list[bool] = [False]

    @sg.step
    async def left() -> str:
        return "L"

    @sg.step
    async def right() -> str:
        return "R"

    @sg.workflow
    async def moody(_: int) -> str:
        first = await (right() if flip[0] else left())
        await sg.request("go?", response_type=bool)
        return first

    async def main() -> None:
        session = moody.session("s")
        (req,) = (await session.run(0)).pending_requests
        flip[0] = True  # the function now calls another step at the same position
        with pytest.raises(sg.ExecutorFailedError) as info:
            await session.respond({req.id: True})
        error = info.value.__cause__
        assert isinstance(error, sg.ReplayDivergenceError)
        assert isinstance(error, sg.WorkflowError)
        assert "step 'test_a_divergent_replay_is_reported.<locals>.left'" in str(error)
        assert session.status is sg.RunStatus.FAILED
        flip[0] = False
        assert (await session.resume()).outputs == ["L"]  # rolled back: answer again works

    asyncio.run(main())


def test_a_request_where_a_step_was_is_divergence_too() -> None:
    ask_first: list[bool] = [False]

    @sg.step
    async def work() -> int:
        return 1

    @sg.workflow
    async def wf(_: int) -> int:
        if ask_first[0]:
            await sg.request("early", response_type=int)
        n = await work()
        return n + await sg.request("late", response_type=int)

    async def main() -> None:
        session = wf.session("s")
        (req,) = (await session.run(0)).pending_requests
        ask_first[0] = True
        with pytest.raises(sg.ExecutorFailedError) as info:
            await session.respond({req.id: 1})
        assert isinstance(info.value.__cause__, sg.ReplayDivergenceError)
        assert "was step" in str(info.value.__cause__)
        assert "sg.request()" in str(info.value.__cause__)

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_failure_then_resume_skips_finished_steps(kind: str, tmp_path: Path) -> None:
    ran, add_one = counting()
    fail = [True]

    @sg.step
    async def flaky(n: int) -> int:
        ran.append(f"flaky {n}")
        if fail:
            fail.pop()
            raise ConnectionError("429")
        return n * 10

    @sg.workflow
    async def job(n: int) -> int:
        a, b = await asyncio.gather(add_one(n), add_one(n + 1))
        return await flaky(a + b)

    async def main() -> None:
        session = job.session("s", store=store_of(kind, tmp_path))
        with pytest.raises(sg.ExecutorFailedError):
            await session.run(1)
        assert session.status is sg.RunStatus.FAILED
        result = await session.resume()
        assert result.outputs == [50]
        assert ran == ["add_one 1", "add_one 2", "flaky 5", "flaky 5"]

    asyncio.run(main())


def test_a_retry_policy_reruns_the_function_and_replays_its_steps() -> None:
    ran, add_one = counting()
    attempts: list[int] = []

    @sg.workflow(retry=sg.RetryPolicy(max_attempts=2, initial_delay=0))
    async def job(n: int) -> int:
        n = await add_one(n)
        attempts.append(n)
        if len(attempts) == 1:
            raise TimeoutError("after the step")
        return n

    async def main() -> None:
        assert (await job.run(1)).outputs == [2]
        assert ran == ["add_one 1"]
        assert attempts == [2, 2]

    asyncio.run(main())


def test_nested_steps_replay_inside_an_unfinished_outer_step() -> None:
    ran, add_one = counting()

    @sg.step
    async def twice(n: int) -> int:
        n = await add_one(n)
        answer = await sg.request(f"after {n}", response_type=int)
        return await add_one(n + answer)

    @sg.workflow
    async def outer(n: int) -> int:
        return await twice(n)

    async def main() -> None:
        session = outer.session("s")
        (req,) = (await session.run(1)).pending_requests
        assert req.payload == "after 2"
        assert (await session.respond({req.id: 10})).outputs == [13]
        assert ran == ["add_one 1", "add_one 12"]

    asyncio.run(main())


def test_steps_from_a_concurrent_plain_coroutine_are_refused() -> None:
    _, add_one = counting()

    async def branch(n: int) -> int:
        return await add_one(await add_one(n))

    @sg.workflow
    async def racy(n: int) -> list[int]:
        return list(await asyncio.gather(branch(n), branch(n + 1)))

    async def main() -> None:
        with pytest.raises(sg.ExecutorFailedError) as info:
            await racy.run(1)
        assert "make that coroutine a @sg.step" in str(info.value.__cause__)

    asyncio.run(main())


def test_outside_a_workflow_a_step_is_a_plain_call_and_request_is_refused() -> None:
    ran, add_one = counting()

    async def main() -> None:
        assert await add_one(1) == 2
        assert ran == ["add_one 1"]
        with pytest.raises(sg.WorkflowError, match=r"outside a @sg\.workflow"):
            await sg.request("x")
        with pytest.raises(sg.WorkflowError, match=r"outside a @sg\.workflow"):
            sg.context()

    asyncio.run(main())


def test_decorators_refuse_sync_functions() -> None:
    with pytest.raises(TypeError, match="async def"):
        sg.step(lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(sg.GraphError, match="async def"):
        sg.workflow(lambda x: x)  # type: ignore[arg-type]

    async def three(a: int, b: int, c: int) -> None: ...

    with pytest.raises(sg.GraphError, match=r"\(input\) or \(input, ctx\)"):
        sg.workflow(three)  # type: ignore[arg-type]


def test_named_steps_and_results_that_cannot_be_stored() -> None:
    class Opaque:
        pass

    @sg.step(name="make")
    async def make() -> Opaque:
        return Opaque()

    @sg.workflow
    async def wf(_: int) -> None:
        await make()

    async def main() -> None:
        assert make.name == "make"
        with pytest.raises(sg.ExecutorFailedError) as info:
            await wf.run(0, store=sg.MemoryCheckpointStore())  # a store records results
        assert isinstance(info.value.__cause__, sg.SerializationError)

    asyncio.run(main())


def test_sessions_do_not_share_calls() -> None:
    @sg.workflow
    async def ask(tag: str) -> str:
        return f"{tag}:{await sg.request(tag, response_type=str)}"

    async def main() -> None:
        a, b = ask.session("a"), ask.session("b")
        (ra,) = (await a.run("A")).pending_requests
        (rb,) = (await b.run("B")).pending_requests
        assert (await b.respond({rb.id: "y"})).outputs == ["B:y"]
        assert (await a.respond({ra.id: "x"})).outputs == ["A:x"]

    asyncio.run(main())


def test_an_input_type_defined_in_a_function_resolves() -> None:
    @dataclass(frozen=True)
    class Order:
        qty: int

    @sg.workflow
    async def take(order: Order) -> int:
        return order.qty * 2

    async def main() -> None:
        assert (await take.run(Order(3))).outputs == [6]
        with pytest.raises(sg.RoutingError):
            await take.run(3)  # type: ignore[arg-type]

    asyncio.run(main())
