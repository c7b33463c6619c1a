"""Workflows served as MCP tools: schemas, runs, requests answered by `respond`, errors.

Each end-to-end test talks with the `mcp` client to a real server process: `stepgraph
serve --mcp=stdio` (and again after a restart, with the same SQLite store), or `serve(...,
mcp="http")` beside the Responses API, on a free port with a bearer key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from stepgraph.hosting import RESPOND_TOOL, workflow_input_schema

from .apps import chat
from .mcp_apps import order
from .support import ROOT, ServerProcess

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

HERE = Path(__file__).parent
APPS = HERE / "apps.py"
MCP_APPS = HERE / "mcp_apps.py"


@contextlib.asynccontextmanager
async def stdio_session(store: Path) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "stepgraph.cli",
            "serve",
            "--mcp=stdio",
            f"{APPS}:chat",
            f"{MCP_APPS}:order",
            "--store",
            f"sqlite:///{store}",
        ],
        env={k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "PATH", "HOME")},
        cwd=str(ROOT),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def status_of(result: Any) -> dict[str, Any]:
    """The last text item: the session id, status and pending requests as JSON."""
    return json.loads(result.content[-1].text)


def texts(result: Any) -> list[str]:
    return [c.text for c in result.content[:-1]]


def test_importing_hosting_does_not_import_mcp() -> None:
    code = "import sys, stepgraph.hosting; assert 'mcp' not in sys.modules, 'mcp imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_input_schemas_follow_the_start_executors_type() -> None:
    text = workflow_input_schema(chat)
    assert text["properties"]["input"] == {"type": "string"}
    assert text["required"] == ["input"]
    assert text["properties"]["session_id"]["type"] == "string"
    flat = workflow_input_schema(order)
    assert flat["type"] == "object"
    assert flat["properties"]["item"] == {"type": "string"}
    assert flat["properties"]["qty"] == {"type": "integer"}
    assert flat["required"] == ["item", "qty"]
    assert "session_id" in flat["properties"]


def test_stdio_tools_runs_requests_errors_and_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"

    async def first() -> str:
        async with stdio_session(store) as mcp:
            tools = {t.name: t for t in (await mcp.list_tools()).tools}
            assert list(tools) == ["chat", "order", RESPOND_TOOL]
            assert tools["chat"].input_schema["properties"]["input"] == {"type": "string"}
            assert tools["order"].input_schema["required"] == ["item", "qty"]

            done = await mcp.call_tool("chat", {"input": "hi"})
            assert not done.is_error
            assert texts(done) == ["turn 1: hi"]
            sid = status_of(done)["session_id"]
            assert status_of(done)["status"] == "idle"
            assert done.structured_content is not None
            assert done.structured_content["outputs"] == ["turn 1: hi"]

            again = await mcp.call_tool("chat", {"input": "there", "session_id": sid})
            assert texts(again) == ["turn 2: there"]  # the same session: its state kept

            made = await mcp.call_tool("order", {"item": "tea", "qty": 2})
            assert not made.is_error
            assert json.loads(texts(made)[0]) == {"item": "tea", "total": 6}

            bad = await mcp.call_tool("order", {"item": "tea", "qty": "many"})
            assert bad.is_error
            assert "qty" in bad.content[0].text
            failed = await mcp.call_tool("order", {"item": "tea", "qty": 0})
            assert failed.is_error
            assert "qty must be positive" in failed.content[0].text
            unknown = await mcp.call_tool(RESPOND_TOOL, {"session_id": "nope", "answers": {"x": 1}})
            assert unknown.is_error
            assert "no session" in unknown.content[0].text

            paused = await mcp.call_tool("chat", {"input": "approve deploy"})
            status = status_of(paused)
            assert texts(paused) == []
            assert status["status"] == "idle_with_pending_requests"
            (request,) = status["pending_requests"]
            assert request["payload"] == {"text": "deploy"}
            assert request["response_schema"]["properties"]["approved"] == {"type": "boolean"}
            wrong = await mcp.call_tool(
                RESPOND_TOOL, {"session_id": status["session_id"], "answers": {"zzz": {}}}
            )
            assert wrong.is_error
            return json.dumps([status["session_id"], request["id"]])

    async def second(sid: str, rid: str) -> None:
        async with stdio_session(store) as mcp:  # a new process: the session is in the store
            answered = await mcp.call_tool(
                RESPOND_TOOL, {"session_id": sid, "answers": {rid: {"approved": True}}}
            )
            assert not answered.is_error, answered.content
            assert texts(answered) == ["deploy: approved"]
            assert status_of(answered)["status"] == "idle"

    sid, rid = json.loads(asyncio.run(first()))
    asyncio.run(second(sid, rid))


def test_http_beside_the_responses_api(tmp_path: Path) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    server = ServerProcess(
        f"{APPS}:chat",
        f"sqlite:///{tmp_path / 'runs.db'}",
        tmp_path / "server.log",
        api_key="k",
        options="mcp='http'",
    ).start()

    async def main() -> None:
        async with httpx2.AsyncClient(timeout=30) as anonymous:
            refused = await anonymous.post(f"{server.base_url}/mcp", json={})
            assert refused.status_code == 401
        headers = {"authorization": "Bearer k"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(f"{server.base_url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as mcp,
        ):
            await mcp.initialize()
            names = [t.name for t in (await mcp.list_tools()).tools]
            assert names == ["chat", RESPOND_TOOL]
            paused = await mcp.call_tool("chat", {"input": "approve ship"})
            status = status_of(paused)
            (request,) = status["pending_requests"]
            answered = await mcp.call_tool(
                RESPOND_TOOL,
                {
                    "session_id": status["session_id"],
                    "answers": {request["id"]: {"approved": False}},
                },
            )
            assert texts(answered) == ["ship: refused"]
            missing = await mcp.call_tool("chat", {})
            assert missing.is_error
            assert "input" in missing.content[0].text
        async with server.client() as api:  # the Responses API still serves
            reply = await api.responses.create(model="chat", input="hello")
            assert reply.output_text == "turn 1: hello"

    try:
        asyncio.run(main())
    finally:
        assert server.stop() == 0
