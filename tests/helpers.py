"""Small shared helpers for tests (no fixtures with hidden behaviour)."""

from __future__ import annotations

from typing import Any

import stepgraph as sg


def relay(id: str) -> sg.FunctionExecutor:
    """An executor that forwards any message."""

    async def forward(message: object, ctx: sg.Context[object]) -> None:
        await ctx.send(message)

    return sg.executor(id=id)(forward)


def sink(id: str) -> sg.FunctionExecutor:
    """An executor that outputs any message."""

    async def out(message: object, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(message)

    return sg.executor(id=id)(out)
