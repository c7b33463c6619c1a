"""Streaming: iterate a run to see its events as they happen.

What it shows: `async for event in workflow.stream(input)` (the same `Run`
object can be awaited instead), the built-in events (`RunStarted`,
`SuperstepStarted`, `ExecutorInvoked`, `Output`, `SuperstepCompleted`,
`RunCompleted`, ...), a user event (a frozen dataclass subclassing
`sg.Event`, sent with `ctx.emit`) arriving while its handler is still
working, and `match` on event classes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import stepgraph as sg


@dataclass(frozen=True)
class Progress(sg.Event):
    """A user event: any frozen dataclass that subclasses `sg.Event`."""

    done: int
    total: int


class Download(sg.Executor):
    @sg.handler
    async def on_files(self, files: list[str], ctx: sg.Context[int]) -> None:
        for i, _name in enumerate(files, start=1):
            await asyncio.sleep(0.02)  # stands in for real work
            await ctx.emit(Progress(i, len(files)))  # reaches the consumer at once
        await ctx.send(len(files))


@sg.executor(id="report")
async def report(count: int, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"downloaded {count} files")


def build() -> sg.Workflow[list[str]]:
    download = Download(id="download")
    return (
        sg.WorkflowBuilder[list[str]](start=download)
        .add_edge(download, report)
        .build(name="streaming")
    )


async def main() -> None:
    t0 = time.perf_counter()
    async for event in build().stream(["a.csv", "b.csv", "c.csv"]):
        ms = f"{(time.perf_counter() - t0) * 1000:6.1f} ms"
        match event:
            case sg.RunStarted(session_id=sid):
                print(ms, "run started, session", sid[:8])
            case sg.SuperstepStarted(superstep=k):
                print(ms, "superstep", k)
            case sg.ExecutorInvoked(executor_id=eid):
                print(ms, "  invoked", eid)
            case Progress(done=done, total=total):
                print(ms, f"  progress {done}/{total}")
            case sg.Output(value=value):
                print(ms, "OUTPUT", value)
            case sg.RunCompleted(status=status):
                print(ms, "run completed:", status.name)
            case _:
                print(ms, "  " + type(event).__name__)


if __name__ == "__main__":
    asyncio.run(main())
