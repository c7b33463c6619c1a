"""A small MCP server over stdio: notes kept in a JSON file (used by agents_mcp_tools.py).

Run it as a subprocess speaking MCP on stdin/stdout (`MCPTools.stdio(sys.executable,
["examples/mcp_server_notes.py"], env={"NOTES_FILE": ...})`). Each tool call is also
appended to `$NOTES_FILE.calls` (with the server's pid), so a client can count how
often a tool really ran.
Testing knob: while `$NOTES_FILE.block` exists, `add_note` writes the server's pid to
that file and then waits forever (a call in flight when the server is killed).
Run directly with nothing on stdin, it exits at once; `mcp_server_notes.py http PORT`
serves Streamable HTTP at `http://127.0.0.1:PORT/mcp` instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

NOTES = Path(os.environ.get("NOTES_FILE", "notes.json"))
server = MCPServer("notes", log_level="WARNING")


def _load() -> dict[str, str]:
    return json.loads(NOTES.read_text()) if NOTES.exists() else {}


def _save(notes: dict[str, str]) -> None:
    NOTES.write_text(json.dumps(notes, indent=1))


def _called(name: str) -> None:
    with Path(f"{NOTES}.calls").open("a") as log:
        log.write(f"{name} {os.getpid()}\n")


def _blocking() -> bool:
    block = Path(f"{NOTES}.block")
    if not block.exists():
        return False
    block.write_text(str(os.getpid()))
    return True


@server.tool()
async def add_note(title: str, text: str) -> str:
    """Save a note under a title (replacing one with the same title).

    Args:
        title: a short title, like "meeting".
        text: the note itself.
    """
    if _blocking():
        await asyncio.Event().wait()  # until the process is killed
    _called("add_note")
    notes = _load()
    notes[title] = text
    _save(notes)
    return f"saved {title!r} ({len(notes)} notes)"


@server.tool()
def list_notes() -> list[str]:
    """The titles of all notes."""
    _called("list_notes")
    return sorted(_load())


@server.tool()
def read_note(title: str) -> str:
    """The text of the note with this title."""
    _called("read_note")
    notes = _load()
    if title not in notes:
        raise ToolError(f"no note titled {title!r}")  # the model sees this text
    return notes[title]


@server.tool()
def delete_note(title: str) -> str:
    """Delete a note (the agent asks a person first)."""
    _called("delete_note")
    notes = _load()
    notes.pop(title, None)
    _save(notes)
    return f"deleted {title!r}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:  # `mcp_server_notes.py http PORT`: Streamable HTTP at /mcp
        server.run("streamable-http", port=int(sys.argv[2]))
    else:
        server.run("stdio")
