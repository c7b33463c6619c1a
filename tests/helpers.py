"""Small shared helpers for tests (no fixtures with hidden behaviour)."""

from __future__ import annotations

from pathlib import Path
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


def store_of(kind: str, tmp_path: Path) -> sg.CheckpointStore:
    """A fresh store of `kind`: "memory", "sqlite" or "file" (under `tmp_path`).

    For "sqlite" and "file", calling it again gives a store over the same place
    (a restart).
    """
    from stepgraph.stores import FileCheckpointStore, MemoryCheckpointStore, SqliteCheckpointStore

    if kind == "memory":
        return MemoryCheckpointStore()
    if kind == "file":
        return FileCheckpointStore(tmp_path / "runs")
    return SqliteCheckpointStore(tmp_path / "runs.db")
