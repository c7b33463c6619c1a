"""Breakpoints: stop a run before or after an executor, look, then go on.

What it shows: `session.run(..., interrupt_before=["publish"])` stops at the
barrier before the superstep in which `publish` would run; the session is
`PAUSED`, saved as its head checkpoint, and a restarted process (a new
session over the same store) sees it paused. `session.resume()` goes on from
there, running `publish` (it does not stop again at the breakpoint it paused
at). `interrupt_after=["draft"]` stops after a superstep in which `draft`
ran. A run or resume takes both lists, as does `respond`.
"""

from __future__ import annotations

import asyncio

import stepgraph as sg


@sg.executor(id="research")
async def research(topic: str, ctx: sg.Context[str]) -> None:
    ctx.state.set("notes", [f"{topic} store heat", f"{topic} last decades"])
    await ctx.send(topic)


@sg.executor(id="draft")
async def draft(topic: str, ctx: sg.Context[str]) -> None:
    notes = ctx.state.get("notes", [])
    ctx.state.set("draft", f"{topic.title()}: " + "; ".join(notes) + ".")
    await ctx.send(topic)


@sg.executor(id="publish")
async def publish(topic: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"published {ctx.state.get('draft')}")


workflow = (
    sg.WorkflowBuilder[str](start=research)
    .add_chain([research, draft, publish])
    .build(name="article")
)


async def main() -> None:
    store = sg.MemoryCheckpointStore()
    session = workflow.session("article-1", store=store)
    result = await session.run("stone walls", interrupt_before=["publish"])
    print(f"status: {result.status.name} after superstep {session.superstep}")
    print(f"draft to review: {session.state['draft']}")
    assert result.outputs == []  # publish has not run

    # Another process (or after a restart): the pause is in the store.
    later = workflow.session("article-1", store=store)
    await later.load()
    print(f"reopened: {later.status.name}, head {later.head == session.head}")
    result = await later.resume(interrupt_before=["publish"])  # runs publish this time
    print("OUTPUT", result.outputs[0])

    # interrupt_after: stop once draft has run; the draft is committed, publish waits.
    other = workflow.session("article-2", store=store)
    result = await other.run("tidal mills", interrupt_after=["draft"])
    print(f"after draft: {result.status.name}, draft = {other.state['draft']!r}")
    result = await other.resume()
    print("OUTPUT", result.outputs[0], "|", result.status.name)

    try:
        other.run("x", interrupt_before=["pubilsh"])
    except ValueError as exc:
        print("refused:", exc)


if __name__ == "__main__":
    asyncio.run(main())
