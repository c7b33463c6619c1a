"""Executors and edges: the smallest building blocks.

What it shows: an executor written as a class (`sg.Executor` + `@sg.handler`),
one written as an async function (`@sg.executor`), one written as a plain sync
function that runs in a worker thread and gets a `sg.SyncContext` (its methods
are plain calls), `add_edge` and `add_chain`, the handler chosen by the
message's type (`str` vs `int`), and `Workflow.to_mermaid()`.
"""

from __future__ import annotations

import asyncio

import stepgraph as sg


class Parse(sg.Executor):
    """A class executor: `Context[int | str]` says it may send ints or strings."""

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[int | str]) -> None:
        for word in text.split():
            await ctx.send(int(word) if word.isdigit() else word)


class Describe(sg.Executor):
    """Two handlers: the message's type picks one."""

    @sg.handler
    async def on_number(self, n: int, ctx: sg.Context[str]) -> None:
        await ctx.send(f"number {n}")

    @sg.handler
    async def on_word(self, word: str, ctx: sg.Context[str]) -> None:
        await ctx.send(f"word {word!r}")


@sg.executor(id="stamp")
async def stamp(line: str, ctx: sg.Context[str]) -> None:
    """An async function executor."""
    await ctx.send(f"[step {ctx.superstep}] {line}")


@sg.executor(id="shout")
def shout(line: str, ctx: sg.SyncContext[None, str]) -> None:
    """A sync function executor: runs in a worker thread, so it may block."""
    ctx.yield_output(line.upper())


def build() -> sg.Workflow[str]:
    parse, describe = Parse(id="parse"), Describe(id="describe")
    return (
        sg.WorkflowBuilder[str](start=parse)
        .add_edge(parse, describe)  # by object ...
        .add_chain(["describe", stamp, shout])  # ... or by id, once the object is known
        .build(name="edges")
    )


async def main() -> None:
    workflow = build()
    print(workflow.to_mermaid())
    result = await workflow.run("apples 3 pears 12")
    for value in result.outputs:
        print("OUTPUT", value)
    print("status:", result.status.name)


if __name__ == "__main__":
    asyncio.run(main())
