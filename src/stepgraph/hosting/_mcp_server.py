"""`mcp_server`: served workflows as the tools of an MCP server (needs the `mcp` package).

Each workflow is one tool, named by its model name; its input schema comes from
the start executor's input type. A call runs the workflow in a new session (or
continues the session named by its `session_id` argument) and returns the
outputs as text content, then one text item of JSON with the session id, the
status and the pending requests. The same data is the call's structured
content. A run that pauses for answers is continued by the `respond` tool
(session id, answers keyed by request id).

Sessions live in the store given (`stepgraph serve`: its `--store`), so a
durable store keeps them across restarts; `respond` finds a session's workflow
by the graph signature of its latest checkpoint. MCP sessions are plain
sessions with ids of their own (`mcp_...`), not Responses conversations.

Errors (bad input, an unknown session or request id, a failed run, a session
that is busy) are tool results with `isError` set, never a crash of the server.

`mcp` is imported only by the functions here that need it, so importing
`stepgraph.hosting` never imports it.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import stepgraph as sg
from stepgraph.agents import json_schema

from ._events import request_json
from ._models import model_names
from ._plain import output_text, to_jsonable

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel import Server
    from mcp_types import (
        CallToolRequestParams,
        CallToolResult,
        ListToolsResult,
        PaginatedRequestParams,
        Tool,
    )
    from starlette.applications import Starlette

__all__ = [
    "RESPOND_TOOL",
    "McpTransport",
    "mcp_server",
    "mount_mcp",
    "serve_mcp_stdio",
    "workflow_input_schema",
]

McpTransport = Literal["http", "stdio"]
"""How `serve` offers MCP: Streamable HTTP at `/mcp` beside the API, or stdio alone."""

RESPOND_TOOL = "respond"
"""The name of the tool answering pending requests of a paused session."""

_SESSION_ID: dict[str, Any] = {
    "type": "string",
    "description": "continue this session (from an earlier result); default: a new one",
}


class _ToolError(Exception):
    """A call that cannot be served: its text becomes an `isError` tool result."""


def _missing_mcp(exc: ImportError) -> ImportError:
    return ImportError(
        f"serving workflows as MCP tools needs the mcp package: pip install 'stepgraph[mcp]' "
        f"({exc})"
    )


def _spec_schema(spec: Any) -> dict[str, Any]:
    """A JSON schema for one accepted type (a `TypeSpec` of the start executor)."""
    if spec.literals is not None:
        return {"enum": [to_jsonable(v) for v in spec.literals]}
    origin: type = spec.origin
    if origin is object:
        return {}
    if spec.args is not None and issubclass(origin, list | tuple | set | frozenset):
        items = [_spec_schema(s) for s in spec.args[0]] if spec.args else []
        if not items or {} in items:
            return {"type": "array"}
        return {"type": "array", "items": items[0] if len(items) == 1 else {"anyOf": items}}
    return json_schema(origin)


def _input_schema(workflow: sg.Workflow[Any]) -> tuple[dict[str, Any], bool]:
    """The tool's input schema and whether it is flat (the input type's own object
    schema plus `session_id`) rather than wrapped (an `input` property).
    """
    blueprint = workflow.blueprint
    specs = blueprint.plan.tables[blueprint.start].accepts
    parts = [_spec_schema(s) for s in specs]
    defs: dict[str, Any] = {}
    for part in parts:
        defs.update(part.pop("$defs", {}))
    if len(parts) == 1 and parts[0].get("type") == "object" and "properties" in parts[0]:
        props = cast(dict[str, Any], parts[0]["properties"])
        if "session_id" not in props:
            schema = {**parts[0], "properties": {**props, "session_id": _SESSION_ID}}
            return ({**schema, "$defs": defs} if defs else schema), True
    value: dict[str, Any] = {} if {} in parts or not parts else parts[0]
    if len(parts) > 1 and {} not in parts:
        value = {"anyOf": parts}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"input": value, "session_id": _SESSION_ID},
        "required": ["input"],
    }
    return ({**schema, "$defs": defs} if defs else schema), False


def workflow_input_schema(workflow: sg.Workflow[Any]) -> dict[str, Any]:
    """The MCP input schema of a workflow's tool, from its start executor's input type.

    A dataclass or pydantic model is its own object schema with an optional
    `session_id` added; anything else (`str`, numbers, lists, unions) is the
    property `input` of an object, beside the optional `session_id`.
    """
    return _input_schema(workflow)[0]


def _response_schema(request: sg.Request) -> dict[str, Any]:
    try:
        return json_schema(request.response_type)
    except Exception:
        return {}


def _status_json(result: sg.RunResult) -> dict[str, Any]:
    pending = [
        {**request_json(r), "response_schema": _response_schema(r)} for r in result.pending_requests
    ]
    return {
        "session_id": result.session_id,
        "status": result.status.value,
        "pending_requests": pending,
    }


def _tool_result(result: sg.RunResult) -> CallToolResult:
    from mcp_types import CallToolResult, TextContent

    status = _status_json(result)
    content = [TextContent(type="text", text=output_text(o)) for o in result.outputs]
    content.append(TextContent(type="text", text=json.dumps(status, ensure_ascii=False)))
    structured = {**status, "outputs": [to_jsonable(o) for o in result.outputs]}
    return CallToolResult(content=list(content), structured_content=structured)


def _error_result(message: str) -> CallToolResult:
    from mcp_types import CallToolResult, TextContent

    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def _optional_str(arguments: Mapping[str, Any], name: str) -> str | None:
    value = arguments.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise _ToolError(f"{name} must be a non-empty string")
    return value


class _Tools:
    """The tools of one MCP server: its workflows, their store and schemas."""

    def __init__(
        self, workflows: Mapping[str, sg.Workflow[Any]], store: sg.CheckpointStore
    ) -> None:
        if RESPOND_TOOL in workflows:
            raise ValueError(f"a workflow served as MCP cannot be named {RESPOND_TOOL!r}")
        self.workflows = dict(workflows)
        self.store = store
        self.schemas = {name: _input_schema(wf) for name, wf in self.workflows.items()}

    def tools(self) -> list[Tool]:
        from mcp_types import Tool

        tools = [
            Tool(
                name=name,
                description=(
                    f"Run the workflow {wf.name or name!r}: returns its outputs, its session id "
                    f"and status. When it asks for input (status idle_with_pending_requests) "
                    f"answer with the {RESPOND_TOOL!r} tool; pass session_id to continue a "
                    f"session with new input."
                ),
                input_schema=self.schemas[name][0],
            )
            for name, wf in self.workflows.items()
        ]
        answers = {
            "type": "object",
            "description": "answers keyed by request id, each matching its response_schema",
            "additionalProperties": True,
            "minProperties": 1,
        }
        respond_schema = {
            "type": "object",
            "properties": {"session_id": {"type": "string"}, "answers": answers},
            "required": ["session_id", "answers"],
        }
        tools.append(
            Tool(
                name=RESPOND_TOOL,
                description="Answer pending requests of a paused workflow session and "
                "continue it; returns like the workflow's tool.",
                input_schema=respond_schema,
            )
        )
        return tools

    async def call(self, name: str, arguments: Mapping[str, Any]) -> CallToolResult:
        try:
            if name == RESPOND_TOOL:
                return _tool_result(await self._respond(arguments))
            if name not in self.workflows:
                raise _ToolError(f"no tool {name!r}; tools: {', '.join(self.schemas)}")
            return _tool_result(await self._run(name, arguments))
        except (_ToolError, sg.WorkflowError, ValueError, TypeError) as exc:
            return _error_result(f"{type(exc).__name__}: {exc}")

    async def _run(self, name: str, arguments: Mapping[str, Any]) -> sg.RunResult:
        workflow, (_, flat) = self.workflows[name], self.schemas[name]
        session_id = _optional_str(arguments, "session_id")
        if flat:
            value: Any = {k: v for k, v in arguments.items() if k != "session_id"}
        elif "input" in arguments:
            value = arguments["input"]
        else:
            raise _ToolError("missing argument 'input'")
        session = workflow.session(session_id or f"mcp_{uuid.uuid4().hex}", store=self.store)
        return await session.run(value)

    async def _respond(self, arguments: Mapping[str, Any]) -> sg.RunResult:
        session_id = _optional_str(arguments, "session_id")
        answers: Any = arguments.get("answers")
        if session_id is None:
            raise _ToolError("missing argument 'session_id'")
        if not isinstance(answers, Mapping) or not answers:
            raise _ToolError("answers must be an object of answers keyed by request id")
        latest = await self.store.latest(session_id)
        if latest is None:
            raise _ToolError(f"no session {session_id!r}")
        workflow = next(
            (wf for wf in self.workflows.values() if wf.signature == latest.graph_signature),
            None,
        )
        if workflow is None:
            raise _ToolError(f"session {session_id!r} runs a workflow this server does not serve")
        session = workflow.session(session_id, store=self.store)
        return await session.respond(cast(Mapping[str, Any], answers))


def mcp_server(
    workflows: sg.Workflow[Any] | Sequence[sg.Workflow[Any]] | Mapping[str, sg.Workflow[Any]],
    *,
    store: sg.CheckpointStore | None = None,
    name: str = "stepgraph",
) -> Server[Any]:
    """An MCP server (the SDK's low-level `mcp.server.lowlevel.Server`) offering each
    workflow as a tool, plus `respond` for answering pending requests.

    Run it over stdio with `serve_mcp_stdio`, or beside the Responses API with
    `mount_mcp` (what `stepgraph serve --mcp` does).

    Args:
        workflows: one workflow, several (tool names: their names) or a mapping of
            tool names to workflows, as for `create_app`.
        store: where sessions save checkpoints (default: in memory); with a durable
            store sessions survive restarts and `respond` works after one.
        name: the server's name in its MCP handshake.

    Raises:
        ImportError: the `mcp` package is not installed.
        ValueError: two workflows share a name, or one is named `respond`.
    """
    try:
        from mcp.server.lowlevel import Server
        from mcp_types import ListToolsResult
    except ImportError as exc:
        raise _missing_mcp(exc) from exc
    tools = _Tools(
        model_names(workflows), store if store is not None else sg.MemoryCheckpointStore()
    )

    async def on_list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=tools.tools())

    async def on_call_tool(
        ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult:
        return await tools.call(params.name, params.arguments or {})

    return Server(
        name, version=sg.__version__, on_list_tools=on_list_tools, on_call_tool=on_call_tool
    )


def mount_mcp(
    app: Starlette, server: Server[Any], *, path: str = "/mcp", host: str = "127.0.0.1"
) -> None:
    """Serve `server` over Streamable HTTP at `path` of `app` (from `create_app`).

    The route goes through the app's middleware (its bearer key too), and the
    MCP session manager runs in the app's lifespan. `host` is the interface the
    app is bound to: on a loopback one, DNS rebinding protection is on.
    """
    mcp_app = server.streamable_http_app(streamable_http_path=path, host=host)
    app.router.routes.extend(mcp_app.routes)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncGenerator[Any]:
        async with server.session_manager.run(), inner(a) as state:
            yield state

    app.router.lifespan_context = lifespan
    app.state.mcp_path = path


async def serve_mcp_stdio(
    workflows: Mapping[str, sg.Workflow[Any]], store: sg.CheckpointStore
) -> None:
    """Serve `workflows` as MCP tools over this process's stdin and stdout until
    stdin closes, then close `store` (what `stepgraph serve --mcp=stdio` runs).
    """
    try:
        server = mcp_server(workflows, store=store)
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        await store.aclose()
