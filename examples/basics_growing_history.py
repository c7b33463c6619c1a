"""A growing history: each checkpoint costs what the superstep appended, not the whole list.

What it shows: a loop that appends one message per superstep to a list in
`ctx.state` (with `ctx.state.append`, or the common read-copy-set code, which
is stored the same way), one checkpoint per superstep on the embedded SQLite
store; the bytes on disk per superstep stay flat as the history grows; any
checkpoint, including one in the middle, loads to exactly its own history;
restoring the middle and appending forks a new branch without touching the old.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import stepgraph as sg

MESSAGE = "x" * 200


class Chat(sg.Executor):
    def __init__(self, turns: int) -> None:
        super().__init__(id="chat")
        self.turns = turns

    @sg.handler
    async def on_turn(self, turn: int, ctx: sg.Context[int, int]) -> None:
        if turn % 2:  # the explicit append ...
            ctx.state.append("history", f"{turn}:{MESSAGE}")
        else:  # ... and the common user code: read, build a new list, set it back
            ctx.state.set("history", [*ctx.state.get("history", []), f"{turn}:{MESSAGE}"])
        if turn + 1 < self.turns:
            await ctx.send(turn + 1)
        else:
            await ctx.yield_output(len(ctx.state.get("history")))


def build(turns: int) -> sg.Workflow[int]:
    chat = Chat(turns)
    return sg.WorkflowBuilder(start=chat).add_edge(chat, chat).build(max_supersteps=turns + 1)


def disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for turns in (100, 1000):
            path = Path(tmp) / f"chat-{turns}.sqlite"
            store = sg.SqliteCheckpointStore(path)
            result = await build(turns).session("chat", store=store).run(0)
            await store.aclose()  # closing folds the write-ahead log into the database file
            per_step = path.stat().st_size / turns
            print(f"{turns} supersteps: a history of {result.outputs[0]} messages")
            print(f"  on disk per superstep: {'under 2 KiB' if per_step < 2048 else per_step}")

        store = sg.SqliteCheckpointStore(Path(tmp) / "chat-1000.sqlite")
        infos = await store.list("chat")  # newest first
        middle = next(i for i in infos if i.superstep == 500)
        history = (await store.load(middle.id)).state["history"]
        assert history == [f"{t}:{MESSAGE}" for t in range(500)]
        print(f"the checkpoint of superstep 500 holds {len(history)} messages")

        # Time travel: back to the middle, then on for 3 more turns on a new branch.
        fork = build(503).session("chat", store=store)
        await fork.restore(middle.id)
        result = await fork.resume()
        print(f"the fork ends with {result.outputs[0]} messages")
        old = (await store.load(infos[0].id)).state["history"]
        print(f"the old branch still ends with {len(old)} messages")
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
