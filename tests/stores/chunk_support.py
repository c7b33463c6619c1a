"""A growing-list workflow for the chunk tests of the SQL stores (`test_sql_chunks.py`).

Each superstep appends one ~200-byte item to `state["history"]`, the way a
conversation grows: on a `ChunkStore` its checkpoints store the history as
content-addressed chunks plus what each superstep appended.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import stepgraph as sg
from stepgraph.stores import Checkpoint, CheckpointStore

PAD = "x" * 200


def item(i: int) -> str:
    """The item superstep `i` appends."""
    return f"{i}:{PAD}"


class Grow(sg.Executor):
    """Appends `item(i)` to the history, then sends `i + 1` to itself until `n` items."""

    def __init__(self, n: int) -> None:
        super().__init__(id="grow")
        self.n = n

    @sg.handler
    async def on(self, i: int, ctx: sg.Context[int, int]) -> None:
        h: list[str] = ctx.state.get("history", [])
        ctx.state.set("history", [*h, item(i)])
        if i + 1 < self.n:
            await ctx.send(i + 1)
        else:
            await ctx.yield_output(len(h) + 1)


def workflow(n: int) -> Any:
    grow = Grow(n)
    return sg.WorkflowBuilder(start=grow).add_edge(grow, grow).build(max_supersteps=100000)


async def run_growing(store: CheckpointStore, session: str, n: int) -> Any:
    """Run the workflow for `n` supersteps in `session`; the session."""
    s = workflow(n).session(session, store=store)
    result = await s.run(0)
    assert result.outputs == [n]
    return s


async def check_histories(store: CheckpointStore, session: str) -> list[int]:
    """Load every checkpoint of the session; each holds exactly its own history.

    Returns the history lengths, newest first.
    """
    lengths: list[int] = []
    for info in await store.list(session):
        cp = await store.load(info.id)
        history = cp.state.get("history", [])
        assert history == [item(i) for i in range(len(history))], info
        lengths.append(len(history))
    assert lengths == sorted(lengths, reverse=True)
    assert len(set(lengths)) == len(lengths)  # each checkpoint its own history
    return lengths


async def chunked_checkpoint(session: str, cid: str, n: int = 120) -> Checkpoint:
    """A whole checkpoint of `session` holding `n` history items (made in a memory store).

    Its history is chunked when it is long (the default length is).
    """
    memory = sg.MemoryCheckpointStore()
    await run_growing(memory, "made", n)
    latest = await memory.latest("made")
    assert latest is not None
    info = replace(latest.info, id=cid, session_id=session, parent_id=None)
    return replace(latest.as_full(), info=info)
