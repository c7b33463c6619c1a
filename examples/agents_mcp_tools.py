"""An agent using the tools of an MCP server, journaled, resumable and with approval.

What it shows: `MCPTools.stdio(...)` offering the tools of `mcp_server_notes.py` (a
subprocess) to an `Agent` like Python tools; a turn whose model call fails after a tool
call, resumed without calling the tool again (the server counts its calls);
`approval_mode` making `delete_note` wait for a person. Offline: the model is a
`ScriptedChatClient`. Needs the `mcp` extra.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    ApprovalResponse,
    FunctionCall,
    MCPTools,
    ScriptedChatClient,
)
from stepgraph.stores.sqlite import SqliteCheckpointStore

SERVER = Path(__file__).with_name("mcp_server_notes.py")


def build(notes: Path, client: ScriptedChatClient) -> sg.Workflow[str]:
    server = MCPTools.stdio(
        sys.executable,
        [str(SERVER)],
        env={"NOTES_FILE": str(notes)},
        name="notes",
        approval_mode={"delete_note"},  # a person approves deletions
    )
    agent = Agent("secretary", client, instructions="Keep the user's notes.", tools=[server])
    return sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build(name="secretary")


def tool_calls(notes: Path) -> list[str]:
    """The tools the server ran, in order (it logs each call)."""
    return [line.split()[0] for line in Path(f"{notes}.calls").read_text().splitlines()]


async def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    notes = tmp / "notes.json"
    client = ScriptedChatClient(
        [
            FunctionCall("", "add_note", {"title": "meeting", "text": "moved to 3pm"}),
            ConnectionError("the model is overloaded"),  # after the tool call was made
            "Saved your note about the meeting.",
            FunctionCall("", "delete_note", {"title": "meeting"}),
            "Deleted the meeting note.",
        ]
    )
    async with SqliteCheckpointStore(tmp / "runs.db") as store:
        session = build(notes, client).session("desk-1", store=store)
        try:
            await session.run("Note that the meeting moved to 3pm.")
        except sg.ExecutorFailedError as exc:
            print("turn failed:", str(exc).split(" (superstep")[0])
        print("tools offered to the model:", ", ".join(client.requests[0].tools))

        # A new process would do the same: the tool call is in the store's journal.
        session = build(notes, client).session("desk-1", store=store)
        result = await session.resume()
        print("OUTPUT", result.outputs[0].text)
        print(f"add_note ran {tool_calls(notes).count('add_note')}x")
        print("notes on the server:", notes.read_text())

        result = await session.run("Delete the meeting note.")
        (request,) = result.pending_requests
        print("approval needed:", request.payload.call.name, request.payload.call.arguments)
        result = await session.respond({request.id: ApprovalResponse(True)})
        print("OUTPUT", result.outputs[0].text)
        print("notes on the server:", notes.read_text())


if __name__ == "__main__":
    asyncio.run(main())
