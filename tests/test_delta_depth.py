"""Reopening a session many times still writes full checkpoints regularly."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import stepgraph as sg
from stepgraph._checkpoint import FULL_EVERY


@sg.executor(id="tick")
async def tick(v: int, ctx: sg.Context[int]) -> None:
    ctx.state.set("n", v)
    ctx.state.set("big", "x" * 4096)
    await ctx.send(v + 1)


def test_reopened_sessions_keep_delta_chains_short(tmp_path: Path) -> None:
    db = tmp_path / "depth.db"
    wf = sg.WorkflowBuilder[int](start=tick).add_edge(tick, tick).build(max_supersteps=3)

    async def restart_many() -> None:
        for _ in range(40):  # each iteration is a process restart saving 3-4 checkpoints
            store = sg.SqliteCheckpointStore(db)
            s = wf.session("s", store=store)
            await s.load()
            with contextlib.suppress(sg.ConvergenceError):
                await (s.run(0) if s.head is None else s.resume())
            await store.aclose()

    asyncio.run(restart_many())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        flags = [
            row[0] for row in conn.execute("SELECT full FROM stepgraph_checkpoints ORDER BY rowid")
        ]
    longest = max(len(run) for run in "".join(map(str, flags)).split("1"))
    assert len(flags) > 100
    assert longest < FULL_EVERY  # never more than FULL_EVERY - 1 deltas in a row
