"""A growing-list workflow for chunk tests: each superstep appends one item to `history`."""

from __future__ import annotations

import stepgraph as sg

ITEM = "x" * 200


def item(i: int, size: int = len(ITEM)) -> str:
    """The item superstep `i` appends."""
    return f"{i}:" + "x" * size


class Grow(sg.Executor):
    """Appends `item(i)` to `history`, then sends `i + 1` until `n` items are held."""

    def __init__(self, n: int, size: int = len(ITEM)) -> None:
        super().__init__(id="grow")
        self.n = n
        self.size = size

    @sg.handler
    async def on(self, i: int, ctx: sg.Context[int, int]) -> None:
        h: list[str] = ctx.state.get("history", [])
        ctx.state.set("history", [*h, item(i, self.size)])
        if i + 1 < self.n:
            await ctx.send(i + 1)
        else:
            await ctx.yield_output(len(h) + 1)


def workflow(n: int, size: int = len(ITEM)) -> sg.Workflow[int, int]:
    """A workflow that grows `history` to `n` items of `size` bytes (plus a prefix)."""
    g = Grow(n, size)
    return sg.WorkflowBuilder(start=g).add_edge(g, g).build(max_supersteps=100_000)


def expected(length: int, size: int = len(ITEM)) -> list[str]:
    """The history a checkpoint holding `length` items must load to."""
    return [item(i, size) for i in range(length)]
