"""`AnthropicChatClient`: a `ChatClient` on the official `anthropic` package (Messages API).

`anthropic` is optional (`pip install 'stepgraph[anthropic]'`): the client imports it, the
package not. System messages become the request's `system` prompt, tool results go back as
`tool_result` blocks of a user turn, and stop reasons are mapped to the finish reasons the
OpenAI client reports ("stop", "tool_calls", "length"), so agents see one set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ._client import (
    ChatClientError,
    ChatOptions,
    ChatResponse,
    ChatUpdate,
    ToolSpec,
)
from ._messages import ChatMessage, Content, FunctionCall, FunctionResult, TextContent, Usage
from ._sdk import SDKClient, merge_options
from ._wire import parse_arguments, result_text

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from anthropic.types import Message, MessageDeltaUsage, RawMessageStreamEvent
    from anthropic.types import Usage as AnthropicUsage
    from anthropic.types.message_create_params import MessageCreateParamsBase

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "AnthropicChatClient"]

DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_MAX_TOKENS = 4096  # the Messages API requires a cap on every request
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}


class AnthropicChatClient(SDKClient["AsyncAnthropic"]):
    """A `ChatClient` for Anthropic's Messages API (and servers that speak it).

    Arguments win over the environment: `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` (read when
    the connection is first needed) and `ANTHROPIC_MODEL`. The `AsyncAnthropic` client is
    created on first use, so nothing binds to an event loop at construction; `aclose()` (or
    `async with`) closes it. An injected `client` stays the caller's to close.

    Args:
        model: the default model; else `ANTHROPIC_MODEL`, else "claude-sonnet-4-6".
        api_key: the API key; else `ANTHROPIC_API_KEY`.
        base_url: the API root, e.g. "http://localhost:8080"; else `ANTHROPIC_BASE_URL`.
        max_tokens: the output cap when `ChatOptions.max_tokens` is None (the API needs one).
        default_options: options for every request; per-request options override them.
        client: a ready `AsyncAnthropic` to use instead of creating one.
        max_retries: retries the SDK makes on connection errors, 408, 429 and 5xx.
        timeout: seconds before a request times out; None keeps the SDK default.

    Raises:
        ImportError: the `anthropic` package is not installed.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        default_options: ChatOptions | None = None,
        client: AsyncAnthropic | None = None,
        max_retries: int = 2,
        timeout: float | None = None,
    ) -> None:
        config = (api_key, base_url, max_retries, timeout)
        super().__init__("anthropic", "ANTHROPIC", client, config)
        self.model = model or os.environ.get("ANTHROPIC_MODEL") or DEFAULT_MODEL
        self.max_tokens = max_tokens
        self.default_options = default_options or ChatOptions()

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> ChatResponse:
        """The whole reply to `messages`.

        Raises:
            ChatClientError: the endpoint failed the request or could not be reached.
        """
        client, params = self._connection(), self._params(messages, tools, options)
        with _translated_errors():
            return _from_message(await client.messages.create(**params))

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> AsyncIterator[ChatUpdate]:
        """The reply to `messages` as it is generated: text deltas, whole function calls, usage.

        Raises:
            ChatClientError: the endpoint failed the request or the stream.
        """
        client, params = self._connection(), self._params(messages, tools, options)
        with _translated_errors():
            async with await client.messages.create(**params, stream=True) as events:
                async for update in _updates(events):
                    yield update

    def _params(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        options: ChatOptions | None,
    ) -> MessageCreateParamsBase:
        opts = merge_options(self.default_options, options)
        system, turns = _turns(messages)
        fmt = opts.response_format
        params = {
            "model": opts.model or self.model,
            "max_tokens": opts.max_tokens or self.max_tokens,
            "messages": turns,
            "system": system or None,
            "tools": [_tool(t) for t in tools] or None,
            # Newer SDKs dropped the `temperature` argument; the API still reads it from the body.
            "extra_body": None if opts.temperature is None else {"temperature": opts.temperature},
            # A tool choice without tools is an error for this API; the agent's last call has none.
            "tool_choice": _tool_choice(opts.tool_choice) if opts.tool_choice and tools else None,
            "output_config": fmt and {"format": {"type": "json_schema", "schema": fmt}},
            "extra_headers": dict(opts.headers) if opts.headers else None,
        }
        return cast("MessageCreateParamsBase", {k: v for k, v in params.items() if v is not None})

    def _connect(
        self, api_key: str, base_url: str | None, max_retries: int, timeout: float | None
    ) -> AsyncAnthropic:
        from anthropic import NOT_GIVEN, AsyncAnthropic

        return AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=NOT_GIVEN if timeout is None else timeout,
        )


@contextmanager
def _translated_errors() -> Generator[None]:
    """Turn `anthropic` errors into `ChatClientError`s with the status and the server's message."""
    from anthropic import AnthropicError, APIStatusError

    try:
        yield
    except AnthropicError as exc:
        status: int | None = None
        code: str | None = None
        message = str(exc) or type(exc).__name__
        if isinstance(exc, APIStatusError):
            # An `error` event inside a 200 stream arrives as a status error with status 200.
            status = exc.status_code if exc.status_code >= 400 else None
            code = exc.error_code or exc.type
            message = exc.api_message or message
        raise ChatClientError(message, status_code=status, code=code) from None


# -- requests ----------------------------------------------------------------------------------


def _turns(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt (every system message's text) and the user/assistant turns.

    Tool results travel as `tool_result` blocks of a user turn; consecutive messages of one
    side are merged into one turn, as the API wants turns to alternate.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system.extend([message.text] if message.text else [])
            continue
        blocks = _blocks(message)
        role = "assistant" if message.role == "assistant" else "user"
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if message.role != "tool" and message.text:
        blocks.append({"type": "text", "text": message.text})
    for c in message.contents:
        if isinstance(c, FunctionCall) and message.role == "assistant":
            blocks.append({"type": "tool_use", "id": c.call_id, "name": c.name, "input": _input(c)})
        elif isinstance(c, FunctionResult):
            result = {"type": "tool_result", "tool_use_id": c.call_id, "content": result_text(c)}
            blocks.append({**result, "is_error": True} if c.error is not None else result)
    return blocks


def _input(call: FunctionCall) -> dict[str, Any]:
    # The API wants an object: arguments a model once sent malformed stay `{"_raw": text}`.
    return dict(call.arguments)


def _tool(tool: ToolSpec) -> dict[str, Any]:
    schema = tool.parameters or {"type": "object", "properties": {}}
    return {"name": tool.name, "description": tool.description, "input_schema": schema}


def _tool_choice(choice: str) -> dict[str, Any]:
    kinds = {"auto": "auto", "none": "none", "required": "any"}
    return {"type": kinds[choice]} if choice in kinds else {"type": "tool", "name": choice}


# -- replies -----------------------------------------------------------------------------------


def _usage(usage: AnthropicUsage | MessageDeltaUsage) -> int:
    """Input tokens in all: the API counts cached input apart."""
    cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    return (usage.input_tokens or 0) + cached


def _finish(stop_reason: str | None) -> str | None:
    return None if stop_reason is None else _FINISH.get(stop_reason, stop_reason)


def _from_message(message: Message) -> ChatResponse:
    contents: list[Content] = []
    if text := "".join(block.text for block in message.content if block.type == "text"):
        contents.append(TextContent(text))
    for block in message.content:
        if block.type == "tool_use":
            contents.append(FunctionCall(block.id, block.name, dict(block.input)))
    usage = Usage(_usage(message.usage), message.usage.output_tokens)
    reply = ChatMessage("assistant", tuple(contents))
    return ChatResponse(reply, usage, _finish(message.stop_reason))


@dataclass
class _PartialUse:
    """A streamed `tool_use` block whose JSON input is still arriving."""

    call_id: str
    name: str
    start: dict[str, Any]  # the input the block opened with (whole when nothing streams)
    json: str = ""

    def done(self) -> FunctionCall:
        call_id = self.call_id or f"toolu_{uuid.uuid4().hex[:24]}"
        arguments = parse_arguments(self.json) if self.json.strip() else self.start
        return FunctionCall(call_id, self.name, arguments)


async def _updates(events: AsyncIterator[RawMessageStreamEvent]) -> AsyncIterator[ChatUpdate]:
    partial: dict[int, _PartialUse] = {}  # by content block index
    tokens_in = tokens_out = 0
    stop_reason: str | None = None
    async for event in events:
        if event.type == "message_start":
            tokens_in, tokens_out = _usage(event.message.usage), event.message.usage.output_tokens
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                partial[event.index] = _PartialUse(block.id, block.name, dict(block.input))
            elif block.type == "text" and block.text:
                yield ChatUpdate(block.text)
        elif event.type == "content_block_delta":
            if event.delta.type == "text_delta":
                yield ChatUpdate(event.delta.text)
            elif event.delta.type == "input_json_delta" and event.index in partial:
                partial[event.index].json += event.delta.partial_json
        elif event.type == "content_block_stop" and event.index in partial:
            yield ChatUpdate(function_calls=(partial.pop(event.index).done(),))
        elif event.type == "message_delta":
            stop_reason = event.delta.stop_reason or stop_reason
            tokens_out = event.usage.output_tokens  # cumulative
            tokens_in = _usage(event.usage) or tokens_in
        elif event.type == "message_stop":
            calls = tuple(partial.pop(i).done() for i in sorted(partial))  # never closed
            yield ChatUpdate("", calls, Usage(tokens_in, tokens_out), _finish(stop_reason))
    if partial:  # the stream ended without message_stop
        yield ChatUpdate(function_calls=tuple(partial.pop(i).done() for i in sorted(partial)))
