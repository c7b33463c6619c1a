"""One runner per session across processes: leases, fencing, takeover, group commit.

The session rules run over every lease store of one machine (`KINDS`: SQLite, files).
"""

from __future__ import annotations

import asyncio
import json
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
from stepgraph.stores.file import FileCheckpointStore

GATE: dict[str, asyncio.Event] = {}
KINDS = ["sqlite", "file"]


def place(kind: str, tmp_path: Path) -> Path:
    """Where the stores of `kind` keep their sessions: a database file or a directory."""
    return tmp_path / ("lease.db" if kind == "sqlite" else "leases")


def open_store(kind: str, where: Path) -> sg.CheckpointStore:
    return sg.SqliteCheckpointStore(where) if kind == "sqlite" else FileCheckpointStore(where)


def steal(kind: str, where: Path) -> None:
    """What another process taking the session over does to the store (token + 1)."""
    if kind == "sqlite":
        with sqlite3.connect(where) as conn:
            conn.execute("UPDATE stepgraph_leases SET owner = 'thief', token = token + 1")
        return
    lease_file = where / "s.lease"
    held = json.loads(lease_file.read_text())
    held.update(owner="thief", token=held["token"] + 1)
    lease_file.write_text(json.dumps(held) + "\n")


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


@pytest.mark.parametrize("kind", KINDS)
def test_second_process_gets_concurrent_run_error_then_continues(kind: str, tmp_path: Path) -> None:
    where = place(kind, tmp_path)

    async def main() -> None:
        GATE["hold"] = asyncio.Event()
        a = workflow().session("s", store=open_store(kind, where))
        b = workflow().session("s", store=open_store(kind, where))  # "another process"
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


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_that_lost_its_lease_cannot_write(kind: str, tmp_path: Path) -> None:
    where = place(kind, tmp_path)

    class Stealer(sg.Executor):
        @sg.handler
        async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
            ctx.state.set("written", True)
            steal(kind, where)  # another process takes the session over while this runs
            await ctx.yield_output(text)

    wf = sg.WorkflowBuilder[str](start=Stealer(id="stealer")).build()

    async def main() -> None:
        store = open_store(kind, where)
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
    from stepgraph.stores.file import FileCheckpointStore

    @sg.executor(id="forever")
    async def forever(text: str, ctx: sg.Context[None, str]) -> None:
        print("holding", flush=True)
        await asyncio.Event().wait()

    async def main() -> None:
        wf = sg.WorkflowBuilder(start=forever).build(name="leased")
        kind, path = sys.argv[1:3]
        store = sg.SqliteCheckpointStore(path) if kind == "sqlite" else FileCheckpointStore(path)
        await wf.session("s", store=store).run("x")

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("kind", KINDS)
def test_lease_of_a_crashed_process_is_taken_over_at_once(kind: str, tmp_path: Path) -> None:
    where = place(kind, tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(where)], stdout=subprocess.PIPE, text=True
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
        store = open_store(kind, where)
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
