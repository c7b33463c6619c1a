"""One runner per session across processes: leases, fencing, takeover, group commit."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import stepgraph as sg
from stepgraph.stores import LeaseLostError

GATE: dict[str, asyncio.Event] = {}


class Gate(sg.Executor):
    """Counts in state; blocks on GATE[key] when the input asks to."""

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        ctx.state.set("count", ctx.state.get("count", 0) + 1)
        if text in GATE:
            GATE[text].set() if text.endswith("-entered") else None
            await GATE[text].wait()
        await ctx.yield_output(f"{text}#{ctx.state.get('count')}")


def workflow() -> sg.Workflow[str]:
    return sg.WorkflowBuilder[str](start=Gate(id="gate")).build(name="leased")


def test_second_process_gets_concurrent_run_error_then_continues(tmp_path: Path) -> None:
    db = tmp_path / "lease.db"

    async def main() -> None:
        GATE["hold"] = asyncio.Event()
        a = workflow().session("s", store=sg.SqliteCheckpointStore(db))
        b = workflow().session("s", store=sg.SqliteCheckpointStore(db))  # "another process"
        task = asyncio.ensure_future(a.run("hold"))
        while a.superstep == 0 and not a.core.content.queue:
            await asyncio.sleep(0)
        for _ in range(50):
            await asyncio.sleep(0)
        with pytest.raises(sg.ConcurrentRunError, match="being run elsewhere"):
            await b.run("other")
        GATE["hold"].set()
        assert (await task).outputs == ["hold#1"]
        # b continues from a's head: the count goes on
        assert (await b.run("next")).outputs == ["next#2"]
        assert (await a.run("again")).outputs == ["again#3"]  # a sees b's run too

    asyncio.run(main())


def test_a_run_that_lost_its_lease_cannot_write(tmp_path: Path) -> None:
    db = tmp_path / "fence.db"

    class Stealer(sg.Executor):
        @sg.handler
        async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
            ctx.state.set("written", True)
            # another process takes the session over while this handler runs
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE stepgraph_leases SET owner = 'thief', token = token + 1")
            await ctx.yield_output(text)

    wf = sg.WorkflowBuilder[str](start=Stealer(id="stealer")).build()

    async def main() -> None:
        store = sg.SqliteCheckpointStore(db)
        s = wf.session("s", store=store)
        with pytest.raises(LeaseLostError):
            await s.run("x")
        assert "written" not in s.state  # the superstep was not committed
        history = await s.history()
        assert [h.superstep for h in history] == [0]  # only the run-start checkpoint landed
        await store.aclose()

    asyncio.run(main())


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import stepgraph as sg

    @sg.executor(id="forever")
    async def forever(text: str, ctx: sg.Context[None, str]) -> None:
        print("holding", flush=True)
        await asyncio.Event().wait()

    async def main() -> None:
        wf = sg.WorkflowBuilder(start=forever).build(name="leased")
        await wf.session("s", store=sg.SqliteCheckpointStore(sys.argv[1])).run("x")

    asyncio.run(main())
    """
)


def test_lease_of_a_crashed_process_is_taken_over_at_once(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "holding"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    @sg.executor(id="forever")
    async def forever(text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(text)

    async def main() -> list[Any]:
        store = sg.SqliteCheckpointStore(db)
        s = sg.WorkflowBuilder(start=forever).build(name="leased").session("s", store=store)
        await s.load()
        assert s.status is sg.RunStatus.INTERRUPTED
        result = await s.resume()  # no 30 s wait: the holder is a dead process on this host
        await store.aclose()
        return result.outputs

    assert asyncio.run(main()) == ["x"]


def test_concurrent_sessions_share_commits(tmp_path: Path) -> None:
    class Counting(sg.SqliteCheckpointStore):
        commits = 0

        def _commit(self, doing: str, batch: Any) -> None:
            Counting.commits += 1
            super()._commit(doing, batch)

    @sg.executor(id="step")
    async def step(n: int, ctx: sg.Context[int, int]) -> None:
        if n >= 3:
            await ctx.yield_output(n)
        else:
            await ctx.send(n + 1)

    wf = sg.WorkflowBuilder[int](start=step).add_edge(step, step).build()

    async def main() -> None:
        store = Counting(tmp_path / "group.db")
        sessions = [wf.session(f"s{i}", store=store, lease=False) for i in range(30)]
        results = await asyncio.gather(*(s.run(0) for s in sessions))
        assert all(r.outputs == [3] for r in results)
        saved = sum([len(await s.history()) for s in sessions])
        assert saved == 30 * 5  # start + 4 supersteps each, nothing lost
        assert Counting.commits < saved / 5  # many sessions' saves shared each fsync
        await store.aclose()

    asyncio.run(main())
