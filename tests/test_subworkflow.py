"""Sub-workflows: child runs inside the parent session, requests, events, checkpoints."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import stepgraph as sg
from stepgraph.stores import MemoryCheckpointStore


@dataclass(frozen=True)
class Approval:
    what: str


class Doubler(sg.Executor):
    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[None, int]) -> None:
        ctx.state.set("last", n)
        ctx.state.set("big", "x" * 2000)  # unchanged after the first write
        await ctx.yield_output(n * 2)


class Gate(sg.Executor):
    """Asks for approval of each input, outputs it when approved."""

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        ctx.state.set("asked", text)
        await ctx.request(Approval(text), response_type=bool)

    @sg.response_handler
    async def on_answer(self, a: Approval, ok: bool, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"{a.what}:{'approved' if ok else 'rejected'}")


def gate_workflow() -> sg.Workflow[str]:
    return sg.WorkflowBuilder[str](start=Gate(id="gate")).build(name="gate")


def middle_workflow() -> sg.Workflow[str]:
    inner = sg.SubWorkflow(gate_workflow(), id="inner")

    @sg.executor(id="prep")
    async def prep(text: str, ctx: sg.Context[str]) -> None:
        await ctx.send(text.upper())

    @sg.executor(id="wrap")
    async def wrap(text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"[{text}]")

    return (
        sg.WorkflowBuilder[str](start=prep)
        .add_edge(prep, inner)
        .add_edge(inner, wrap)
        .build(name="middle")
    )


def top_workflow() -> sg.Workflow[str]:
    outer = sg.SubWorkflow(middle_workflow(), id="outer")

    @sg.executor(id="final")
    async def final(text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"top {text}")

    return sg.WorkflowBuilder[str](start=outer).add_edge(outer, final).build(name="top")


def test_child_outputs_are_messages_to_successors_or_parent_outputs() -> None:
    @sg.executor(id="plus")
    async def plus(n: int, ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(n + 1)

    child = sg.WorkflowBuilder[int](start=Doubler(id="d")).build()
    with_successor = (
        sg.WorkflowBuilder[int](start=sg.SubWorkflow(child, id="sub")).add_edge("sub", plus).build()
    )
    alone = sg.WorkflowBuilder[int](start=sg.SubWorkflow(child, id="sub")).build()

    async def main() -> None:
        assert (await with_successor.run(5)).outputs == [11]
        result = await alone.run(5)
        assert result.outputs == [10]
        wrapped = [e for e in result.events if isinstance(e, sg.SubWorkflowEvent)]
        assert wrapped[0].executor_id == "sub"
        assert isinstance(wrapped[0].event, sg.RunStarted)
        assert isinstance(wrapped[-1].event, sg.RunCompleted)
        assert any(isinstance(e.event, sg.Output) and e.event.value == 10 for e in wrapped)

    asyncio.run(main())


def test_each_session_has_its_own_child() -> None:
    child = sg.WorkflowBuilder[int](start=Doubler(id="d")).build()
    wf = sg.WorkflowBuilder[int](start=sg.SubWorkflow(child, id="sub")).build()

    async def main() -> None:
        a, b = wf.session("a"), wf.session("b")
        await asyncio.gather(a.run(1), b.run(2))
        sub_a, sub_b = a.core.content.executors[0], b.core.content.executors[0]
        assert isinstance(sub_a, sg.SubWorkflow)
        assert isinstance(sub_b, sg.SubWorkflow)
        assert sub_a is not sub_b
        assert sub_a._child is not None
        assert sub_b._child is not None
        assert sub_a._child.state["last"] == 1
        assert sub_b._child.state["last"] == 2

    asyncio.run(main())


def test_two_levels_deep_innermost_request_answered_from_the_top() -> None:
    async def main() -> None:
        s = top_workflow().session("top")
        events: list[sg.Event] = []
        async for ev in s.run("deploy"):
            events.append(ev)
        (req,) = s.pending_requests
        assert req.executor_id == "outer/inner/gate"
        assert req.id.startswith("outer/inner/")
        assert req.payload == Approval("DEPLOY")
        assert s.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        # live events from two levels down arrive wrapped twice
        nested = [
            e.event.event
            for e in events
            if isinstance(e, sg.SubWorkflowEvent) and isinstance(e.event, sg.SubWorkflowEvent)
        ]
        assert any(isinstance(e, sg.RequestIssued) for e in nested)
        result = await s.respond({req.id: True})
        assert result.outputs == ["top [DEPLOY:approved]"]
        assert s.pending_requests == ()
        assert s.status is sg.RunStatus.IDLE

    asyncio.run(main())


def test_checkpoints_resumable_at_each_level_and_across_restarts(tmp_path: Path) -> None:
    from stepgraph.stores.sqlite import SqliteCheckpointStore

    db = tmp_path / "sub.db"

    async def first() -> str:
        store = SqliteCheckpointStore(db)
        s = top_workflow().session("conv", store=store)
        (req,) = (await s.run("ship")).pending_requests
        await store.aclose()
        return req.id

    async def second(request_id: str) -> None:
        store = SqliteCheckpointStore(db)
        s = top_workflow().session("conv", store=store)  # new objects: a restart
        await s.load()
        assert [r.id for r in s.pending_requests] == [request_id]
        result = await s.respond({request_id: False})
        assert result.outputs == ["top [SHIP:rejected]"]
        # every checkpoint of the parent resumes to the same end
        history = await s.history()
        answered = [h for h in history if h.superstep >= 1]
        for info in history:
            branch = top_workflow().session("conv", store=store)
            resumed = await branch.resume(info.id)
            if resumed.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS:
                (again,) = resumed.pending_requests
                resumed = await branch.respond({again.id: False})
            assert resumed.outputs in ([], ["top [SHIP:rejected]"]), info
        assert answered
        await store.aclose()

    asyncio.run(second(asyncio.run(first())))


def test_parent_reset_clears_child_pending_requests() -> None:
    async def main() -> None:
        s = top_workflow().session()
        (req,) = (await s.run("x")).pending_requests
        await s.reset()
        assert s.pending_requests == ()
        result = await s.run("y")
        (fresh,) = result.pending_requests
        assert fresh.payload == Approval("Y")
        assert fresh.id != req.id
        outer = s.core.content.executors[0]
        assert isinstance(outer, sg.SubWorkflow)
        assert outer._child is not None
        assert [r.payload for r in outer._child.pending_requests] == [Approval("Y")]

    asyncio.run(main())


class Recording(MemoryCheckpointStore):
    def __init__(self) -> None:
        super().__init__()
        self.saved: list[sg.Checkpoint] = []

    async def save(self, checkpoint: sg.Checkpoint) -> None:
        self.saved.append(checkpoint)
        await super().save(checkpoint)


def test_child_state_is_checkpointed_incrementally() -> None:
    child = sg.WorkflowBuilder[int](start=Doubler(id="d")).build()
    wf = sg.WorkflowBuilder[int](start=sg.SubWorkflow(child, id="sub")).build()

    async def main() -> None:
        store = Recording()
        s = wf.session("s", store=store)
        await s.run(1)
        await s.run(2)
        last = store.saved[-1]
        assert last.changed is not None
        assert "c:sub/s:last" in last.changed
        assert "c:sub/s:big" not in last.changed  # unchanged child state is not rewritten
        assert "c:sub/s:big" in last.parts
        assert all(not n.startswith("c:sub/e:") for n in last.parts)
        # restore brings the child back: a new session resumes from the first run's end
        first_end = next(cp for cp in store.saved if cp.info.superstep == 1)
        t = wf.session("s", store=store)
        await t.restore(first_end.info.id)
        sub = t.core.content.executors[0]
        assert isinstance(sub, sg.SubWorkflow)
        await t.run(7)
        assert sub._child is None or sub._child.state.get("last") in (1, 7)
        sub_now = t.core.content.executors[0]
        assert isinstance(sub_now, sg.SubWorkflow)
        assert sub_now._child is not None
        assert sub_now._child.state["last"] == 7

    asyncio.run(main())


def test_failing_child_rolls_back_with_the_parent_superstep() -> None:
    calls: list[int] = []

    @sg.executor(id="flaky")
    async def flaky(n: int, ctx: sg.Context[None, int]) -> None:
        calls.append(n)
        ctx.state.set("seen", n)
        if len(calls) == 2:
            raise RuntimeError("child broke")
        await ctx.yield_output(n)

    child = sg.WorkflowBuilder[int](start=flaky).build()
    wf = sg.WorkflowBuilder[int](start=sg.SubWorkflow(child, id="sub")).build()

    async def main() -> Any:
        s = wf.session()
        assert (await s.run(1)).outputs == [1]
        with pytest.raises(sg.ExecutorFailedError) as info:
            await s.run(2)
        assert info.value.executor_id == "sub"
        sub = s.core.content.executors[0]
        assert isinstance(sub, sg.SubWorkflow)
        child_session = sub.child(s.core.content.contexts[0])  # type: ignore[arg-type]
        await child_session.load()
        assert child_session.state["seen"] == 1  # the failed child superstep is gone
        result = await s.resume()
        assert result.outputs == [2]

    asyncio.run(main())
