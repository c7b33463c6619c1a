"""Small shared helpers for tests (no fixtures with hidden behaviour)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
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


@contextlib.contextmanager
def killed_after(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """SIGKILL `proc` when the block ends (the block waits for the moment to kill), then
    reap it and close its pipes whatever happened; asserts the kill is what ended it.
    """
    try:
        yield
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == -signal.SIGKILL
