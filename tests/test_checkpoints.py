"""Session durability: checkpoints, lineage, time travel, restore, reset, restarts."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import stepgraph as sg
from stepgraph.stores import CheckpointStore, MemoryCheckpointStore

try:
    from stepgraph.testing import ManualClock, SequentialIds
except ImportError:  # pragma: no cover - until stepgraph.testing lands
    import itertools
    from datetime import UTC, datetime

    class ManualClock:  # type: ignore[no-redef]
        def __call__(self) -> datetime:
            return datetime(2026, 1, 1, tzinfo=UTC)

    class SequentialIds:  # type: ignore[no-redef]
        def __init__(self, prefix: str = "id") -> None:
            self._n = itertools.count(1)
            self._prefix = prefix

        def __call__(self) -> str:
            return f"{self._prefix}-{next(self._n):06d}"


StoreFactory = Callable[[], CheckpointStore]


def _factories(tmp: Path) -> dict[str, StoreFactory]:
    out: dict[str, StoreFactory] = {}
    shared = MemoryCheckpointStore()
    out["memory"] = lambda: shared
    try:
        from stepgraph.stores.file import FileCheckpointStore
    except ImportError:  # pragma: no cover - store not built yet
        pass
    else:
        out["file"] = lambda: FileCheckpointStore(tmp / "ckpt")
    try:
        from stepgraph.stores.sqlite import SqliteCheckpointStore
    except ImportError:  # pragma: no cover
        pass
    else:
        out["sqlite"] = lambda: SqliteCheckpointStore(tmp / "ckpt.db")
    return out


@pytest.fixture(params=["memory", "file", "sqlite"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory giving a store over the same location each call (a 'restart')."""
    factories = _factories(tmp_path)
    if request.param not in factories:
        pytest.skip(f"{request.param} store not available")
    return factories[request.param]


# --------------------------------------------------------------------------- workflows


class Counter(sg.Executor):
    """Counts the messages it saw (snapshot/restore), forwards until `limit`."""

    def __init__(self, id: str, limit: int = 6) -> None:
        super().__init__(id=id)
        self.limit = limit
        self.seen: list[int] = []

    @sg.handler
    async def on_int(self, v: int, ctx: sg.Context[int, list[int]]) -> None:
        self.seen.append(v)
        ctx.state.set("total", ctx.state.get("total", 0) + v)
        if v >= self.limit:
            await ctx.yield_output([*self.seen, ctx.state.get("total")])
        else:
            await ctx.send(v + 1)

    async def snapshot(self) -> list[int]:
        return list(self.seen)

    async def restore(self, data: list[int]) -> None:
        self.seen = list(data)


def ping_pong(limit: int = 6) -> sg.Workflow[int]:
    a, b = Counter("a", limit), Counter("b", limit)
    return sg.WorkflowBuilder[int](start=a).add_edge(a, b).add_edge(b, a).build(name="pp")


_INSTANCES = iter(range(1, 1_000_000))


def session(
    wf: sg.Workflow[Any], store: CheckpointStore | None, sid: str = "s", *, lease: bool = True
) -> sg.Session[Any]:
    """A session with a manual clock and ids unique to this session object."""
    ids = SequentialIds(f"{sid}{next(_INSTANCES)}")
    return wf.session(sid, store=store, clock=ManualClock(), ids=ids, lease=lease)


# --------------------------------------------------------------------------- tests


def test_checkpoint_after_run_start_and_every_superstep(reopen: StoreFactory) -> None:
    async def main() -> None:
        store = reopen()
        s = session(ping_pong(), store)
        result = await s.run(1)
        assert result.outputs == [[2, 4, 6, 21]]
        saved = [e for e in result.events if isinstance(e, sg.CheckpointSaved)]
        assert [e.superstep for e in saved] == [0, 1, 2, 3, 4, 5, 6]
        assert result.checkpoint_id == saved[-1].checkpoint_id == s.head
        assert (await store.load(s.head)).status == "IDLE"  # the last one says how the run ended
        assert (await store.load(saved[-2].checkpoint_id)).status == "RUNNING"
        history = await s.history()
        assert [h.id for h in history] == [e.checkpoint_id for e in reversed(saved)]
        # a chain: each parent is the previous head
        assert [h.parent_id for h in history] == [h.id for h in history[1:]] + [None]
        await store.aclose()

    asyncio.run(main())


def test_resume_from_every_checkpoint_gives_the_same_answer(reopen: StoreFactory) -> None:
    async def main() -> None:
        store = reopen()
        wf = ping_pong()
        first = await session(wf, store).run(1)
        history = await session(wf, store).history()
        assert len(history) == 7
        for _ in range(2):  # twice: resuming must never alter a stored checkpoint
            for info in history[1:]:
                s = session(wf, store, "s")
                again = await s.resume(info.id)
                assert again.outputs == first.outputs, info
        await store.aclose()

    asyncio.run(main())


def test_restart_continues_from_latest_and_lineage_holds(reopen: StoreFactory) -> None:
    release = asyncio.Event()

    class Slow(sg.Executor):
        @sg.handler
        async def on_int(self, v: int, ctx: sg.Context[int]) -> None:
            ctx.state.set("slow", v)
            await release.wait()
            await ctx.send(v)

    @sg.executor(id="end")
    async def end(v: int, ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(v * 10)

    @sg.executor(id="first")
    async def first(v: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("first", v)
        await ctx.send(v)

    def build() -> sg.Workflow[int]:
        return (
            sg.WorkflowBuilder[int](start=first)
            .add_edge(first, Slow(id="slow"))
            .add_edge("slow", end)
            .build()
        )

    async def main() -> None:
        store = reopen()
        # The "crashed" run stays alive in this process and would keep the session's
        # lease; a real crash leaves it to expire or be taken over (tests/stores).
        s = session(build(), store, lease=False)
        run = s.run(7)
        task = asyncio.ensure_future(run)
        while s.superstep < 1:  # superstep 1 committed; superstep 2 blocks
            await asyncio.sleep(0)
        head_before = s.head
        # a "crash": the process state is thrown away without any cleanup
        del s
        restarted = session(build(), reopen(), lease=False)
        await restarted.load()
        assert restarted.head == head_before
        assert restarted.status is sg.RunStatus.INTERRUPTED
        assert dict(restarted.state) == {"first": 7}
        with pytest.raises(sg.NotIdleError):
            await restarted.run(1)
        release.set()
        result = await restarted.resume()
        assert result.outputs == [70]
        assert restarted.status is sg.RunStatus.IDLE
        history = await restarted.history()
        assert history[-1].parent_id is None
        assert history[-1].superstep == 0
        # the resumed run's checkpoints continue the chain from the head before the crash
        chain_ids = {h.id for h in history}
        assert all(h.parent_id in chain_ids for h in history if h.parent_id is not None)
        resumed_first = [h for h in history if h.parent_id == head_before]
        assert resumed_first
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_resume_of_older_checkpoint_branches(reopen: StoreFactory) -> None:
    async def main() -> None:
        store = reopen()
        wf = ping_pong()
        s = session(wf, store)
        await s.run(1)
        history = await s.history()
        branch_point = history[3]  # superstep 3
        result = await s.resume(branch_point.id)
        assert result.outputs == [[2, 4, 6, 21]]
        after = await s.history()
        assert len(after) == len(history) + 3
        new = after[: len(after) - len(history)]
        assert new[-1].parent_id == branch_point.id  # first new checkpoint points at the branch
        assert {h.id for h in history} <= {h.id for h in after}

    asyncio.run(main())


@dataclass(frozen=True)
class Item:
    n: int


class Join(sg.Executor):
    @sg.handler
    async def on_items(self, items: list[Item], ctx: sg.Context[None, list[int]]) -> None:
        await ctx.yield_output([i.n for i in items])


def test_fan_in_half_full_at_a_checkpoint(reopen: StoreFactory) -> None:
    @sg.executor(id="src")
    async def src(v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(v)

    @sg.executor(id="fast")
    async def fast(v: int, ctx: sg.Context[Item]) -> None:
        await ctx.send(Item(v + 1))

    @sg.executor(id="hop")
    async def hop(v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(v + 100)

    @sg.executor(id="slow")
    async def slow(v: int, ctx: sg.Context[Item]) -> None:
        await ctx.send(Item(v))

    def build() -> sg.Workflow[int]:
        return (
            sg.WorkflowBuilder[int](start=src)
            .add_fan_out(src, [fast, hop])
            .add_edge(hop, slow)
            .add_fan_in([fast, slow], Join(id="join"))
            .build()
        )

    async def main() -> None:
        store = reopen()
        result = await session(build(), store).run(1)
        assert result.outputs == [[2, 101]]
        history = await session(build(), store).history()
        # after superstep 2, fast's item waits in the fan-in buffer while slow has not sent
        half = next(h for h in history if h.superstep == 2)
        cp = await store.load(half.id)
        assert cp.part("f") != b"[]"
        resumed = await session(build(), store, "other").resume(half.id)
        assert resumed.outputs == [[2, 101]]

    asyncio.run(main())


def test_create_checkpoint_refused_after_failed_superstep() -> None:
    fail = {"on": True}

    @sg.executor(id="boom")
    async def boom(v: int, ctx: sg.Context[None, int]) -> None:
        if fail["on"]:
            raise RuntimeError("boom")
        await ctx.yield_output(v)

    async def main() -> None:
        s = session(sg.WorkflowBuilder[int](start=boom).build(), None)
        with pytest.raises(sg.ExecutorFailedError):
            await s.run(1)
        assert s.status is sg.RunStatus.FAILED
        with pytest.raises(sg.NotIdleError):
            await s.create_checkpoint()
        fail["on"] = False
        assert (await s.resume()).outputs == [1]
        cid = await s.create_checkpoint()
        assert [h.id for h in await s.history()] == [cid]

    asyncio.run(main())


def test_restoring_a_fresh_sessions_checkpoint_is_like_reset(reopen: StoreFactory) -> None:
    async def main() -> None:
        store = reopen()
        wf = ping_pong()
        s = session(wf, store)
        fresh_cp = await s.create_checkpoint()
        await s.run(1)
        assert dict(s.state) == {"total": 21}
        await s.restore(fresh_cp)
        restored = (dict(s.state), s.status, s.pending_requests, await s.run(3))
        t = session(wf, store, "t")
        await t.run(1)
        await t.reset()
        reset = (dict(t.state), t.status, t.pending_requests, await t.run(3))
        assert restored[:3] == reset[:3] == ({}, sg.RunStatus.IDLE, ())
        assert restored[3].outputs == reset[3].outputs == [[4, 6, 18]]
        # restore saved a new head whose parent is the restored checkpoint
        history = await s.history()
        restore_cp = next(h for h in history if h.parent_id == fresh_cp)
        assert restore_cp.superstep == 0 or restore_cp.superstep >= 0

    asyncio.run(main())


def test_reset_that_fails_leaves_the_session_unchanged() -> None:
    class Fragile(Counter):
        breaks = False

        def fresh(self) -> Fragile:
            if Fragile.breaks:
                raise RuntimeError("cannot rebuild")
            return super().fresh()

    async def main() -> None:
        a = Fragile("a")
        wf = sg.WorkflowBuilder[int](start=a).add_edge(a, Counter("b")).add_edge("b", a).build()
        s = session(wf, MemoryCheckpointStore())
        await s.run(1)
        before = (dict(s.state), s.head, s.status, list(s.core.content.executors))
        Fragile.breaks = True
        with pytest.raises(RuntimeError, match="cannot rebuild"):
            await s.reset()
        assert (dict(s.state), s.head, s.status, list(s.core.content.executors)) == before
        Fragile.breaks = False
        await s.reset()
        assert dict(s.state) == {}
        assert (await s.history())[0].parent_id is None  # a new root

    asyncio.run(main())


def test_changed_graph_is_refused_naming_what_changed(reopen: StoreFactory) -> None:
    async def main() -> None:
        store = reopen()
        await session(ping_pong(), store).run(1)
        a, c = Counter("a"), Counter("c")
        other = sg.WorkflowBuilder[int](start=a).add_edge(a, c).add_edge(c, a).build()
        s = session(other, store)
        with pytest.raises(sg.GraphMismatchError) as info:
            await s.load()
        msg = str(info.value)
        assert "executor 'b' was removed" in msg
        assert "executor 'c' was added" in msg

    asyncio.run(main())


class FailingStore(MemoryCheckpointStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail_at: int | None = None
        self.saves = 0

    async def save(self, checkpoint: sg.Checkpoint) -> None:
        self.saves += 1
        if self.fail_at is not None and self.saves >= self.fail_at:
            raise OSError("disk full")
        await super().save(checkpoint)


def test_failed_save_fails_the_run_and_commits_nothing() -> None:
    async def main() -> None:
        store = FailingStore()
        s = session(ping_pong(), store)
        store.fail_at = 3  # start, superstep 1, then superstep 2 fails
        with pytest.raises(sg.CheckpointError, match="disk full"):
            await s.run(1)
        assert s.status is sg.RunStatus.FAILED
        assert s.superstep == 1
        assert dict(s.state) == {"total": 1}
        b = s.core.content.executors[1]
        assert isinstance(b, Counter)
        assert b.seen == []  # its snapshot from before the failed superstep came back
        store.fail_at = None
        result = await s.resume()
        assert result.outputs == [[2, 4, 6, 21]]

    asyncio.run(main())


def test_unknown_type_fails_at_save_time() -> None:
    class Opaque:
        pass

    @sg.executor(id="w")
    async def w(v: int, ctx: sg.Context[None]) -> None:
        ctx.state.set("x", Opaque())

    async def main() -> None:
        s = session(sg.WorkflowBuilder[int](start=w).build(), MemoryCheckpointStore())
        with pytest.raises(sg.SerializationError, match="state\\['x'\\]") as info:
            await s.run(1)
        assert "cannot be stored" in str(info.value)
        assert s.status is sg.RunStatus.FAILED
        assert "x" not in s.state

    asyncio.run(main())


def test_cancellation_saves_a_head_without_the_dropped_messages(reopen: StoreFactory) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    @sg.executor(id="one")
    async def one(v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(v + 1)

    @sg.executor(id="two")
    async def two(v: int, ctx: sg.Context[None, int]) -> None:
        entered.set()
        await gate.wait()
        await ctx.yield_output(v)

    def build() -> sg.Workflow[int]:
        return sg.WorkflowBuilder[int](start=one).add_edge(one, two).build()

    async def main() -> None:
        store = reopen()
        s = session(build(), store)
        run = s.run(1)
        task = asyncio.ensure_future(run)
        await entered.wait()
        before_cancel = s.head
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert s.status is sg.RunStatus.CANCELLED
        assert s.head != before_cancel
        restarted = session(build(), reopen())
        await restarted.load()
        assert restarted.status is sg.RunStatus.CANCELLED  # the same idle session
        assert restarted.core.content.queue == {}
        gate.set()
        assert before_cancel is not None
        resumed = await restarted.resume(before_cancel)  # continues the cancelled run
        assert resumed.outputs == [2]

    asyncio.run(main())


def test_without_store_checkpoints_are_private_to_the_session() -> None:
    async def main() -> None:
        wf = ping_pong()
        s = session(wf, None)
        await s.run(1)
        assert await s.history() == []
        cid = await s.create_checkpoint()
        await s.run(1)
        await s.restore(cid)
        assert dict(s.state) == {"total": 21}
        assert await session(wf, None).history() == []

    asyncio.run(main())


def test_plan_prune_keeps_last_n_per_branch_head_and_pinned() -> None:
    from datetime import UTC, datetime

    from stepgraph._retention import plan_prune

    def info(cid: str, parent: str | None) -> sg.CheckpointInfo:
        return sg.CheckpointInfo(cid, parent, "s", 0, datetime(2026, 1, 1, tzinfo=UTC))

    # root r - a - b - c (main line), and a branch a - x - y; newest first by save order
    infos = [
        info("y", "x"), info("x", "a"), info("c", "b"), info("b", "a"), info("a", "r"),
        info("r", None),
    ]  # fmt: skip
    plan = plan_prune(infos, 2, head="y", pinned=["r"])
    assert set(plan.delete) == {"a"}
    assert set(plan.rebase) == {"b", "x"}  # their parent goes: they must be saved whole
    plan = plan_prune(infos, 1, head="c")
    assert set(plan.delete) == {"x", "b", "a", "r"}
    assert set(plan.rebase) == {"y", "c"}


def test_prune_and_retention_keep_everything_loadable(reopen: StoreFactory) -> None:
    async def main() -> None:
        store = reopen()
        wf = ping_pong(limit=30)
        s = session(wf, store)
        await s.run(1)
        full_history = await s.history()
        deleted = await s.prune(sg.Retention(keep_last=3))
        kept = await s.history()
        assert len(kept) == 3
        assert len(deleted) == len(full_history) - 3
        for info in kept:  # every kept checkpoint still loads and resumes
            cp = await store.load(info.id)
            assert cp.info == info
        assert (await session(wf, store).resume(kept[-1].id)).outputs
        t = wf.session("t", store=store, retention=sg.Retention(keep_last=2))
        await t.run(1)
        assert len(await t.history()) == 2

    asyncio.run(main())


def test_awaiting_a_finished_run_again_gives_the_same_result() -> None:
    async def main() -> None:
        run = ping_pong().session().run(5)
        first = await run
        assert (await run) is first

    asyncio.run(main())


def test_task_cancelled_before_its_first_step_releases_the_guard() -> None:
    async def main() -> None:
        s = ping_pong().session()
        task = asyncio.ensure_future(s.run(1))  # wrapped in a task, not started yet
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert s.status is not sg.RunStatus.RUNNING
        assert (await s.run(5)).outputs == [[6, 11]]

    asyncio.run(main())


def test_dropping_an_awaited_but_unstarted_run_releases_the_guard() -> None:
    async def main() -> None:
        s = ping_pong().session()
        run = s.run(1)
        iterator = run.__await__()  # awaited, never advanced
        del run, iterator
        gc.collect()  # the unstarted coroutine and its Run refer to each other
        assert (await s.run(5)).outputs == [[6, 11]]

    asyncio.run(main())


@dataclass(frozen=True)
class Order:
    item: str
    qty: int


class TakeOrder(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        item, qty = text.split()
        ctx.state.set("order", Order(item, int(qty)))
        await ctx.yield_output("noted")


def test_session_checkpoint_decodes_the_workflows_own_types(reopen: StoreFactory) -> None:
    wf = sg.WorkflowBuilder[str](start=TakeOrder("take")).register_types(Order).build(name="orders")

    async def main() -> None:
        await session(wf, reopen(), "o").run("tea 2")
        again = session(wf, reopen(), "o")  # a new process: nothing in memory
        head = await again.checkpoint()
        assert head.info.id == again.head
        assert head.state == {"order": Order("tea", 2)}
        history = await again.history()
        root = await again.checkpoint(history[-1])  # a CheckpointInfo works as a reference
        assert root.info.parent_id is None
        assert root.state == {}
        raw = await reopen().load(head.info.id)
        if not isinstance(reopen(), MemoryCheckpointStore):  # a durable store knows no classes
            with pytest.raises(sg.CheckpointDecodeError):
                _ = raw.state
        with pytest.raises(sg.CheckpointNotFoundError):
            await again.checkpoint("no-such-checkpoint")

    asyncio.run(main())


def test_session_checkpoint_without_a_store() -> None:
    wf = sg.WorkflowBuilder[str](start=TakeOrder("take")).register_types(Order).build(name="orders")

    async def main() -> None:
        s = session(wf, None)
        with pytest.raises(sg.CheckpointNotFoundError, match="has no checkpoint yet"):
            await s.checkpoint()
        await s.run("jam 1")
        cid = await s.create_checkpoint()
        assert (await s.checkpoint(cid)).state == {"order": Order("jam", 1)}
        assert (await s.checkpoint()).info.id == cid

    asyncio.run(main())


def test_checkpoint_snapshot_gives_an_executors_snapshot(reopen: StoreFactory) -> None:
    async def main() -> None:
        await session(ping_pong(limit=3), reopen(), "p").run(1)
        head = await session(ping_pong(limit=3), reopen(), "p").checkpoint()  # a new process
        assert head.snapshot_ids == ("a", "b")
        assert head.snapshot("a") == [1, 3]
        assert head.snapshot("b") == [2]
        with pytest.raises(KeyError):
            head.snapshot("nobody")

    asyncio.run(main())
