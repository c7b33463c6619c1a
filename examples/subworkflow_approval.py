"""A sub-workflow that pauses for approval, answered through the parent session.

What it shows: `sg.SubWorkflow(child, id=...)` running a child workflow inside
the parent session, the child's request surfacing in the parent with the id
`"review/<child request id>"` and executor path `"review/editor"`, live child
events wrapped in `SubWorkflowEvent`, and the child's pause surviving a restart
because its state is part of the parent's checkpoints (SQLite here).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import stepgraph as sg
from stepgraph.stores.sqlite import SqliteCheckpointStore


class Editor(sg.Executor):
    """The child: asks an editor to sign off on a draft."""

    @sg.handler
    async def on_draft(self, draft: str, ctx: sg.Context[None, str]) -> None:
        await ctx.request(draft, response_type=bool)

    @sg.response_handler
    async def on_verdict(self, draft: str, ok: bool, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(draft if ok else f"{draft} (needs work)")


def build() -> sg.Workflow[str]:
    review = sg.SubWorkflow(sg.WorkflowBuilder[str](start=Editor(id="editor")).build(), id="review")

    @sg.executor(id="write")
    async def write(topic: str, ctx: sg.Context[str]) -> None:
        await ctx.send(f"A short note on {topic}")

    @sg.executor(id="publish")
    async def publish(text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"published: {text}")

    return (
        sg.WorkflowBuilder[str](start=write)
        .add_edge(write, review)
        .add_edge(review, publish)
        .build(name="newsroom")
    )


async def main() -> None:
    db = Path(tempfile.mkdtemp()) / "newsroom.db"
    store = SqliteCheckpointStore(db)
    session = build().session("issue-7", store=store)
    async for event in session.run("supersteps"):
        if isinstance(event, sg.SubWorkflowEvent) and isinstance(event.event, sg.RequestIssued):
            print("child asked:", event.event.request.payload)
    (request,) = session.pending_requests
    print(f"pending in the parent: id={request.id} executor={request.executor_id}")
    await store.aclose()

    # A restart: new store, workflow and session objects over the same file.
    store = SqliteCheckpointStore(db)
    session = build().session("issue-7", store=store)
    result = await session.respond({request.id: True})
    for value in result.outputs:
        print("OUTPUT", value)
    print("status:", session.status.name, "checkpoints:", len(await session.history()))
    await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
