"""`session.update_state` (a new checkpoint, a fork off an older one) and `StateUpdated` events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.helpers import store_of

import stepgraph as sg

KINDS = ["memory", "sqlite", "file"]


@dataclass(frozen=True)
class Unknown:
    """A type no handler of the workflow names: it cannot be stored in its checkpoints."""

    x: int


def _chain() -> sg.Workflow[int]:
    """a -> b -> c; b adds state["bonus"], c outputs; each writes its input to state."""

    @sg.executor(id="a")
    async def a(n: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("a", n)
        await ctx.send(n + 1)

    @sg.executor(id="b")
    async def b(n: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("b", n)
        await ctx.send(n + ctx.state.get("bonus", 0))

    @sg.executor(id="c")
    async def c(n: int, ctx: sg.Context[None, int]) -> None:
        ctx.state.delete("a")
        await ctx.yield_output(n)

    return sg.WorkflowBuilder(start=a).add_chain([a, b, c]).build(name="chain")


@pytest.mark.parametrize("kind", KINDS)
def test_update_on_the_head_is_a_new_head_a_restart_sees(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        wf = _chain()
        store = store_of(kind, tmp_path)
        session = wf.session("s", store=store)
        await session.run(1)
        before = session.head
        assert dict(session.state) == {"b": 2}
        new = await session.update_state({"note": "hi", "b": sg.DELETE, "missing": sg.DELETE})
        assert new == session.head != before
        assert dict(session.state) == {"note": "hi"}
        history = await session.history()
        assert history[0].id == new
        assert history[0].parent_id == before
        assert history[0].superstep == history[1].superstep == 3
        assert dict((await session.checkpoint(before)).state) == {"b": 2}  # unchanged
        assert session.status is sg.RunStatus.IDLE

        again = wf.session("s", store=store if kind == "memory" else store_of(kind, tmp_path))
        await again.load()
        assert again.head == new
        assert dict(again.state) == {"note": "hi"}

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_update_on_an_older_checkpoint_forks_and_resume_sees_it(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        session = _chain().session("s", store=store_of(kind, tmp_path))
        first = await session.run(1)
        assert first.outputs == [2]
        old_head = session.head
        infos = await session.history()
        after_a = next(i for i in infos if i.superstep == 1)  # b's message is queued there
        forked = await session.update_state({"bonus": 100}, checkpoint=after_a)
        history = await session.history()
        assert len(history) == len(infos) + 1
        assert history[0].id == forked == session.head
        assert history[0].parent_id == after_a.id
        assert dict(session.state) == {"a": 1, "bonus": 100}
        assert session.status is sg.RunStatus.INTERRUPTED  # mid-run, as the checkpoint was
        assert dict((await session.checkpoint(after_a)).state) == {"a": 1}  # the old branch
        assert dict((await session.checkpoint(old_head)).state) == {"b": 2}

        result = await session.resume()
        assert result.outputs == [102]
        assert dict(session.state) == {"b": 2, "bonus": 100}
        after = await session.history()  # b's and c's checkpoints on top of the fork
        assert [i.superstep for i in after[:3]] == [3, 2, 1]
        assert after[2].id == forked
        assert after[1].parent_id == forked

    asyncio.run(main())


def test_a_paused_run_goes_on_with_the_updated_state() -> None:
    async def main() -> None:
        session = _chain().session("s", store=sg.MemoryCheckpointStore())
        await session.run(1, interrupt_before=["b"])
        assert session.status is sg.RunStatus.PAUSED
        await session.update_state({"bonus": 10})
        assert session.status is sg.RunStatus.PAUSED  # still paused: the queue is kept
        assert (await session.checkpoint()).status == "PAUSED"
        result = await session.resume(interrupt_before=["b"])
        assert result.outputs == [12]

    asyncio.run(main())


def test_without_a_store_updates_are_private_checkpoints() -> None:
    async def main() -> None:
        session = _chain().session("s")
        await session.run(1)
        first = await session.update_state({"x": 1})
        second = await session.update_state({"x": 2})
        history = await session.history()
        assert [i.id for i in history] == [second, first]
        assert history[0].parent_id == first
        assert history[1].parent_id is None
        cp = await session.checkpoint(first)
        fork = await session.update_state({"y": 3}, checkpoint=cp)  # a Checkpoint as ref
        assert (await session.history())[0].parent_id == first
        assert session.head == fork
        assert dict(session.state) == {"b": 2, "x": 1, "y": 3}

    asyncio.run(main())


def test_bad_keys_and_values_are_refused_and_change_nothing() -> None:
    async def main() -> None:
        session = _chain().session("s", store=sg.MemoryCheckpointStore())
        await session.run(1)
        infos = await session.history()
        mid = next(i for i in infos if i.superstep == 1)
        head, state = session.head, dict(session.state)
        with pytest.raises(TypeError, match="state keys must be str, got 3"):
            await session.update_state({3: "x"})  # type: ignore[dict-item]
        with pytest.raises(TypeError, match="takes a mapping"):
            await session.update_state([("k", 1)])  # type: ignore[arg-type]
        with pytest.raises(sg.SerializationError, match=r"state\['bad'\] cannot be stored"):
            await session.update_state({"ok": 1, "bad": Unknown(1)})
        with pytest.raises(sg.SerializationError):
            await session.update_state({"bad": Unknown(1)}, checkpoint=mid)  # a fork, too
        with pytest.raises(sg.CheckpointNotFoundError):
            await session.update_state({"ok": 1}, checkpoint="nope")
        assert session.head == head
        assert dict(session.state) == state
        assert session.status is sg.RunStatus.IDLE
        assert len(await session.history()) == len(infos)
        assert (await session.run(5)).outputs == [6]  # the session works on as before

    asyncio.run(main())


def test_refused_while_a_run_is_active() -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    @sg.executor(id="wait")
    async def wait(n: int, ctx: sg.Context[None, int]) -> None:
        ctx.state.set("n", n)
        entered.set()
        await release.wait()
        await ctx.yield_output(n)

    wf = sg.WorkflowBuilder(start=wait).build()

    async def main() -> None:
        session = wf.session("s", store=sg.MemoryCheckpointStore())
        run = asyncio.create_task(session.run(1))
        await entered.wait()
        with pytest.raises(sg.ConcurrentRunError, match="update_state"):
            await session.update_state({"n": 99})
        release.set()
        result = await run
        assert result.outputs == [1]
        assert dict(session.state) == {"n": 1}

    asyncio.run(main())


class _GatedStore(sg.MemoryCheckpointStore):
    """Loading a checkpoint waits for `gate` (after setting `loading`)."""

    def __init__(self) -> None:
        super().__init__()
        self.loading = asyncio.Event()
        self.gate = asyncio.Event()
        self.gated = False

    async def load(self, checkpoint_id: str) -> sg.Checkpoint:
        if self.gated:
            self.loading.set()
            await self.gate.wait()
        return await super().load(checkpoint_id)


def test_a_run_cannot_start_while_an_update_waits_on_the_store() -> None:
    async def main() -> None:
        store = _GatedStore()
        session = _chain().session("s", store=store)
        await session.run(1)
        mid = next(i for i in await session.history() if i.superstep == 1)
        store.gated = True
        update = asyncio.create_task(session.update_state({"bonus": 5}, checkpoint=mid))
        await store.loading.wait()  # the update is inside, waiting on the store
        with pytest.raises(sg.ConcurrentRunError):
            session.run(7)
        with pytest.raises(sg.ConcurrentRunError):
            await session.restore(mid)
        store.gate.set()
        forked = await update
        assert session.head == forked
        assert dict(session.state) == {"a": 1, "bonus": 5}
        assert (await session.resume()).outputs == [7]

    asyncio.run(main())


def _writers() -> sg.Workflow[int]:
    """start fans out to x and y, which write the same key in one superstep; z deletes it."""

    @sg.executor(id="start")
    async def start(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)  # no state written in this superstep

    @sg.executor(id="x")
    async def x(n: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("k", "from x")
        ctx.state.set("x", n)
        await ctx.send(n)

    @sg.executor(id="y")
    async def y(n: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("k", "from y")

    @sg.executor(id="z")
    async def z(n: int, ctx: sg.Context[None, int]) -> None:
        ctx.state.delete("k")
        await ctx.yield_output(n)

    return (
        sg.WorkflowBuilder(start=start)
        .add_fan_out(start, [x, y])
        .add_edge(x, z)
        .build(name="writers")
    )


def test_state_updated_events_only_on_request_with_what_each_superstep_wrote() -> None:
    async def main() -> None:
        wf = _writers()
        plain = await wf.session("p").run(4)
        assert not any(isinstance(e, sg.StateUpdated) for e in plain.events)

        session = wf.session("s", store=sg.MemoryCheckpointStore())
        result = await session.run(4, state_updates=True)
        updates = [e for e in result.events if isinstance(e, sg.StateUpdated)]
        assert updates == [
            sg.StateUpdated(2, {"k": "from y", "x": 4}),  # y is declared after x: y wins
            sg.StateUpdated(3, {"k": sg.DELETE}),
        ]
        assert dict(session.state) == {"x": 4}
        names = [type(e).__name__ for e in result.events]
        at = result.events.index(updates[0])
        assert result.events[at - 1] == sg.SuperstepCompleted(2)  # after the barrier
        assert names.count("StateUpdated") == 2

        streamed = [e async for e in wf.session("t").run(4, state_updates=True)]
        assert [e for e in streamed if isinstance(e, sg.StateUpdated)] == updates

    asyncio.run(main())


def test_a_rolled_back_superstep_reports_no_state_update() -> None:
    @sg.executor(id="w")
    async def w(n: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("w", n)
        await ctx.send(n)

    @sg.executor(id="boom")
    async def boom(n: int, ctx: sg.Context[None, int]) -> None:
        ctx.state.set("boom", n)
        raise RuntimeError("no")

    wf = sg.WorkflowBuilder(start=w).add_edge(w, boom).build()

    async def main() -> None:
        events: list[sg.Event] = []

        async def consume() -> None:
            async for e in wf.session("s").run(1, state_updates=True):
                events.append(e)

        with pytest.raises(sg.ExecutorFailedError):
            await consume()
        assert [e for e in events if isinstance(e, sg.StateUpdated)] == [
            sg.StateUpdated(1, {"w": 1})
        ]

    asyncio.run(main())
