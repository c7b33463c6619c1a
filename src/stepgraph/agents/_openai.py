"""`OpenAIChatClient`: a `ChatClient` on the `openai` package, Chat Completions or Responses API.

`openai` is optional (`pip install 'stepgraph[openai]'`): the client imports it, the package not.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from ._client import (
    ChatClientError,
    ChatOptions,
    ChatResponse,
    ChatUpdate,
    ToolSpec,
)
from ._messages import ChatMessage, Content, FunctionCall, FunctionResult, TextContent, Usage
from ._sdk import SDKClient, merge_options
from ._wire import parse_arguments as _parse_arguments
from ._wire import result_text as _result_text

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase
    from openai.types.responses import Response, ResponseStreamEvent, ResponseUsage
    from openai.types.responses.response_create_params import ResponseCreateParamsBase

__all__ = ["DEFAULT_MODEL", "ChatClientError", "OpenAIChatClient"]

DEFAULT_MODEL = "gpt-4o-mini"
_CHOICES = ("auto", "none", "required")


class OpenAIChatClient(SDKClient["AsyncOpenAI"]):
    """A `ChatClient` for OpenAI and OpenAI-compatible servers (vLLM, Ollama, llama.cpp, ...).

    Arguments win over the environment: `OPENAI_API_KEY`, `OPENAI_BASE_URL` (read when the
    connection is first needed) and `OPENAI_MODEL`. With a base URL and no key, a placeholder
    key is sent, as local servers expect. The `AsyncOpenAI` client is created on first use, so
    nothing binds to an event loop at construction; `aclose()` (or `async with`) closes it. An
    injected `client` stays the caller's to close.

    Args:
        model: the default model; else `OPENAI_MODEL`, else "gpt-4o-mini".
        api_key: the API key; else `OPENAI_API_KEY`.
        base_url: the API root, e.g. "http://localhost:8000/v1"; else `OPENAI_BASE_URL`.
        api: "chat" for Chat Completions, "responses" for the Responses API.
        default_options: options for every request; per-request options override them.
        client: a ready `AsyncOpenAI` to use instead of creating one.
        max_retries: retries the SDK makes on connection errors, 408, 429 and 5xx.
        timeout: seconds before a request times out; None keeps the SDK default.

    Raises:
        ImportError: the `openai` package is not installed.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        api: Literal["chat", "responses"] = "chat",
        default_options: ChatOptions | None = None,
        client: AsyncOpenAI | None = None,
        max_retries: int = 2,
        timeout: float | None = None,
    ) -> None:
        super().__init__("openai", "OPENAI", client, (api_key, base_url, max_retries, timeout))
        if api not in ("chat", "responses"):
            raise ChatClientError(f"api must be 'chat' or 'responses', not {api!r}")
        self.model = model or os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL
        self.api: Literal["chat", "responses"] = api
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
        client, opts = self._connection(), self._options(options)
        with _translated_errors():
            if self.api == "chat":
                params = _chat_params(messages, tools, opts, stream=False)
                return _from_chat_completion(await client.chat.completions.create(**params))
            rparams = _responses_params(messages, tools, opts)
            return _from_response(await client.responses.create(**rparams))

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
        client, opts = self._connection(), self._options(options)
        with _translated_errors():
            if self.api == "chat":
                params = _chat_params(messages, tools, opts, stream=True)
                async with await client.chat.completions.create(**params, stream=True) as chunks:
                    async for update in _chat_updates(chunks):
                        yield update
            else:
                rparams = _responses_params(messages, tools, opts)
                async with await client.responses.create(**rparams, stream=True) as events:
                    async for update in _responses_updates(events):
                        yield update

    def _options(self, options: ChatOptions | None) -> ChatOptions:
        merged = merge_options(self.default_options, options)
        return merged if merged.model else replace(merged, model=self.model)

    def _connect(
        self, api_key: str, base_url: str | None, max_retries: int, timeout: float | None
    ) -> AsyncOpenAI:
        from openai import NOT_GIVEN, AsyncOpenAI

        return AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=NOT_GIVEN if timeout is None else timeout,
        )


@contextmanager
def _translated_errors() -> Generator[None]:
    """Turn `openai` errors into `ChatClientError`s with the status and the server's message."""
    from openai import APIError, APIStatusError, OpenAIError

    try:
        yield
    except OpenAIError as exc:
        body = cast(object, exc.body) if isinstance(exc, APIError) else None
        message = cast(dict[str, object], body).get("message") if isinstance(body, dict) else None
        raise ChatClientError(
            message if isinstance(message, str) and message else str(exc) or type(exc).__name__,
            status_code=exc.status_code if isinstance(exc, APIStatusError) else None,
            code=exc.code if isinstance(exc, APIError) else None,
        ) from None


# -- shared mapping ----------------------------------------------------------------------------


def _arguments_text(call: FunctionCall) -> str:
    raw = call.arguments.get("_raw")
    if isinstance(raw, str) and len(call.arguments) == 1:
        return raw  # malformed arguments go back to the model exactly as it wrote them
    return json.dumps(call.arguments, ensure_ascii=False)


def _function(tool: ToolSpec) -> dict[str, Any]:
    parameters = tool.parameters or {"type": "object", "properties": {}}
    return {"name": tool.name, "description": tool.description, "parameters": parameters}


def _call(call: FunctionCall) -> dict[str, Any]:
    return {"name": call.name, "arguments": _arguments_text(call)}


def _format(schema: dict[str, Any]) -> dict[str, Any]:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "response"))[:64]
    return {"name": name, "schema": schema}


def _tool_choice(choice: str, *, chat: bool) -> str | dict[str, Any]:
    named = {"function": {"name": choice}} if chat else {"name": choice}
    return choice if choice in _CHOICES else {"type": "function", **named}  # else: a tool's name


@dataclass
class _PartialCall:
    """A streamed function call whose argument fragments are still arriving."""

    call_id: str = ""
    name: str = ""
    arguments: str = ""

    def done(self) -> FunctionCall:
        call_id = self.call_id or f"call_{uuid.uuid4().hex[:24]}"  # some servers send no id
        return FunctionCall(call_id, self.name, _parse_arguments(self.arguments))


def _drain(partial: dict[int, _PartialCall]) -> tuple[FunctionCall, ...]:
    calls = tuple(partial[index].done() for index in sorted(partial))
    partial.clear()
    return calls


# -- Chat Completions --------------------------------------------------------------------------


def _chat_params(
    messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], opts: ChatOptions, *, stream: bool
) -> CompletionCreateParamsBase:
    fmt = _format(opts.response_format) if opts.response_format else None
    params = {
        "model": opts.model or DEFAULT_MODEL,
        "messages": _chat_messages(messages),
        "stream_options": {"include_usage": True} if stream else None,
        "tools": [{"type": "function", "function": _function(t)} for t in tools] or None,
        "temperature": opts.temperature,
        "max_tokens": opts.max_tokens,
        "response_format": fmt and {"type": "json_schema", "json_schema": fmt},
        "tool_choice": _tool_choice(opts.tool_choice, chat=True) if opts.tool_choice else None,
        "extra_headers": dict(opts.headers) if opts.headers else None,
    }
    return cast("CompletionCreateParamsBase", {k: v for k, v in params.items() if v is not None})


def _chat_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        text, calls = message.text, message.function_calls
        if message.role == "assistant" and (text or calls):
            out.append({"role": "assistant", "content": text or None})
            if calls:
                out[-1]["tool_calls"] = [
                    {"id": c.call_id, "type": "function", "function": _call(c)} for c in calls
                ]
        elif message.role in ("system", "user") and text:
            out.append({"role": message.role, "content": text})
        for c in message.contents:
            if isinstance(c, FunctionResult):
                out.append({"role": "tool", "tool_call_id": c.call_id, "content": _result_text(c)})
    return out


def _chat_usage(usage: CompletionUsage | None) -> Usage | None:
    return None if usage is None else Usage(usage.prompt_tokens, usage.completion_tokens)


def _from_chat_completion(completion: ChatCompletion) -> ChatResponse:
    contents: list[Content] = []
    finish: str | None = None
    if completion.choices:
        choice = completion.choices[0]
        finish = choice.finish_reason
        if text := choice.message.content or choice.message.refusal:
            contents.append(TextContent(text))
        for call in choice.message.tool_calls or ():
            if call.type == "function":
                arguments = _parse_arguments(call.function.arguments)
                contents.append(FunctionCall(call.id, call.function.name, arguments))
    message = ChatMessage("assistant", tuple(contents))
    return ChatResponse(message, _chat_usage(completion.usage), finish)


async def _chat_updates(chunks: AsyncIterator[ChatCompletionChunk]) -> AsyncIterator[ChatUpdate]:
    partial: dict[int, _PartialCall] = {}
    async for chunk in chunks:
        text, finish, calls = "", None, ()
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            text = choice.delta.content or choice.delta.refusal or ""
            for fragment in choice.delta.tool_calls or ():
                call = partial.setdefault(fragment.index, _PartialCall())
                call.call_id = call.call_id or fragment.id or ""
                if fragment.function is not None:
                    # The name comes whole in the first fragment; the arguments come in pieces.
                    call.name = call.name or fragment.function.name or ""
                    call.arguments += fragment.function.arguments or ""
            if choice.finish_reason is not None:
                finish, calls = choice.finish_reason, _drain(partial)
        usage = _chat_usage(chunk.usage)
        if text or calls or usage or finish:
            yield ChatUpdate(text, calls, usage, finish)
    if partial:  # the stream ended without a finish_reason
        yield ChatUpdate(function_calls=_drain(partial))


# -- Responses ---------------------------------------------------------------------------------


def _responses_params(
    messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], opts: ChatOptions
) -> ResponseCreateParamsBase:
    fmt = _format(opts.response_format) if opts.response_format else None
    params = {
        "model": opts.model or DEFAULT_MODEL,
        "input": _responses_input(messages),
        # `strict` defaults to true here, which rejects most schemas Chat Completions accepts.
        "tools": [{"type": "function", **_function(t), "strict": False} for t in tools] or None,
        "temperature": opts.temperature,
        "max_output_tokens": opts.max_tokens,
        "text": fmt and {"format": {"type": "json_schema", **fmt}},
        "tool_choice": _tool_choice(opts.tool_choice, chat=False) if opts.tool_choice else None,
        "extra_headers": dict(opts.headers) if opts.headers else None,
    }
    return cast("ResponseCreateParamsBase", {k: v for k, v in params.items() if v is not None})


def _responses_input(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        if (text := message.text) and message.role != "tool":
            items.append({"type": "message", "role": message.role, "content": text})
        for c in message.contents:
            if isinstance(c, FunctionCall) and message.role == "assistant":
                items.append({"type": "function_call", "call_id": c.call_id, **_call(c)})
            elif isinstance(c, FunctionResult):
                output = {"call_id": c.call_id, "output": _result_text(c)}
                items.append({"type": "function_call_output", **output})
    return items


def _responses_usage(usage: ResponseUsage | None) -> Usage | None:
    return None if usage is None else Usage(usage.input_tokens, usage.output_tokens)


def _responses_finish(response: Response, called: bool) -> str | None:
    """The Chat Completions finish reason matching a response's status, so agents see one set."""
    if response.status == "incomplete":
        details = response.incomplete_details
        reason = details.reason if details is not None else None
        return "length" if reason == "max_output_tokens" else reason or "incomplete"
    if response.status in ("completed", None):
        return "tool_calls" if called else "stop"
    return response.status


def _from_response(response: Response) -> ChatResponse:
    contents: list[Content] = []
    for item in response.output:
        if item.type == "message":
            text = "".join(p.text if p.type == "output_text" else p.refusal for p in item.content)
            if text:
                contents.append(TextContent(text))
        elif item.type == "function_call":
            arguments = _parse_arguments(item.arguments)
            contents.append(FunctionCall(item.call_id, item.name, arguments))
    finish = _responses_finish(response, any(isinstance(c, FunctionCall) for c in contents))
    message = ChatMessage("assistant", tuple(contents))
    return ChatResponse(message, _responses_usage(response.usage), finish)


async def _responses_updates(
    events: AsyncIterator[ResponseStreamEvent],
) -> AsyncIterator[ChatUpdate]:
    partial: dict[int, _PartialCall] = {}  # by output_index
    called = False
    async for event in events:
        if event.type == "response.output_text.delta" or event.type == "response.refusal.delta":
            yield ChatUpdate(event.delta)
        elif event.type == "response.output_item.added" and event.item.type == "function_call":
            item = event.item
            partial[event.output_index] = _PartialCall(item.call_id, item.name, item.arguments)
        elif event.type == "response.function_call_arguments.delta":
            partial.setdefault(event.output_index, _PartialCall()).arguments += event.delta
        elif event.type == "response.output_item.done" and event.item.type == "function_call":
            item, streamed = event.item, partial.pop(event.output_index, _PartialCall())
            called = True  # the done item is whole; the streamed fragments are a fallback
            whole = _PartialCall(item.call_id, item.name, item.arguments or streamed.arguments)
            yield ChatUpdate(function_calls=(whole.done(),))
        elif event.type == "response.completed" or event.type == "response.incomplete":
            calls = _drain(partial)  # calls some server never closed with output_item.done
            called = called or bool(calls)
            finish = _responses_finish(event.response, called)
            yield ChatUpdate("", calls, _responses_usage(event.response.usage), finish)
        elif event.type == "response.failed":
            error = event.response.error
            message = error.message if error is not None else "the response failed"
            raise ChatClientError(message, code=error.code if error is not None else None)
        elif event.type == "error":
            raise ChatClientError(event.message, code=event.code)
    if partial:  # the stream ended without response.completed
        yield ChatUpdate(function_calls=_drain(partial))
