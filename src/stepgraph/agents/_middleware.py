"""Middleware: layers around each model call and each tool call of an `Agent`.

In the manner of the engine's interceptors (`stepgraph._interceptors`), a
middleware wraps one kind of call, which takes one input object and the next
layer:

* `model_call(call: ModelCall, next) -> ChatResponse`: one request to the model.
  `call.messages`, `call.tools`, `call.options` and `call.client` may be changed
  before `next(call)`; `call.on_update` may be wrapped to see or change streamed
  updates; the response may be read (`usage`) or replaced.
* `tool_call(call: ToolCall, next) -> Any`: one run of a tool. `call.arguments`
  may be changed; returning without `next(call)` blocks the tool and the value
  returned is its result; raising `ToolBlocked(reason)` blocks it and the model
  sees `reason` as the tool's error. Any other exception becomes a tool error
  result, as a tool's own exception does.

`Agent(middleware=[a, b])` composes them in declaration order: `a` is the
outermost layer, `b` runs inside it, and the real call is innermost.

Journaling: with a `step` (in a workflow), the layers run inside the durable
step of their call, around the real call. A step replayed from its record
(`resume()`, a retry, a restart) runs neither the call nor its middleware, so
middleware side effects (counters, spans, logs) happen once per real call.
A tool call rejected by a person, or naming no tool, runs no tool middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import WorkflowError
from .._interceptors import compose
from ._client import ChatClient, ChatOptions, ChatResponse, ChatUpdate, ToolSpec, collect
from ._mcp import MCPServerError
from ._messages import ChatMessage, FunctionCall, FunctionResult

if TYPE_CHECKING:
    from ._agent import UpdateSink
    from ._tools import Tool

__all__ = [
    "Middleware",
    "ModelCall",
    "ToolBlocked",
    "ToolCall",
    "call_model",
    "call_tool",
]

T = TypeVar("T")
R = TypeVar("R")

Next = Callable[[T], Awaitable[R]]


class ToolBlocked(WorkflowError):
    """Raised by a middleware's `tool_call` to refuse a call; the model sees the message.

    The tool does not run; its result is an error whose text is the message.
    """


class ModelCall:
    """Input of `Middleware.model_call`: one request of an agent to its model.

    Attributes:
        agent: the agent's name.
        messages: the prompt (system instructions first, when the agent has them);
            change or replace it to change what the model sees.
        tools: the tools offered to the model; empty for the final call without tools.
        options: the request's options (`dataclasses.replace` them to change some).
        client: the chat client asked; replace it to route the call elsewhere.
        on_update: where streamed updates go, or None when the call is not streamed;
            wrap it to see or change updates (do not set it on a call that was None).
        step: the name of the durable step recording the call, or None without a step.
    """

    __slots__ = ("agent", "client", "messages", "on_update", "options", "step", "tools")

    def __init__(
        self,
        agent: str,
        client: ChatClient,
        messages: list[ChatMessage],
        tools: list[ToolSpec],
        options: ChatOptions | None,
        on_update: UpdateSink | None = None,
        step: str | None = None,
    ) -> None:
        self.agent = agent
        self.client = client
        self.messages = messages
        self.tools = tools
        self.options = options
        self.on_update = on_update
        self.step = step


class ToolCall:
    """Input of `Middleware.tool_call`: one run of a tool the model asked for.

    Attributes:
        agent: the agent's name.
        tool: the tool to run (a Python tool or an MCP server's).
        call_id: the model's id for the call.
        arguments: the arguments the tool gets (a copy of the model's); change them freely.
        idempotency_key: the call's key (`tool_idempotency_key()`), or None.
        step: the name of the durable step recording the call, or None without a step.
    """

    __slots__ = ("agent", "arguments", "call_id", "idempotency_key", "step", "tool")

    def __init__(
        self,
        agent: str,
        tool: Tool,
        call: FunctionCall,
        idempotency_key: str | None = None,
        step: str | None = None,
    ) -> None:
        self.agent = agent
        self.tool = tool
        self.call_id = call.call_id
        self.arguments = dict(call.arguments)
        self.idempotency_key = idempotency_key
        self.step = step

    @property
    def name(self) -> str:
        """The tool's name."""
        return self.tool.name


class Middleware:
    """A layer around an agent's model and tool calls; both methods pass through by default.

    Override `model_call`, `tool_call` or both, and await `next(call)` to go on
    (or do not, to answer in place of the layers inside).
    """

    def model_call(
        self, call: ModelCall, next: Next[ModelCall, ChatResponse]
    ) -> Awaitable[ChatResponse]:
        """Around one model call."""
        return next(call)

    def tool_call(self, call: ToolCall, next: Next[ToolCall, Any]) -> Awaitable[Any]:
        """Around one tool run; its result (any value) is what the model sees."""
        return next(call)


async def call_model(layers: Sequence[Middleware], call: ModelCall) -> ChatResponse:
    """Run `call` through `layers` to its client; the reply is authored by the agent."""
    return await compose(layers, "model_call", _send, Middleware)(call)


async def _send(call: ModelCall) -> ChatResponse:
    """The real model call: whole, or streamed to `call.on_update` and collected."""
    if call.on_update is None:
        response = await call.client.get_response(
            call.messages, tools=call.tools, options=call.options
        )
        message = response.message
        if message.author is None:
            message = ChatMessage(message.role, message.contents, call.agent)
        return ChatResponse(message, response.usage, response.finish_reason)
    updates: list[ChatUpdate] = []
    async for update in call.client.get_streaming_response(
        call.messages, tools=call.tools, options=call.options
    ):
        updates.append(update)
        await call.on_update(update)
    return collect(updates, call.agent)


async def call_tool(layers: Sequence[Middleware], call: ToolCall) -> FunctionResult:
    """Run `call` through `layers` to its tool; errors become the result the model sees.

    Raises:
        MCPServerError: the server, not the tool, failed (the call did not happen).
    """
    try:
        return FunctionResult(
            call.call_id, await compose(layers, "tool_call", _invoke, Middleware)(call)
        )
    except MCPServerError:
        raise  # retry it later: nothing is recorded for this call
    except ToolBlocked as exc:
        return FunctionResult(call.call_id, error=str(exc))
    except Exception as exc:  # the model sees the error and may recover
        return FunctionResult(call.call_id, error=f"{type(exc).__name__}: {exc}")


async def _invoke(call: ToolCall) -> Any:
    return await call.tool.invoke(call.arguments, call.idempotency_key)
