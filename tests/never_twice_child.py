"""Child process for the SIGKILL never-twice test (not collected by pytest).

    python tests/never_twice_child.py DB EFFECTS BLOCKER

Opens session "mail" over the SQLite store DB. When it has no checkpoint it
runs a two-branch workflow: `mail` appends "mail" to EFFECTS (an outside
side effect) and finishes; `slow` appends "slow" and, while the file BLOCKER
exists, waits forever (the parent kills the process then). When the session
was interrupted it resumes it. Prints the run's outputs as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import stepgraph as sg
from stepgraph.stores import SqliteCheckpointStore


def build(effects: Path, blocker: Path) -> sg.Workflow[str]:
    def note(what: str) -> None:
        with effects.open("a") as f:
            f.write(f"{what} {os.getpid()}\n")

    @sg.executor(id="start")
    async def start(text: str, ctx: sg.Context[str]) -> None:
        await ctx.send(text)

    @sg.executor(id="mail")
    async def mail(text: str, ctx: sg.Context[None, str]) -> None:
        note("mail")
        await ctx.yield_output(f"mailed {text}")

    @sg.executor(id="slow")
    async def slow(text: str, ctx: sg.Context[None, str]) -> None:
        note("slow")
        if blocker.exists():
            print("blocking", flush=True)
            await asyncio.Event().wait()  # until SIGKILL
        await ctx.yield_output(f"slow {text}")

    return sg.WorkflowBuilder[str](start=start).add_fan_out(start, [mail, slow]).build()


async def main(db: str, effects: str, blocker: str) -> None:
    store = SqliteCheckpointStore(db)
    try:
        session = build(Path(effects), Path(blocker)).session("mail", store=store)
        await session.load()
        if session.head is None:
            result = await session.run("hello")
        else:
            result = await session.resume()
        print(json.dumps(result.outputs), flush=True)
    finally:
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
