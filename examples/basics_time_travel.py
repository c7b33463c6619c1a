"""Time travel: list a session's checkpoints, go back, and branch.

What it shows: `session.history()` (every checkpoint, all branches, newest
first), `session.restore(cp)` (move the head to an old checkpoint without
running; the next run branches from there), `session.resume(cp)` (restore a
checkpoint taken mid-run and continue that run from there, on a new branch),
and the resulting tree drawn from `CheckpointInfo.parent_id`. Ids and times
come from `SequentialIds`/`ManualClock` so the output is the same every time.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import stepgraph as sg
from stepgraph.testing import ManualClock, SequentialIds


@sg.executor(id="draft")
async def draft(line: str, ctx: sg.Context[str]) -> None:
    await ctx.send(line.strip().capitalize())


@sg.executor(id="tell")
async def tell(line: str, ctx: sg.Context[None, str]) -> None:
    story = (*ctx.state.get("story", ()), line)
    ctx.state.set("story", story)
    await ctx.yield_output(". ".join(story) + ".")


async def draw(session: sg.Session[str]) -> None:
    history = list(reversed(await session.history()))  # oldest first
    children: dict[str | None, list[sg.CheckpointInfo]] = defaultdict(list)
    for info in history:
        children[info.parent_id].append(info)

    async def show(info: sg.CheckpointInfo, depth: int) -> None:
        story = (await session.checkpoint(info)).state.get("story", ())
        head = "  <- head" if info.id == session.head else ""
        last = story[-1] if story else "-"
        print(f"{'   ' * depth}{info.id} step {info.superstep:<2} {last}{head}")
        kids = children[info.id]
        for branch in kids[1:]:  # a checkpoint with several children is a fork
            await show(branch, depth + 1)
        if kids:
            await show(kids[0], depth)

    for root in children[None]:
        await show(root, 0)


async def main() -> None:
    workflow = sg.WorkflowBuilder[str](start=draft).add_edge(draft, tell).build(name="story")
    store = sg.MemoryCheckpointStore()
    session = workflow.session("tale", store=store, clock=ManualClock(), ids=SequentialIds("cp"))
    results = [await session.run(line) for line in ("once upon", "a dragon came", "he fled")]
    print("story:", results[-1].outputs[0])
    history = await session.history()  # newest first
    print(f"{len(history)} checkpoints; newest {history[0].id}, parent {history[0].parent_id}")

    # Branch 1: go back to the end of run 2 and take another path.
    end_of_run_2 = results[1].checkpoint_id  # the last checkpoint that run saved
    assert end_of_run_2 is not None
    await session.restore(end_of_run_2)
    result = await session.run("he fought back")
    print("OUTPUT branch:", result.outputs[0])

    # Branch 2: resume run 3 from its mid-run checkpoint (after `draft`).
    mid_run_3 = next(i for i in history if i.superstep == 5)
    result = await session.resume(mid_run_3)
    print("OUTPUT resumed:", result.outputs[0])

    print("checkpoint tree (indented lines are branches):")
    await draw(session)


if __name__ == "__main__":
    asyncio.run(main())
