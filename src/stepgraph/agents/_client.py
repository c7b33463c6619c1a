"""The `ChatClient` protocol: what an agent needs from a model, full or streamed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._errors import WorkflowError
from ._messages import ChatMessage, Content, FunctionCall, TextContent, Usage

__all__ = [
    "PLACEHOLDER_KEY",
    "ChatClient",
    "ChatClientError",
    "ChatOptions",
    "ChatResponse",
    "ChatUpdate",
    "ToolSpec",
    "collect",
    "credentials",
]


class ChatClientError(WorkflowError):
    """A model endpoint failed a request: an HTTP error, no connection, or a failed stream.

    Attributes:
        status_code: the HTTP status, or None when no HTTP error response carried the failure.
        message: the server's (or the client's) explanation.
        code: the provider's error code (e.g. "invalid_api_key"), when it sent one.
    """

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None):
        super().__init__(f"HTTP {status_code}: {message}" if status_code else message)
        self.status_code = status_code
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model sees it: a name, a description and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict[str, Any])


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """Per-request model options; None leaves the client's default.

    Attributes:
        model: the model name.
        temperature: sampling temperature.
        max_tokens: a cap on generated tokens.
        response_format: a JSON schema dict (structured output), or None for text.
        tool_choice: "auto", "none" or "required".
        headers: extra HTTP headers for the provider's request (a tenant id, a trace
            header); a middleware can add them per call.
    """

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    tool_choice: str | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A whole model reply."""

    message: ChatMessage
    usage: Usage | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ChatUpdate:
    """One streamed piece of a reply: a text delta, and/or whole function calls, usage."""

    text: str = ""
    function_calls: tuple[FunctionCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None


@runtime_checkable
class ChatClient(Protocol):
    """A model endpoint: `ScriptedChatClient`, `OpenAIChatClient`, `AnthropicChatClient`."""

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> ChatResponse:
        """The whole reply to `messages`."""
        ...

    def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> AsyncIterator[ChatUpdate]:
        """The reply to `messages` as it is generated."""
        ...


def collect(updates: Sequence[ChatUpdate], author: str | None = None) -> ChatResponse:
    """Merge streamed updates into one `ChatResponse`."""
    text = "".join(u.text for u in updates)
    contents: list[Content] = [TextContent(text)] if text else []
    for u in updates:
        contents.extend(u.function_calls)
    usage = next((u.usage for u in reversed(updates) if u.usage is not None), None)
    finish = next((u.finish_reason for u in reversed(updates) if u.finish_reason), None)
    return ChatResponse(ChatMessage("assistant", tuple(contents), author), usage, finish)


PLACEHOLDER_KEY = "no-key"
"""The key sent to a keyless server (local servers ignore it, but the SDKs want one)."""


def credentials(api_key: str | None, base_url: str | None, env: str) -> tuple[str, str | None]:
    """A provider client's key and base URL: the arguments, else `{env}_API_KEY` and
    `{env}_BASE_URL`; `PLACEHOLDER_KEY` for a server given without a key.

    Raises:
        ChatClientError: neither a key nor a base URL.
    """
    base_url = base_url or os.environ.get(f"{env}_BASE_URL") or None
    api_key = api_key or os.environ.get(f"{env}_API_KEY") or None
    if api_key is None and base_url is None:
        raise ChatClientError(f"no API key: pass api_key= or set {env}_API_KEY (or {env}_BASE_URL)")
    return api_key or PLACEHOLDER_KEY, base_url
