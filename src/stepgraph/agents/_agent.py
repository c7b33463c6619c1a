"""`Agent`: instructions, a chat client and tools, with a bounded tool loop.

An agent is stateless: the conversation is passed in and the new messages
come back in an `AgentResponse`, so the caller (an `AgentExecutor`, one per
session) owns the conversation and checkpoints it. A tool marked
`approval_required` stops the loop with an `ApprovalRequest`; calling `run`
again with the answers continues it, running each approved tool once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ._client import ChatClient, ChatOptions, ChatResponse, ChatUpdate, collect
from ._messages import (
    ApprovalRequest,
    ApprovalResponse,
    ChatMessage,
    Content,
    FunctionCall,
    FunctionResult,
    Usage,
)
from ._tools import Tool

__all__ = ["Agent", "AgentLike", "AgentResponse", "UpdateSink"]

UpdateSink = Callable[[ChatUpdate], Awaitable[None]]
"""Receives streamed updates while an agent runs."""


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
    ) -> AgentResponse:
        """Answer the conversation; see `Agent.run`."""
        ...


class Agent:
    """A model with instructions and tools.

    Args:
        name: the agent's name (the author of its messages).
        client: the chat client it talks to.
        instructions: the system prompt.
        tools: functions or `Tool`s it may call.
        options: default model options.
        max_tool_iterations: model calls with tools per run before a final call without tools.
    """

    def __init__(
        self,
        name: str,
        client: ChatClient,
        *,
        instructions: str = "",
        tools: Sequence[Tool | Callable[..., Any]] = (),
        options: ChatOptions | None = None,
        max_tool_iterations: int = 8,
    ) -> None:
        self.name = name
        self.client = client
        self.instructions = instructions
        self.tools = {t.name: t for t in (x if isinstance(x, Tool) else Tool(x) for x in tools)}
        self.options = options
        self.max_tool_iterations = max_tool_iterations

    async def run(
        self,
        conversation: Sequence[ChatMessage] | str,
        *,
        approvals: Mapping[str, ApprovalResponse] | None = None,
        on_update: UpdateSink | None = None,
        conversation_id: str | None = None,
    ) -> AgentResponse:
        """Answer `conversation`, running the tool loop.

        Args:
            conversation: the messages so far (a str is one user message).
            approvals: answers to earlier `ApprovalRequest`s, by call id.
            on_update: receives streamed updates (the model is streamed when given).
            conversation_id: unused by a plain agent (it keeps no state).
        """
        history = (
            [ChatMessage.user(conversation)]
            if isinstance(conversation, str)
            else list(conversation)
        )
        new: list[ChatMessage] = []
        usage = Usage()
        pending = _unresolved(history)
        if pending:
            waiting = await self._resolve(pending, approvals or {}, new)
            if waiting:
                return AgentResponse(self.name, tuple(new), tuple(waiting), usage)
        for _ in range(self.max_tool_iterations):
            reply = await self._ask([*history, *new], on_update, with_tools=True)
            usage = _add(usage, reply.usage)
            new.append(reply.message)
            calls = reply.message.function_calls
            if not calls:
                return AgentResponse(self.name, tuple(new), (), usage)
            waiting = await self._resolve(calls, {}, new)
            if waiting or any(self._ends_turn(c) for c in calls):
                return AgentResponse(self.name, tuple(new), tuple(waiting), usage)
        reply = await self._ask([*history, *new], on_update, with_tools=False)
        new.append(reply.message)
        return AgentResponse(self.name, tuple(new), (), _add(usage, reply.usage))

    async def _ask(
        self, messages: list[ChatMessage], on_update: UpdateSink | None, *, with_tools: bool
    ) -> ChatResponse:
        prompt = (
            [ChatMessage.system(self.instructions), *messages] if self.instructions else messages
        )
        tools = [t.spec for t in self.tools.values()] if with_tools else []
        if on_update is None:
            response = await self.client.get_response(prompt, tools=tools, options=self.options)
            message = response.message
            if message.author is None:
                message = ChatMessage(message.role, message.contents, self.name)
            return ChatResponse(message, response.usage, response.finish_reason)
        updates: list[ChatUpdate] = []
        async for update in self.client.get_streaming_response(
            prompt, tools=tools, options=self.options
        ):
            updates.append(update)
            await on_update(update)
        return collect(updates, self.name)

    async def _resolve(
        self,
        calls: Sequence[FunctionCall],
        approvals: Mapping[str, ApprovalResponse],
        new: list[ChatMessage],
    ) -> list[ApprovalRequest]:
        """Run the calls that may run; return those that wait for a person."""
        results: list[Content] = []
        waiting: list[ApprovalRequest] = []
        for call in calls:
            tool = self.tools.get(call.name)
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
                results.append(await _call(tool, call))
        if results:
            new.append(ChatMessage("tool", tuple(results), self.name))
        return waiting

    def _ends_turn(self, call: FunctionCall) -> bool:
        tool = self.tools.get(call.name)
        return tool is not None and tool.ends_turn

    def with_tools(self, extra: Sequence[Tool], *, name: str | None = None) -> Agent:
        """A copy of this agent with more tools (the client and options are shared)."""
        return Agent(
            name or self.name,
            self.client,
            instructions=self.instructions,
            tools=[*self.tools.values(), *extra],
            options=self.options,
            max_tool_iterations=self.max_tool_iterations,
        )

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} tools={list(self.tools)}>"


async def _call(tool: Tool, call: FunctionCall) -> FunctionResult:
    try:
        return FunctionResult(call.call_id, await tool.invoke(call.arguments))
    except Exception as exc:  # the model sees the error and may recover
        return FunctionResult(call.call_id, error=f"{type(exc).__name__}: {exc}")


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
