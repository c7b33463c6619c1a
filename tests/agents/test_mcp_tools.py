"""MCP tools: an MCP server's tools offered to an Agent, journaled, approved, failing clearly.

Each test talks to a real server process (examples/mcp_server_notes.py), over stdio or
Streamable HTTP; the server logs every tool call with its pid to `<notes>.calls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    ApprovalRequest,
    ApprovalResponse,
    FunctionCall,
    FunctionResult,
    MCPServerError,
    MCPTools,
    Reply,
    ScriptedChatClient,
)
from stepgraph.stores import MemoryCheckpointStore

pytest.importorskip("mcp")

SERVER = Path(__file__).parent.parent.parent / "examples" / "mcp_server_notes.py"


def stdio_server(notes: Path, **kwargs: object) -> MCPTools:
    return MCPTools.stdio(
        sys.executable, [str(SERVER)], env={"NOTES_FILE": str(notes)}, name="notes", **kwargs
    )  # type: ignore[arg-type]


def calls(notes: Path) -> list[tuple[str, int]]:
    log = Path(f"{notes}.calls")
    if not log.exists():
        return []
    return [(n, int(p)) for n, p in (line.split() for line in log.read_text().splitlines())]


def agent_workflow(
    server: MCPTools, script: list[Reply]
) -> tuple[sg.Workflow[str], ScriptedChatClient]:
    client = ScriptedChatClient(script)
    agent = Agent("clerk", client, tools=[server])
    return sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build(name="clerk"), client


def test_importing_agents_does_not_import_mcp() -> None:
    code = "import sys, stepgraph.agents; assert 'mcp' not in sys.modules, 'mcp imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_servers_tools_are_offered_and_called(tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    wf, client = agent_workflow(
        stdio_server(notes),
        [FunctionCall("", "add_note", {"title": "a", "text": "x"}), "Saved."],
    )
    result = asyncio.run(wf.run("note a"))
    assert result.outputs[0].text == "Saved."
    first = client.requests[0]
    assert first.tools == ("add_note", "list_notes", "read_note", "delete_note")
    (tool_message,) = [m for m in result.outputs[0].messages if m.role == "tool"]
    assert tool_message.contents[0] == FunctionResult("call_1_0", "saved 'a' (1 notes)")
    assert [n for n, _ in calls(notes)] == ["add_note"]


def test_schemas_and_descriptions_come_from_the_server(tmp_path: Path) -> None:
    from stepgraph.agents import ToolSpec

    seen: list[ToolSpec] = []

    def script(messages: object, tools: list[ToolSpec]) -> Reply:
        seen.extend(tools)
        return "ok"

    client = ScriptedChatClient(script)  # type: ignore[arg-type]
    agent = Agent("clerk", client, tools=[stdio_server(tmp_path / "n.json")])
    asyncio.run(agent.run("hi"))
    add = next(t for t in seen if t.name == "add_note")
    assert add.description.startswith("Save a note under a title")
    assert add.parameters["required"] == ["title", "text"]
    assert add.parameters["properties"]["title"]["type"] == "string"


def test_a_tool_error_is_a_result_the_model_sees(tmp_path: Path) -> None:
    wf, _ = agent_workflow(
        stdio_server(tmp_path / "n.json"), [FunctionCall("", "read_note", {"title": "zz"}), "None."]
    )
    result = asyncio.run(wf.run("read zz"))
    (tool_message,) = [m for m in result.outputs[0].messages if m.role == "tool"]
    error = tool_message.contents[0].error
    assert error is not None
    assert "read_note" in error
    assert "'notes'" in error
    assert "no note titled 'zz'" in error


def test_approval_mode_pauses_named_tools_and_a_rejection_runs_nothing(tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    wf, _ = agent_workflow(
        stdio_server(notes, approval_mode={"delete_note"}),
        [
            FunctionCall("", "delete_note", {"title": "a"}),
            "Not deleted.",
            FunctionCall("", "delete_note", {"title": "a"}),
            "Deleted.",
        ],
    )

    async def main() -> None:
        session = wf.session("s", store=MemoryCheckpointStore())
        result = await session.run("delete a")
        (request,) = result.pending_requests
        assert isinstance(request.payload, ApprovalRequest)
        assert request.payload.call.name == "delete_note"
        result = await session.respond({request.id: ApprovalResponse(False, "no")})
        assert result.outputs[0].text == "Not deleted."
        assert calls(notes) == []  # the rejected call never reached the server
        result = await session.run("delete a, really")
        (request,) = result.pending_requests
        result = await session.respond({request.id: ApprovalResponse(True)})
        assert result.outputs[0].text == "Deleted."
        assert [n for n, _ in calls(notes)] == ["delete_note"]

    asyncio.run(main())


def test_approval_mode_always_and_never() -> None:
    assert stdio_server(Path("x"), approval_mode="always").approval_required("list_notes")
    assert not stdio_server(Path("x")).approval_required("delete_note")
    with pytest.raises(ValueError, match="approval_mode"):
        stdio_server(Path("x"), approval_mode="sometimes")


def test_a_resumed_turn_does_not_call_the_mcp_tool_again(tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    wf, _ = agent_workflow(
        stdio_server(notes),
        [
            FunctionCall("", "add_note", {"title": "a", "text": "x"}),
            ConnectionError("429 Too Many Requests"),
            "Saved.",
        ],
    )

    async def main() -> None:
        session = wf.session("s", store=MemoryCheckpointStore())
        with pytest.raises(sg.ExecutorFailedError, match="429"):
            await session.run("note a")
        assert [n for n, _ in calls(notes)] == ["add_note"]
        result = await session.resume()
        assert result.outputs[0].text == "Saved."
        assert [n for n, _ in calls(notes)] == ["add_note"]  # the tool ran once

    asyncio.run(main())


def test_each_run_has_its_own_connection_closed_when_it_ends(tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    script: list[Reply] = []
    for session_id in ("s1", "s2"):
        script += [FunctionCall("", "list_notes", {}), f"done {session_id}"]
    wf, _ = agent_workflow(stdio_server(notes), script)

    async def main() -> None:
        for session_id in ("s1", "s2"):
            await wf.session(session_id).run("list")

    asyncio.run(main())
    (_, pid1), (_, pid2) = calls(notes)
    assert pid1 != pid2  # two sessions, two server processes
    for pid in (pid1, pid2):  # both closed (and reaped) with their runs
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_server_that_cannot_start_fails_the_run_naming_it(tmp_path: Path) -> None:
    server = MCPTools.stdio(str(tmp_path / "no-such-server"), name="ghost")
    wf, _ = agent_workflow(server, [FunctionCall("", "add_note", {}), "never"])
    with pytest.raises(sg.ExecutorFailedError) as info:
        asyncio.run(wf.run("hi"))
    assert isinstance(info.value.__cause__, MCPServerError)
    assert "cannot connect to MCP server 'ghost'" in str(info.value)


def test_a_server_killed_mid_call_fails_clearly_and_resume_calls_again(tmp_path: Path) -> None:
    notes = tmp_path / "notes.json"
    block = Path(f"{notes}.block")
    block.write_text("")
    wf, _ = agent_workflow(
        stdio_server(notes), [FunctionCall("", "add_note", {"title": "a", "text": "x"}), "Saved."]
    )

    async def main() -> None:
        session = wf.session("s", store=MemoryCheckpointStore())

        async def kill_when_blocked() -> None:
            while not block.read_text():  # the server writes its pid when the call blocks
                await asyncio.sleep(0.02)
            pid = int(block.read_text())
            block.unlink()  # the restarted server will not block
            os.kill(pid, signal.SIGKILL)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(kill_when_blocked())
            with pytest.raises(sg.ExecutorFailedError) as info:
                await session.run("note a")
        cause = info.value.__cause__
        assert isinstance(cause, MCPServerError)
        assert (cause.server, cause.tool) == ("notes", "add_note")
        assert "MCP server 'notes' failed during a call to its tool 'add_note'" in str(info.value)
        assert calls(notes) == []  # the call never finished
        result = await session.resume()  # a new connection starts the server again
        assert result.outputs[0].text == "Saved."
        assert [n for n, _ in calls(notes)] == ["add_note"]

    asyncio.run(main())


@pytest.fixture
def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http_server(notes: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTES_FILE": str(notes)}
    log = Path(f"{notes}.log")
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), "http", str(port)], env=env, stderr=err
        )
    # Ready when it accepts connections (or dead: fail at once).
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"MCP server exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)  # wakes at once if the server dies


def test_http_server_killed_mid_call_then_restarted(tmp_path: Path, port: int) -> None:
    notes = tmp_path / "notes.json"
    block = Path(f"{notes}.block")
    block.write_text("")
    server = MCPTools.http(f"http://127.0.0.1:{port}/mcp", headers={"X-Test": "1"}, name="web")
    wf, client = agent_workflow(
        server, [FunctionCall("", "add_note", {"title": "a", "text": "x"}), "Saved."]
    )
    proc = start_http_server(notes, port)
    try:

        async def run_until_killed(session: sg.Session[str]) -> None:
            async def kill_when_blocked() -> None:
                while not block.read_text():
                    await asyncio.sleep(0.02)
                block.unlink()
                proc.kill()

            async with asyncio.TaskGroup() as tg:
                tg.create_task(kill_when_blocked())
                with pytest.raises(sg.ExecutorFailedError) as info:
                    await session.run("note a")
            assert isinstance(info.value.__cause__, MCPServerError)
            assert "'web'" in str(info.value)
            assert "'add_note'" in str(info.value)

        session = wf.session("s", store=MemoryCheckpointStore())
        asyncio.run(run_until_killed(session))
        proc.wait()
        with pytest.raises(sg.ExecutorFailedError, match="cannot connect to MCP server 'web'"):
            asyncio.run(session.resume())  # still down
        proc = start_http_server(notes, port)
        result = asyncio.run(session.resume())
        assert result.outputs[0].text == "Saved."
        assert [n for n, _ in calls(notes)] == ["add_note"]
        assert client.requests[0].tools[0] == "add_note"
    finally:
        proc.kill()
        proc.wait()
