"""Workflows the MCP serving tests serve (importable by path from a server subprocess)."""

from __future__ import annotations

from dataclasses import dataclass

import stepgraph as sg


@dataclass(frozen=True)
class Order:
    item: str
    qty: int


@sg.executor(id="take")
async def take(order: Order, ctx: sg.Context[None, object]) -> None:
    if order.qty <= 0:
        raise ValueError("qty must be positive")
    await ctx.yield_output({"item": order.item, "total": order.qty * 3})


order = sg.WorkflowBuilder[Order](start=take).build(name="order")
