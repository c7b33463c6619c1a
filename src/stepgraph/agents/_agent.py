"""`Agent`: instructions, a chat client and tools, with a bounded tool loop.

An agent is stateless: the conversation is passed in and the new messages
come back in an `AgentResponse`, so the caller (an `AgentExecutor`, one per
session) owns the conversation and checkpoints it. A tool marked
`approval_required` stops the loop with an `ApprovalRequest`; calling `run`
again with the answers continues it, running each approved tool once.

Given a `step` (a handler's `ctx.step`), every model call and every tool call
is a durable step named after the agent, the loop iteration and the call id
(`<agent>/model-<i>`, `<agent>/model-final`, `<agent>/tool-<i>-<call id>`,
`<agent>/tool-approved-<call id>`): when the handler runs again (a retry, a
`resume()`, a restart) the finished calls return their recorded results, so a
resumed turn neither asks the model again nor runs a tool twice. A tool's
recorded result is its `FunctionResult`, errors included, so the replayed
conversation is the one the model saw. Given an `idempotency_key` (the
handler's `ctx.idempotency_key`), each tool call gets its own key, derived from
it and the call's step name, which the tool reads with `tool_idempotency_key()`.

`MCPTools` among the tools add an MCP server's tools; each run connects to the
server when it first needs it and closes the connection when it ends (see
`_mcp`). A server that is down fails the run (`MCPServerError`) instead of
becoming a tool result: nothing is recorded for that call, so a retry calls it.

`middleware` wraps each model call and each tool run (see `_middleware`), inside
its durable step: a replayed step runs no middleware.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from .._errors import SerializationError
from ._client import ChatClient, ChatOptions, ChatResponse, ChatUpdate
from ._mcp import MCPTools, Toolbox
from ._messages import (
    ApprovalRequest,
    ApprovalResponse,
    ChatMessage,
    Content,
    FunctionCall,
    FunctionResult,
    Usage,
)
from ._middleware import Middleware, ModelCall, ToolCall, call_model, call_tool
from ._tools import Tool

__all__ = ["Agent", "AgentLike", "AgentResponse", "Step", "UpdateSink"]

R = TypeVar("R")

UpdateSink = Callable[[ChatUpdate], Awaitable[None]]
"""Receives streamed updates while an agent runs."""


class Step(Protocol):
    """Runs `fn(*args, **kwargs)` once and records its result: `Context.step`'s signature.

    Pass a handler's `ctx.step` to `Agent.run(step=...)` to make the agent's
    model and tool calls durable steps of that handler call.
    """

    def __call__(
        self,
        name: str,
        fn: Callable[..., Awaitable[R]] | Callable[..., R],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> Awaitable[R]:
        """The recorded result of step `name`, or `fn`'s, recorded first."""
        ...


@dataclass(frozen=True, slots=True)
class AgentResponse:
    """What one agent run added to the conversation.

    Attributes:
        agent: the agent's name.
        messages: the new messages (assistant replies and tool results), in order.
        approvals: tool calls that wait for a person; run again with the answers.
        usage: token counts summed over the run's model calls.
    """

    agent: str
    messages: tuple[ChatMessage, ...] = ()
    approvals: tuple[ApprovalRequest, ...] = ()
    usage: Usage | None = None

    @property
    def text(self) -> str:
        """The text of the last assistant message."""
        for m in reversed(self.messages):
            if m.role == "assistant" and m.text:
                return m.text
        return ""


@runtime_checkable
class AgentLike(Protocol):
    """What an `AgentExecutor` needs: `Agent` and `Workflow.as_agent()` both provide it."""

    name: str

    async def run(
        self,
        conversation: Sequence[ChatMessage] | str,
        *,
        approvals: Mapping[str, ApprovalResponse] | None = None,
        on_update: UpdateSink | None = None,
        conversation_id: str | None = None,
        step: Step | None = None,
        idempotency_key: str | None = None,
    ) -> AgentResponse:
        """Answer the conversation; see `Agent.run`."""
        ...


class Agent:
    """A model with instructions and tools.

    Args:
        name: the agent's name (the author of its messages).
        client: the chat client it talks to.
        instructions: the system prompt.
        tools: functions, `Tool`s or `MCPTools` (an MCP server's tools) it may call.
        options: default model options.
        max_tool_iterations: model calls with tools per run before a final call without tools.
        middleware: layers around each model call and tool run, the first outermost.
    """

    def __init__(
        self,
        name: str,
        client: ChatClient,
        *,
        instructions: str = "",
        tools: Sequence[Tool | MCPTools | Callable[..., Any]] = (),
        options: ChatOptions | None = None,
        max_tool_iterations: int = 8,
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.name = name
        self.client = client
        self.instructions = instructions
        self.servers = tuple(x for x in tools if isinstance(x, MCPTools))
        self.tools = {
            t.name: t
            for t in (
                x if isinstance(x, Tool) else Tool(x) for x in tools if not isinstance(x, MCPTools)
            )
        }
        self.options = options
        self.max_tool_iterations = max_tool_iterations
        self.middleware = tuple(middleware)

    async def run(
        self,
        conversation: Sequence[ChatMessage] | str,
        *,
        approvals: Mapping[str, ApprovalResponse] | None = None,
        on_update: UpdateSink | None = None,
        conversation_id: str | None = None,
        step: Step | None = None,
        idempotency_key: str | None = None,
    ) -> AgentResponse:
        """Answer `conversation`, running the tool loop.

        Args:
            conversation: the messages so far (a str is one user message).
            approvals: answers to earlier `ApprovalRequest`s, by call id.
            on_update: receives streamed updates (the model is streamed when given).
                A model call replayed from its record streams nothing.
            conversation_id: unused by a plain agent (it keeps no state).
            step: a handler's `ctx.step`: each model and tool call becomes a durable
                step of that handler call, never repeated once it finished.
            idempotency_key: a handler's `ctx.idempotency_key`: each tool call derives
                its own key from it, which the tool reads with `tool_idempotency_key()`.

        Raises:
            SerializationError: with `step`, a tool's result cannot be recorded.
            MCPServerError: an MCP server is down or broke off a call.
        """
        async with Toolbox(self.tools, self.servers) as box:
            return await self._run(conversation, approvals, on_update, step, idempotency_key, box)

    async def _run(
        self,
        conversation: Sequence[ChatMessage] | str,
        approvals: Mapping[str, ApprovalResponse] | None,
        on_update: UpdateSink | None,
        step: Step | None,
        idempotency_key: str | None,
        box: Toolbox,
    ) -> AgentResponse:
        history = (
            [ChatMessage.user(conversation)]
            if isinstance(conversation, str)
            else list(conversation)
        )
        new: list[ChatMessage] = []
        usage = Usage()
        pending = _unresolved(history)
        if pending:
            tools = _Calls(step, idempotency_key, "approved")
            waiting = await self._resolve(pending, approvals or {}, new, tools, box)
            if waiting:
                return AgentResponse(self.name, tuple(new), tuple(waiting), usage)
        for i in range(self.max_tool_iterations):
            reply = await self._ask([*history, *new], on_update, step, str(i), box)
            usage = _add(usage, reply.usage)
            new.append(reply.message)
            calls = reply.message.function_calls
            if not calls:
                return AgentResponse(self.name, tuple(new), (), usage)
            journal = _Calls(step, idempotency_key, str(i))
            waiting = await self._resolve(calls, {}, new, journal, box)
            if waiting or any(self._ends_turn(c) for c in calls):
                return AgentResponse(self.name, tuple(new), tuple(waiting), usage)
        reply = await self._ask([*history, *new], on_update, step, "final", None)
        new.append(reply.message)
        return AgentResponse(self.name, tuple(new), (), _add(usage, reply.usage))

    async def _ask(
        self,
        messages: list[ChatMessage],
        on_update: UpdateSink | None,
        step: Step | None,
        tag: str,
        box: Toolbox | None,
    ) -> ChatResponse:
        """One model call, offered the box's tools; with `step`, the step `<agent>/model-<tag>`."""
        if step is None:
            return await self._model(messages, on_update, box, None)
        # The step records a (message, usage, finish reason) tuple: those are types every
        # workflow running agents knows (ChatResponse is not named by any handler).
        name = f"{self.name}/model-{tag}"
        message, usage, finish = await step(name, self._model_reply, messages, on_update, box, name)
        return ChatResponse(message, usage, finish)

    async def _model_reply(
        self,
        messages: list[ChatMessage],
        on_update: UpdateSink | None,
        box: Toolbox | None,
        name: str,
    ) -> tuple[ChatMessage, Usage | None, str | None]:
        reply = await self._model(messages, on_update, box, name)
        return reply.message, reply.usage, reply.finish_reason

    async def _model(
        self,
        messages: list[ChatMessage],
        on_update: UpdateSink | None,
        box: Toolbox | None,
        name: str | None,
    ) -> ChatResponse:
        """The model call through the middleware; `name` is its step's, if journaled."""
        prompt = (
            [ChatMessage.system(self.instructions), *messages] if self.instructions else messages
        )
        tools = await box.specs() if box is not None else []
        call = ModelCall(self.name, self.client, prompt, tools, self.options, on_update, name)
        return await call_model(self.middleware, call)

    async def _resolve(
        self,
        calls: Sequence[FunctionCall],
        approvals: Mapping[str, ApprovalResponse],
        new: list[ChatMessage],
        journal: _Calls,
        box: Toolbox,
    ) -> list[ApprovalRequest]:
        """Run the calls that may run; return those that wait for a person."""
        results: list[Content] = []
        waiting: list[ApprovalRequest] = []
        for call in calls:
            tool = await box.lookup(call.name)
            if tool is None:
                results.append(FunctionResult(call.call_id, error=f"no tool named {call.name!r}"))
            elif tool.approval_required and call.call_id not in approvals:
                waiting.append(ApprovalRequest(call, self.name))
            elif tool.approval_required and not approvals[call.call_id].approved:
                reason = approvals[call.call_id].reason
                results.append(
                    FunctionResult(call.call_id, error=f"rejected by a person {reason}".strip())
                )
            else:
                results.append(await self._call(tool, call, journal))
        if results:
            new.append(ChatMessage("tool", tuple(results), self.name))
        return waiting

    async def _call(self, tool: Tool, call: FunctionCall, journal: _Calls) -> FunctionResult:
        """One tool call; with a step, the durable step `<agent>/tool-<tag>-<call id>`."""
        name = f"{self.name}/tool-{journal.tag}-{call.call_id}"
        key = journal.key_of(name)
        request = ToolCall(self.name, tool, call, key, name if journal.step else None)
        if journal.step is None:
            return await call_tool(self.middleware, request)
        try:
            return await journal.step(name, call_tool, self.middleware, request)
        except SerializationError as exc:  # only recording raises: `call_tool` catches the tool's
            raise SerializationError(
                f"tool {tool.name!r} of agent {self.name!r} returned a value that cannot be "
                f"recorded, so its call could run twice: {exc}. Return JSON-like values "
                "(str, numbers, lists, dicts) or register the result's class with "
                "WorkflowBuilder.register_types"
            ) from exc

    def _ends_turn(self, call: FunctionCall) -> bool:
        tool = self.tools.get(call.name)
        return tool is not None and tool.ends_turn

    def with_tools(self, extra: Sequence[Tool], *, name: str | None = None) -> Agent:
        """A copy of this agent with more tools (the client and options are shared)."""
        return Agent(
            name or self.name,
            self.client,
            instructions=self.instructions,
            tools=[*self.tools.values(), *self.servers, *extra],
            options=self.options,
            max_tool_iterations=self.max_tool_iterations,
            middleware=self.middleware,
        )

    def __repr__(self) -> str:
        servers = f" mcp={[s.name for s in self.servers]}" if self.servers else ""
        return f"<Agent {self.name!r} tools={list(self.tools)}{servers}>"


@dataclass(frozen=True, slots=True)
class _Calls:
    """How one round of tool calls is journaled: the step, the handler's key, a tag."""

    step: Step | None
    key: str | None
    tag: str  # the loop iteration, or "approved"

    def key_of(self, name: str) -> str | None:
        """The idempotency key of the call named `name`: stable wherever the handler's is."""
        if self.key is None:
            return None
        return hashlib.sha256(f"{self.key}\0{name}".encode()).hexdigest()[:32]


def _unresolved(history: Sequence[ChatMessage]) -> list[FunctionCall]:
    """Calls of the last assistant message that have no result after it."""
    for i in range(len(history) - 1, -1, -1):
        message = history[i]
        if message.role == "assistant":
            done = {
                c.call_id
                for later in history[i + 1 :]
                for c in later.contents
                if isinstance(c, FunctionResult)
            }
            return [c for c in message.function_calls if c.call_id not in done]
    return []


def _add(total: Usage, more: Usage | None) -> Usage:
    if more is None:
        return total
    return Usage(total.input_tokens + more.input_tokens, total.output_tokens + more.output_tokens)
