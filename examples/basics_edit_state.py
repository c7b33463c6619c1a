"""Editing state from outside a run: `update_state`, forks, and `StateUpdated` events.

What it shows: `session.update_state({...})` writes state keys as a new
head checkpoint (here while the run is paused at a breakpoint, so the
resumed run sees the edit); `sg.DELETE` deletes a key;
`update_state(..., checkpoint=old)` writes on top of an older checkpoint,
starting a branch while the old one stays as it was; `state_updates=True`
streams a `StateUpdated` event with what each superstep wrote. Ids and times
come from `SequentialIds`/`ManualClock` so the output is the same every time.
"""

from __future__ import annotations

import asyncio

import stepgraph as sg
from stepgraph.testing import ManualClock, SequentialIds


@sg.executor(id="quote")
async def quote(items: int, ctx: sg.Context[int]) -> None:
    ctx.state.set("items", items)
    ctx.state.set("price", items * 10)
    await ctx.send(items)


@sg.executor(id="discount")
async def discount(items: int, ctx: sg.Context[int]) -> None:
    off = ctx.state.get("discount", 0)
    ctx.state.set("price", ctx.state.get("price") * (100 - off) // 100)
    ctx.state.delete("discount")  # used once
    await ctx.send(items)


@sg.executor(id="invoice")
async def invoice(items: int, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"{items} items: {ctx.state.get('price')} EUR")


workflow = (
    sg.WorkflowBuilder[int](start=quote).add_chain([quote, discount, invoice]).build(name="order")
)


async def main() -> None:
    session = workflow.session(
        "order-7", store=sg.MemoryCheckpointStore(), clock=ManualClock(), ids=SequentialIds("cp")
    )
    # Pause before the discount, grant 20% by hand, go on; watch what each superstep writes.
    await session.run(3, interrupt_before=["discount"])
    edit = await session.update_state({"discount": 20, "note": "loyal customer"})
    print(f"edited: {dict(session.state)} in {edit}, status {session.status.name}")
    async for event in session.resume(state_updates=True):
        if isinstance(event, sg.StateUpdated):
            print(f"  superstep {event.superstep} wrote {dict(event.values)}")
        elif isinstance(event, sg.Output):
            print("OUTPUT", event.value)
    await session.update_state({"note": sg.DELETE})
    print(f"state now: {dict(session.state)}")

    # A fork: the same order with 50% off, from the checkpoint `quote` saved (the oldest
    # one of superstep 1: the pause and the edit came after it).
    after_quote = [i for i in await session.history() if i.superstep == 1][-1]
    fork = await session.update_state({"discount": 50}, checkpoint=after_quote)
    print(f"fork {fork} has parent {after_quote.id}")
    print("OUTPUT", (await session.resume()).outputs[0])
    old = await session.checkpoint(after_quote)
    print(f"the old branch is unchanged: {dict(old.state)}")


if __name__ == "__main__":
    asyncio.run(main())
