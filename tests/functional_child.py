"""Child process for the functional SIGKILL test (not collected by pytest).

    python tests/functional_child.py DB EFFECTS BLOCKER

Opens session "f" over the SQLite store DB. With no checkpoint it runs a
functional workflow: steps `fetch`, then `mail` and `bill` concurrently, then
`slow`, which waits forever while the file BLOCKER exists (the parent kills the
process then). Each step appends its name to EFFECTS (an outside side effect).
When the session was interrupted it resumes it. Prints the outputs as JSON.
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

    @sg.step
    async def fetch(text: str) -> str:
        note("fetch")
        return text.upper()

    @sg.step
    async def mail(text: str) -> str:
        note("mail")
        return f"mailed {text}"

    @sg.step
    async def bill(text: str) -> int:
        note("bill")
        return len(text)

    @sg.step
    async def slow(text: str) -> str:
        note("slow")
        if blocker.exists():
            print("blocking", flush=True)
            await asyncio.Event().wait()  # until SIGKILL
        return f"slow {text}"

    @sg.workflow
    async def pipeline(text: str) -> list[object]:
        loud = await fetch(text)
        mailed, billed = await asyncio.gather(mail(loud), bill(loud))
        sg.context().state.set("billed", billed)
        return [mailed, billed, await slow(loud)]

    return pipeline


async def main(db: str, effects: str, blocker: str) -> None:
    store = SqliteCheckpointStore(db)
    try:
        session = build(Path(effects), Path(blocker)).session("f", store=store)
        await session.load()
        if session.head is None:
            result = await session.run("hello")
        else:
            print(f"reopened {session.status.name}", flush=True)
            result = await session.resume()
        print(json.dumps(result.outputs), flush=True)
    finally:
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
