"""Shared state: `ctx.state` and what each executor sees, when.

What it shows: within a superstep a handler reads the state committed at the
previous barrier plus its own writes, never a sibling's; all writes commit at
the barrier, executor by executor in declaration order (the later writer of a
key wins); `delete` and `in`; the state living on in the session between runs
(`session.state`, read-only) and staying apart between sessions.
"""

from __future__ import annotations

import asyncio

import stepgraph as sg


class Counter(sg.Executor):
    @sg.handler
    async def on_tick(self, tick: str, ctx: sg.Context[str]) -> None:
        before = ctx.state.get("count", 0)
        ctx.state.set("count", before + 1)
        ctx.state.set("last_writer", self.id)
        print(f"  counter: count {before} -> {ctx.state.get('count')} (its own write)")
        await ctx.send("counted")


class Observer(sg.Executor):
    @sg.handler
    async def on_tick(self, tick: str, ctx: sg.Context[str]) -> None:
        print(f"  observer, same superstep: count = {ctx.state.get('count', 0)}")
        ctx.state.set("last_writer", self.id)  # declared after counter: this write wins
        if "note" in ctx.state:
            ctx.state.delete("note")
        await ctx.send("observed")


@sg.executor(id="start")
async def start(tick: str, ctx: sg.Context[str]) -> None:
    ctx.state.set("note", f"run of {tick}")
    await ctx.send(tick)


@sg.executor(id="check")
async def check(_: list[str], ctx: sg.Context[None, str]) -> None:
    count, writer = ctx.state.get("count"), ctx.state.get("last_writer")
    await ctx.yield_output(f"after the barrier: count = {count}, last_writer = {writer}")


def build() -> sg.Workflow[str]:
    counter, observer = Counter(id="counter"), Observer(id="observer")
    return (
        sg.WorkflowBuilder[str](start=start)
        .add_fan_out(start, [counter, observer])
        .add_fan_in([counter, observer], check)
        .build(name="state")
    )


async def main() -> None:
    workflow = build()
    session = workflow.session("alice")
    for tick in ("first", "second"):
        print(f"run {tick!r}:")
        result = await session.run(tick)
        print("OUTPUT", result.outputs[0])
    print("alice's state between runs:", dict(session.state))
    print("run 'first' in another session:")
    other = workflow.session("bob")
    await other.run("first")
    print("bob's count:", other.state["count"], "(sessions never share state)")


if __name__ == "__main__":
    asyncio.run(main())
