"""Human in the loop: requests, validated answers, partial answers, durability."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import pytest

import stepgraph as sg


@dataclass(frozen=True)
class Question:
    text: str


@dataclass(frozen=True)
class Verdict:
    approved: bool
    note: str = ""


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Budget(pydantic.BaseModel):
    amount: int
    currency: str


class Asker(sg.Executor):
    """Asks one question per input; outputs each answer it gets."""

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.request(Question(text), response_type=Verdict)

    @sg.response_handler
    async def on_verdict(self, q: Question, v: Verdict, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"{q.text}:{'yes' if v.approved else 'no'}{v.note}")


def asker(max_supersteps: int = 100) -> sg.Workflow[str]:
    return sg.WorkflowBuilder[str](start=Asker(id="asker")).build(max_supersteps=max_supersteps)


def test_request_pauses_and_answer_resumes() -> None:
    async def main() -> None:
        s = asker().session("s")
        result = await s.run("deploy")
        assert result.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        (req,) = result.pending_requests
        assert req.executor_id == "asker"
        assert req.payload == Question("deploy")
        assert req.response_type is Verdict
        issued = [e for e in result.events if isinstance(e, sg.RequestIssued)]
        assert [e.request for e in issued] == [req]
        answered = await s.respond({req.id: Verdict(True)})
        assert answered.outputs == ["deploy:yes"]
        assert answered.status is sg.RunStatus.IDLE
        assert s.pending_requests == ()

    asyncio.run(main())


def test_forty_answer_turns_with_a_small_superstep_budget() -> None:
    class Loop(sg.Executor):
        @sg.handler
        async def on_int(self, n: int, ctx: sg.Context[None, int]) -> None:
            await ctx.request(n, response_type=int)

        @sg.response_handler
        async def on_answer(self, n: int, answer: int, ctx: sg.Context[None, int]) -> None:
            await ctx.yield_output(answer)
            await ctx.request(answer + 1, response_type=int)

    async def main() -> None:
        s = sg.WorkflowBuilder[int](start=Loop(id="loop")).build(max_supersteps=10).session()
        result = await s.run(0)
        for turn in range(40):
            (req,) = result.pending_requests
            result = await s.respond({req.id: req.payload})
            assert result.outputs == [turn]
            assert result.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS

    asyncio.run(main())


def test_two_requests_answered_one_at_a_time() -> None:
    class Two(sg.Executor):
        @sg.handler
        async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
            await ctx.request(Question(text + "-1"), response_type=Verdict)
            await ctx.request(Question(text + "-2"), response_type=Verdict)

        @sg.response_handler
        async def on_verdict(self, q: Question, v: Verdict, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output(q.text)

    async def main() -> None:
        s = sg.WorkflowBuilder[str](start=Two(id="two")).build().session()
        first = await s.run("q")
        r1, r2 = first.pending_requests
        after_one = await s.respond({r2.id: Verdict(True)})
        assert after_one.outputs == ["q-2"]
        assert after_one.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        assert s.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        assert s.pending_requests == (r1,)
        after_two = await s.respond({r1.id: Verdict(False)})
        assert after_two.outputs == ["q-1"]
        assert after_two.status is sg.RunStatus.IDLE
        assert s.status is sg.RunStatus.IDLE

    asyncio.run(main())


def _snapshot(s: sg.Session[Any]) -> tuple[Any, ...]:
    return (
        s.status,
        s.pending_requests,
        dict(s.state),
        s.head,
        s.superstep,
        dict(s.core.content.queue),
    )


def test_wrong_type_and_unknown_id_change_nothing() -> None:
    async def main() -> None:
        s = asker().session()
        await s.run("a")
        await s.run("b")
        ra, rb = s.pending_requests
        before = _snapshot(s)
        with pytest.raises(sg.RequestError, match=r"must be a Verdict") as info:
            s.respond({ra.id: Verdict(True), rb.id: "not a verdict"})
        assert rb.id in str(info.value)
        assert _snapshot(s) == before  # the valid answer in the batch was not delivered either
        with pytest.raises(sg.RequestError, match="no pending request 'nope'"):
            s.respond({"nope": Verdict(True)})
        assert _snapshot(s) == before
        assert (await s.respond({ra.id: Verdict(True)})).outputs == ["a:yes"]

    asyncio.run(main())


def test_new_input_while_requests_are_pending() -> None:
    async def main() -> None:
        s = asker().session()
        first = await s.run("a")
        second = await s.run("b")
        assert second.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        assert [r.payload.text for r in s.pending_requests] == ["a", "b"]
        assert first.pending_requests[0] in s.pending_requests

    asyncio.run(main())


def test_reset_and_restore_make_old_ids_unknown() -> None:
    async def main() -> None:
        s = asker().session()
        await s.run("a")
        (old,) = s.pending_requests
        await s.reset()
        assert s.pending_requests == ()
        assert s.status is sg.RunStatus.IDLE
        with pytest.raises(sg.RequestError, match="before a reset/restore"):
            s.respond({old.id: Verdict(True)})

    asyncio.run(main())


class Typed(sg.Executor):
    def __init__(self, id: str, response_type: Any) -> None:
        super().__init__(id=id)
        self.response_type = response_type

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, Any]) -> None:
        await ctx.request(text, response_type=self.response_type)

    @sg.response_handler
    async def on_answer(self, q: str, answer: object, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(answer)


@pytest.mark.parametrize(
    ("response_type", "raw", "expected"),
    [
        (Verdict, {"approved": True, "note": "!"}, Verdict(True, "!")),
        (Budget, {"amount": 5, "currency": "EUR"}, Budget(amount=5, currency="EUR")),
        (Level, "high", Level.HIGH),
        (list[Verdict], [{"approved": False}], [Verdict(False)]),
        (dict[str, Level], {"a": "low"}, {"a": Level.LOW}),
        (float, 3, 3.0),
    ],
)
def test_json_like_answers_are_converted(response_type: Any, raw: Any, expected: Any) -> None:
    async def main() -> None:
        s = sg.WorkflowBuilder[str](start=Typed("t", response_type)).build().session()
        (req,) = (await s.run("q")).pending_requests
        assert (await s.respond({req.id: raw})).outputs == [expected]

    asyncio.run(main())


@pytest.mark.parametrize(
    ("response_type", "raw"),
    [
        (Verdict, {"approved": True, "extra": 1}),
        (Verdict, {"note": "missing approved"}),
        (Budget, {"amount": "lots", "currency": "EUR"}),
        (Level, "medium"),
        (list[Verdict], [{"approved": True}, 3]),
        (int, True),
    ],
)
def test_answers_that_do_not_fit_are_refused(response_type: Any, raw: Any) -> None:
    async def main() -> None:
        s = sg.WorkflowBuilder[str](start=Typed("t", response_type)).build().session()
        (req,) = (await s.run("q")).pending_requests
        with pytest.raises(sg.RequestError, match=req.id):
            s.respond({req.id: raw})
        assert s.pending_requests == (req,)

    asyncio.run(main())


def test_request_without_response_handler_fails_the_handler() -> None:
    @sg.executor(id="lonely")
    async def lonely(text: str, ctx: sg.Context[None]) -> None:
        await ctx.request(text, response_type=str)

    async def main() -> None:
        s = sg.WorkflowBuilder[str](start=lonely).build().session()
        with pytest.raises(sg.ExecutorFailedError) as info:
            await s.run("x")
        assert isinstance(info.value.__cause__, sg.RoutingError)
        assert s.pending_requests == ()

    asyncio.run(main())


def test_requests_of_a_failed_superstep_are_not_kept() -> None:
    class AskThenFail(sg.Executor):
        @sg.handler
        async def on_text(self, text: str, ctx: sg.Context[None]) -> None:
            await ctx.request(Question(text), response_type=Verdict)
            raise RuntimeError("after asking")

        @sg.response_handler
        async def on_verdict(self, q: Question, v: Verdict, ctx: sg.Context[None]) -> None: ...

    async def main() -> None:
        s = sg.WorkflowBuilder[str](start=AskThenFail(id="x")).build().session()
        run = s.run("q")
        seen: list[sg.Event] = []

        async def consume() -> None:
            async for ev in run:
                seen.append(ev)

        with pytest.raises(sg.ExecutorFailedError):
            await consume()
        assert any(isinstance(e, sg.RequestIssued) for e in seen)  # streamed live...
        assert s.pending_requests == ()  # ...but rolled back with its superstep
        assert s.status is sg.RunStatus.FAILED

    asyncio.run(main())


def test_answered_in_another_process_over_sqlite(tmp_path: Path) -> None:
    from stepgraph.stores.sqlite import SqliteCheckpointStore

    db = tmp_path / "runs.db"

    async def ask() -> str:
        store = SqliteCheckpointStore(db)
        s = asker().session("conv", store=store)
        result = await s.run("ship it")
        await store.aclose()
        return result.pending_requests[0].id

    async def answer(request_id: str) -> tuple[list[Any], list[sg.CheckpointInfo], str | None]:
        store = SqliteCheckpointStore(db)
        s = asker().session("conv", store=store)  # a new workflow object, a new session object
        head = None
        await s.load()
        head = s.head
        result = await s.respond({request_id: {"approved": True}})
        history = await s.history()
        await store.aclose()
        return result.outputs, history, head

    request_id = asyncio.run(ask())
    outputs, history, head_before = asyncio.run(answer(request_id))
    assert outputs == ["ship it:yes"]
    # answering continued the lineage from the head the first process left
    answer_start = [h for h in history if h.parent_id == head_before]
    assert len(answer_start) == 1
    assert history[0].parent_id is not None


def test_cancelled_answer_leaves_the_request_pending() -> None:
    entered = asyncio.Event()

    class Slow(Asker):
        @sg.response_handler
        async def on_verdict(self, q: Question, v: Verdict, ctx: sg.Context[None, str]) -> None:
            entered.set()
            await asyncio.Event().wait()

    async def main() -> None:
        s = sg.WorkflowBuilder[str](start=Slow(id="slow")).build().session()
        (req,) = (await s.run("q")).pending_requests
        task = asyncio.ensure_future(s.respond({req.id: Verdict(True)}))
        await entered.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert s.status is sg.RunStatus.CANCELLED
        assert s.pending_requests == (req,)

    asyncio.run(main())


@dataclass(frozen=True)
class Order:
    item: str
    quantity: int = 1


class Shop(sg.Executor):
    @sg.handler
    async def on_order(self, order: Order, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"{order.quantity} x {order.item}")


def test_json_like_input_is_converted_to_the_start_type() -> None:
    wf = sg.WorkflowBuilder[Order](start=Shop(id="shop")).build()
    assert asyncio.run(wf.run({"item": "tea", "quantity": 2})).outputs == ["2 x tea"]  # type: ignore[arg-type]
    with pytest.raises(sg.RoutingError, match="has no fields"):
        wf.run({"item": "tea", "colour": "red"})  # type: ignore[arg-type]
    with pytest.raises(sg.RoutingError, match="accepts"):
        wf.run(42)  # type: ignore[arg-type]
