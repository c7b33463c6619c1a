"""Checkpoints and resume: a run survives its process dying mid-run.

What it shows: a session with `SqliteCheckpointStore` (a temp directory here)
saving a checkpoint when the run starts and after every superstep; a crash
simulated by a child process that dies in the middle of superstep 3 (no
cleanup, nothing closed); then new store, workflow and session objects over
the same file: the session reopens `INTERRUPTED` at its last committed
superstep and `resume()` finishes the run. Committed supersteps never run
again; the interrupted one runs again (at least once), as the journal shows.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import stepgraph as sg
from stepgraph.stores.sqlite import SqliteCheckpointStore

CRASH_AT = int(os.environ.get("CRASH_AT", "0"))  # set in the child process only


class Stage(sg.Executor):
    def __init__(self, id: str, journal: str, last: bool = False) -> None:
        super().__init__(id=id)
        self.journal, self.last = journal, last

    @sg.handler
    async def on_work(self, work: str, ctx: sg.Context[str, str]) -> None:
        await asyncio.to_thread(self.record, ctx.superstep)  # a side effect outside the store
        if ctx.superstep == CRASH_AT:
            os._exit(1)  # die like `kill -9`: no finally blocks, no cancellation saved
        ctx.state.set(self.id, "done")
        if self.last:
            await ctx.yield_output(f"{work} > {self.id}")
        else:
            await ctx.send(f"{work} > {self.id}")

    def record(self, superstep: int) -> None:
        with open(self.journal, "a") as f:
            f.write(f"{superstep} {self.id}\n")


def build(journal: str) -> sg.Workflow[str]:
    names = ["fetch", "clean", "enrich", "load", "report"]
    stages = [Stage(n, journal, last=n == names[-1]) for n in names]
    return sg.WorkflowBuilder[str](start=stages[0]).add_chain(stages).build(name="etl")


async def child(db: str, journal: str) -> None:
    session = build(journal).session("job-1", store=SqliteCheckpointStore(db))
    await session.run("orders.csv")  # never returns: the process dies in superstep 3


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    db, journal = str(tmp / "runs.db"), str(tmp / "journal.txt")
    env = {**os.environ, "CRASH_AT": "3"}
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, db, journal, env=env)
    await proc.wait()
    print(f"child process died (exit code {proc.returncode}) during superstep 3")

    # After the "restart": new objects, same file.
    async with SqliteCheckpointStore(db) as store:
        session = build(journal).session("job-1", store=store)
        await session.load()
        print(f"reopened: status {session.status.name}, superstep {session.superstep},")
        print(f"  state {dict(session.state)}, {len(await session.history())} checkpoints")
        result = await session.resume()
        print("OUTPUT", result.outputs[0])
        print("status:", result.status.name, "state keys:", sorted(session.state))

    runs = Counter((await asyncio.to_thread(Path(journal).read_text)).splitlines())
    for line, n in runs.items():
        print(f"  superstep {line}: ran {n}x")


if __name__ == "__main__":
    if len(sys.argv) == 3:
        asyncio.run(child(sys.argv[1], sys.argv[2]))
    else:
        asyncio.run(main())
