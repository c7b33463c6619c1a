"""`MCPTools`: the tools of an MCP server (stdio or Streamable HTTP), offered to an `Agent`.

Needs the optional `mcp` package (extra `mcp`), imported only when a server is
first contacted. `MCPTools` is a description (a command or a URL, the approval
mode) and holds no connection, so it binds nothing to an event loop and one
`Agent` (and the `AgentExecutor` prototype holding it) serves every session.

Lifetime rule: a connection belongs to one agent run. The run opens it when it
first needs the server (to list its tools for a model call, or to call one)
and closes it when it returns or fails. In a workflow an agent run is one turn
of one session's `AgentExecutor` (one handler call), so a connection is never
shared between sessions and ends with the turn that opened it. A turn replayed
from its journal (`resume()` after a failure) opens none: recorded model and
tool calls need no server. Nothing longer-lived is safe: a session has no
close (dropping one is allowed), its runs may happen in different event loops
or processes, and the SDK's connections must be closed by the task that opened
them.

Errors: a tool that reports an error (`isError`) is a tool result the model
sees, like a Python tool's exception (the MCP spec asks for that so the model
can recover). A server that cannot be started or reached, breaks off a call
(it died) or answers with a protocol error raises `MCPServerError`, naming the
server and the tool: the agent's handler fails (`ExecutorFailedError`), its
finished calls stay recorded, and `resume()` retries once the server is back.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast

from ._client import ToolSpec
from ._tools import Tool, ToolError

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp_types import CallToolResult, RequestParamsMeta

__all__ = ["IDEMPOTENCY_META_KEY", "ApprovalMode", "MCPServerError", "MCPTools", "Toolbox"]

IDEMPOTENCY_META_KEY = "stepgraph/idempotency_key"
"""The `_meta` key of a `tools/call` holding the call's key (as `tool_idempotency_key()`)."""

ApprovalMode = Literal["always", "never"] | Collection[str]
"""Which of a server's tools need a person's approval: all, none, or those named."""


class MCPServerError(ToolError):
    """An MCP server could not be reached, or broke off a call: the agent's handler fails.

    Attributes:
        server: the server's name (`MCPTools.name`).
        tool: the tool being called, or None when listing tools.
    """

    def __init__(self, message: str, *, server: str, tool: str | None = None) -> None:
        super().__init__(message)
        self.server = server
        self.tool = tool


@dataclass(frozen=True, slots=True, eq=False)
class MCPTools:
    """The tools of one MCP server, for `Agent(tools=[...])`; build with `stdio()` or `http()`.

    Attributes:
        name: the server's name in errors (the command line or the URL by default).
        transport: "stdio" (a subprocess) or "http" (Streamable HTTP).
        target: the command (stdio) or the URL (http).
        args: the command's arguments (stdio).
        env: environment variables added for the command (stdio).
        cwd: the command's working directory (stdio).
        headers: HTTP headers sent with every request (http).
        approval_mode: which tools need a person's approval (see `ApprovalMode`).
        timeout: seconds to wait for each answer of the server (None: no limit).
    """

    name: str
    transport: Literal["stdio", "http"]
    target: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    headers: Mapping[str, str] | None = None
    approval_mode: ApprovalMode = "never"
    timeout: float | None = None

    def __post_init__(self) -> None:
        mode = self.approval_mode
        if isinstance(mode, str) and mode not in ("always", "never"):
            raise ValueError(
                f"approval_mode must be 'always', 'never' or a collection of tool names, "
                f"not {mode!r}"
            )

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | None = None,
        name: str | None = None,
        approval_mode: ApprovalMode = "never",
        timeout: float | None = None,
    ) -> MCPTools:
        """A server run as a subprocess speaking MCP over its stdin and stdout.

        The subprocess inherits only the SDK's safe environment variables (PATH,
        HOME, ...) plus `env`.
        """
        label = name or shlex.join([command, *args])
        return cls(
            label,
            "stdio",
            command,
            tuple(args),
            dict(env) if env is not None else None,
            cwd,
            None,
            approval_mode,
            timeout,
        )

    @classmethod
    def http(
        cls,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
        approval_mode: ApprovalMode = "never",
        timeout: float | None = None,
    ) -> MCPTools:
        """A server reached over Streamable HTTP at `url` (for example `http://host/mcp`)."""
        label = name or url
        return cls(
            label,
            "http",
            url,
            headers=dict(headers) if headers is not None else None,
            approval_mode=approval_mode,
            timeout=timeout,
        )

    def approval_required(self, tool: str) -> bool:
        """Whether a call to `tool` waits for a person's approval."""
        mode = self.approval_mode
        if isinstance(mode, str):
            return mode == "always"
        return tool in mode


async def _open(server: MCPTools, stack: contextlib.AsyncExitStack) -> ClientSession:
    """Connect to a server and initialize; the connection closes with `stack`."""
    try:
        import httpx2
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client
    except ImportError as exc:
        raise ToolError(
            f"MCP server {server.name!r}: MCP tools need the mcp package: "
            "pip install 'stepgraph[mcp]'"
        ) from exc
    if server.transport == "stdio":
        params = StdioServerParameters(
            command=server.target,
            args=list(server.args),
            env=dict(server.env) if server.env is not None else None,
            cwd=server.cwd,
        )
        read, write = await stack.enter_async_context(stdio_client(params))
    else:
        timeout = httpx2.Timeout(30.0, read=server.timeout or 300.0)
        client = await stack.enter_async_context(
            httpx2.AsyncClient(headers=dict(server.headers or {}), timeout=timeout)
        )
        read, write = await stack.enter_async_context(
            streamable_http_client(server.target, http_client=client)
        )
    session = await stack.enter_async_context(
        ClientSession(read, write, read_timeout_seconds=server.timeout)
    )
    await session.initialize()
    return session


class _MCPTool(Tool):
    """One tool of an MCP server, as the agent's loop sees it; calls go through the toolbox."""

    def __init__(
        self,
        box: Toolbox,
        server: MCPTools,
        name: str,
        description: str = "",
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        # Tool's own constructor reads a Python function's signature: an MCP tool has none.
        self.func = self._unavailable
        self.ends_turn = False
        self.name = name
        self.description = description
        self.approval_required = server.approval_required(name)
        self.parameters = dict(parameters or {"type": "object", "properties": {}})
        self._box = box
        self.server = server

    @staticmethod
    def _unavailable(**_: Any) -> Any:
        raise ToolError("an MCP tool is called through its server")

    async def invoke(self, arguments: Mapping[str, Any], idempotency_key: str | None = None) -> Any:
        """Call the tool on its server; a tool-reported error raises `ToolError`.

        Raises:
            MCPServerError: the server is down, died during the call or broke the protocol.
            ToolError: the tool reported an error (the model sees it).
        """
        server = self.server
        session = await self._box.session(server, self.name)
        # The server may deduplicate on the key (`tool_idempotency_key()` of a Python tool).
        meta = (
            cast("RequestParamsMeta", {IDEMPOTENCY_META_KEY: idempotency_key})
            if idempotency_key
            else None
        )
        try:
            result = await session.call_tool(self.name, dict(arguments), meta=meta)
        except BaseException as exc:
            doing = f"MCP server {server.name!r} failed during a call to its tool {self.name!r}"
            await self._box.fail(exc, doing, server, self.name)
        return _result_value(server, self.name, result)

    def __repr__(self) -> str:
        return f"<MCP tool {self.name} of {self.server.name!r}>"


class Toolbox:
    """The tools of one agent run: its Python tools, and MCP connections opened on first use.

    An async context manager: leaving it closes every connection it opened.
    """

    def __init__(self, tools: Mapping[str, Tool], servers: Sequence[MCPTools]) -> None:
        self._tools = tools
        self._servers = servers
        self._stack = contextlib.AsyncExitStack()
        self._sessions: dict[int, ClientSession] = {}
        self._listed: dict[str, _MCPTool] | None = None

    async def __aenter__(self) -> Toolbox:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self._stack.__aexit__(exc_type, exc, tb)
        except Exception as close_error:
            if exc is not None:
                return  # the run's own error says more than a failed close after it
            names = ", ".join(repr(s.name) for s in self._servers)
            raise MCPServerError(
                f"closing the connection to MCP server {names} failed: {_describe(close_error)}",
                server=names,
            ) from close_error

    async def session(self, server: MCPTools, tool: str | None = None) -> ClientSession:
        """The connection to `server`, opened on first use.

        Raises:
            MCPServerError: the server cannot be started or reached.
        """
        key = id(server)
        if key not in self._sessions:
            try:
                self._sessions[key] = await _open(server, self._stack)
            except BaseException as exc:
                doing = f" to call its tool {tool!r}" if tool else ""
                await self.fail(
                    exc, f"cannot connect to MCP server {server.name!r}{doing}", server, tool
                )
        return self._sessions[key]

    async def fail(
        self, exc: BaseException, doing: str, server: MCPTools, tool: str | None
    ) -> NoReturn:
        """Close every connection (the run fails), then raise what went wrong as `MCPServerError`.

        A transport failure cancels the SDK's tasks, which shows in this task as a
        cancellation; closing the connections with it turns it back into the error
        behind it. A genuine cancellation of the run is raised as it is.
        """
        error: BaseException = exc
        try:
            await self._stack.__aexit__(type(exc), exc, exc.__traceback__)
        except BaseException as close_error:  # the same error, or the one behind a cancellation
            error = close_error
        self._sessions.clear()
        if isinstance(error, ToolError) or not isinstance(error, Exception):
            raise error
        raise MCPServerError(
            f"{doing}: {_describe(error)}", server=server.name, tool=tool
        ) from error

    async def specs(self) -> list[ToolSpec]:
        """Every tool as the model sees it: the Python tools, then each server's."""
        return [t.spec for t in self._tools.values()] + [
            t.spec for t in (await self._mcp_tools()).values()
        ]

    async def lookup(self, name: str) -> Tool | None:
        """The tool called `name`, or None.

        With one MCP server, a name that is not a Python tool is taken to be the
        server's, without connecting (so a replayed call needs no server).
        """
        if name in self._tools:
            return self._tools[name]
        if len(self._servers) == 1:
            return _MCPTool(self, self._servers[0], name)
        if not self._servers:
            return None
        return (await self._mcp_tools()).get(name)

    async def _mcp_tools(self) -> dict[str, _MCPTool]:
        if self._listed is None:
            listed: dict[str, _MCPTool] = {}
            for server in self._servers:
                for tool in await self._list(server):
                    if tool.name in self._tools or tool.name in listed:
                        owner = listed[tool.name].server.name if tool.name in listed else "Python"
                        raise ToolError(
                            f"MCP server {server.name!r} offers a tool {tool.name!r}, and so "
                            f"does {owner!r}: tool names must be unique within an agent"
                        )
                    listed[tool.name] = tool
            self._listed = listed
        return self._listed

    async def _list(self, server: MCPTools) -> list[_MCPTool]:
        session = await self.session(server)
        tools: list[_MCPTool] = []
        cursor: str | None = None
        from mcp_types import PaginatedRequestParams

        while True:
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            try:
                page = await session.list_tools(params=params)
            except BaseException as exc:
                doing = f"MCP server {server.name!r} failed to list its tools"
                await self.fail(exc, doing, server, None)
            for t in page.tools:
                tools.append(_MCPTool(self, server, t.name, t.description or "", t.input_schema))
            cursor = page.next_cursor
            if not cursor:
                return tools


def _result_value(server: MCPTools, tool: str, result: CallToolResult) -> Any:
    """A tool result as a JSON-like value: its text, else its structured content or blocks."""
    from mcp_types import TextContent

    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    all_text = bool(texts) and len(texts) == len(result.content)
    if result.is_error:
        detail = "\n".join(texts) if texts else "no details"
        raise ToolError(f"tool {tool!r} of MCP server {server.name!r} failed: {detail}")
    if all_text:
        return texts[0] if len(texts) == 1 else "\n".join(texts)
    if result.structured_content is not None:
        return result.structured_content
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in result.content]


def _describe(exc: BaseException) -> str:
    """What went wrong, looking inside the exception groups the SDK's task groups raise."""
    if isinstance(exc, BaseExceptionGroup):
        inner: tuple[BaseException, ...] = cast(Any, exc).exceptions
        return "; ".join(_describe(e) for e in inner)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
