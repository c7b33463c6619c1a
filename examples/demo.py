"""stepgraph demo: a small offline research workflow that streams its events live.

What it shows: typed executors, a fan-out to three "researchers" that work
concurrently in one superstep, a fan-in that joins their notes in source
order, shared state, a conditional review loop, and live streaming of events
and outputs. No network, no API key.

Run it with `make demo` (or `python examples/demo.py`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import stepgraph as sg


@dataclass(frozen=True)
class Note:
    """What a researcher found."""

    author: str
    text: str


@dataclass(frozen=True)
class Draft:
    """A draft report and how many times it was revised."""

    text: str
    revision: int


@dataclass(frozen=True)
class Progress(sg.Event):
    """A user event: streamed to the consumer as soon as it is emitted."""

    who: str
    message: str


class Planner(sg.Executor):
    @sg.handler
    async def on_topic(self, topic: str, ctx: sg.Context[str]) -> None:
        ctx.state.set("topic", topic)
        await ctx.emit(Progress(self.id, f"splitting {topic!r} into three angles"))
        await ctx.send(topic)


class Researcher(sg.Executor):
    def __init__(self, id: str, angle: str, seconds: float) -> None:
        super().__init__(id=id)
        self.angle = angle
        self.seconds = seconds

    @sg.handler
    async def on_topic(self, topic: str, ctx: sg.Context[Note]) -> None:
        await ctx.emit(Progress(self.id, f"researching the {self.angle} of {topic}"))
        await asyncio.sleep(self.seconds)  # stands in for a model or tool call
        await ctx.send(Note(self.id, f"{self.angle}: {topic} looks promising"))


class Writer(sg.Executor):
    @sg.handler
    async def on_notes(self, notes: list[Note], ctx: sg.Context[Draft]) -> None:
        body = "; ".join(n.text for n in notes)
        await ctx.send(Draft(f"Report on {ctx.state.get('topic')}: {body}", revision=1))

    @sg.handler
    async def on_feedback(self, draft: Draft, ctx: sg.Context[Draft]) -> None:
        await ctx.send(Draft(draft.text + " (tightened)", revision=draft.revision + 1))


class Reviewer(sg.Executor):
    @sg.handler
    async def on_draft(self, draft: Draft, ctx: sg.Context[Draft, str]) -> None:
        if draft.revision < 2:
            await ctx.emit(Progress(self.id, f"revision {draft.revision}: asking for changes"))
            await ctx.send(draft)
        else:
            await ctx.yield_output(draft.text)


def build() -> sg.Workflow[str]:
    planner = Planner(id="planner")
    researchers = [
        Researcher("market", "market", 0.05),
        Researcher("tech", "technology", 0.03),
        Researcher("risks", "risks", 0.04),
    ]
    writer, reviewer = Writer(id="writer"), Reviewer(id="reviewer")
    return (
        sg.WorkflowBuilder[str](start=planner)
        .add_fan_out(planner, researchers)
        .add_fan_in(researchers, writer)
        .add_edge(writer, reviewer)
        .add_edge(reviewer, writer)
        .build(name="research")
    )


async def main() -> None:
    workflow = build()
    print(f"workflow {workflow.name!r}, signature {workflow.signature[:12]}\n")
    print(workflow.to_mermaid())
    t0 = time.perf_counter()
    async for event in workflow.stream("solid-state batteries"):
        ms = (time.perf_counter() - t0) * 1000
        match event:
            case sg.SuperstepStarted(superstep=k):
                print(f"{ms:7.1f} ms  superstep {k}")
            case sg.ExecutorInvoked(executor_id=eid):
                print(f"{ms:7.1f} ms    {eid} started")
            case Progress(who=who, message=msg):
                print(f"{ms:7.1f} ms    {who}: {msg}")
            case sg.Output(value=value):
                print(f"{ms:7.1f} ms  OUTPUT {value}")
            case sg.RunCompleted(status=status):
                print(f"{ms:7.1f} ms  run completed: {status.name}")
            case _:
                pass


if __name__ == "__main__":
    asyncio.run(main())
