"""`TracingMiddleware`: OpenTelemetry GenAI spans for an agent's model and tool calls.

A middleware like any other, so tracing wraps the calls instead of branching in
the loop. It speaks to a `stepgraph.tracing.Tracer` (`OpenTelemetryTracer`), so
nothing here imports OpenTelemetry. Spans follow the GenAI semantic conventions:

* `chat {model}` per model call: `gen_ai.operation.name` = "chat",
  `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.agent.name`, the request's
  temperature and max tokens when set, then `gen_ai.usage.input_tokens`,
  `gen_ai.usage.output_tokens` and `gen_ai.response.finish_reasons`;
* `execute_tool {name}` per tool run: `gen_ai.operation.name` = "execute_tool",
  `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.type` = "function".

A failing call (a tool error, `ToolBlocked`, a client error) is recorded on its span.
Journaled calls replayed from their record open no span (middleware does not run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._middleware import Middleware, ModelCall, Next, ToolCall

if TYPE_CHECKING:
    from ..tracing import Tracer
    from ._client import ChatClient, ChatResponse

__all__ = ["TracingMiddleware"]

# gen_ai.provider.name of the built-in clients, by class name (no import of their packages).
_PROVIDERS = {
    "OpenAIChatClient": "openai",
    "AnthropicChatClient": "anthropic",
    "ScriptedChatClient": "stepgraph.scripted",
}


class TracingMiddleware(Middleware):
    """Opens a GenAI span around each model call and each tool run of an agent.

    Declare it first in `Agent(middleware=[...])` so its spans cover the other layers.

    Args:
        tracer: where spans go, e.g. `stepgraph.tracing.OpenTelemetryTracer()`.
        provider: the `gen_ai.provider.name`; by default "openai" or "anthropic" for
            the built-in clients, else the client's class name.
    """

    def __init__(self, tracer: Tracer, *, provider: str | None = None) -> None:
        self.tracer = tracer
        self.provider = provider

    async def model_call(
        self, call: ModelCall, next: Next[ModelCall, ChatResponse]
    ) -> ChatResponse:
        model = _model(call)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider or _provider(call.client),
            "gen_ai.agent.name": call.agent,
        }
        if model:
            attributes["gen_ai.request.model"] = model
        if call.options is not None and call.options.temperature is not None:
            attributes["gen_ai.request.temperature"] = call.options.temperature
        if call.options is not None and call.options.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = call.options.max_tokens
        if call.step is not None:
            attributes["stepgraph.step"] = call.step
        name = f"chat {model}" if model else "chat"
        with self.tracer.span(name, attributes) as span:
            response = await next(call)
            if response.usage is not None:
                span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
            if response.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
            return response

    async def tool_call(self, call: ToolCall, next: Next[ToolCall, Any]) -> Any:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.call_id,
            "gen_ai.tool.type": "function",
            "gen_ai.agent.name": call.agent,
        }
        if call.tool.description:
            attributes["gen_ai.tool.description"] = call.tool.description
        if call.step is not None:
            attributes["stepgraph.step"] = call.step
        with self.tracer.span(f"execute_tool {call.name}", attributes):
            return await next(call)


def _provider(client: ChatClient) -> str:
    name = type(client).__name__
    return _PROVIDERS.get(name, name)


def _model(call: ModelCall) -> str | None:
    """The model asked: the request's option, else the client's default model when it has one."""
    if call.options is not None and call.options.model:
        return call.options.model
    default: object = getattr(call.client, "model", None)  # OpenAI and Anthropic clients
    return default if isinstance(default, str) else None
