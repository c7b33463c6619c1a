"""`ScriptedChatClient`: deterministic replies for tests, examples and the offline demo."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from .._errors import WorkflowError
from ._client import ChatOptions, ChatResponse, ChatUpdate, ToolSpec
from ._messages import ChatMessage, Content, FunctionCall, TextContent, Usage

__all__ = ["Reply", "ScriptedChatClient", "ScriptedRequest"]

Reply = str | ChatMessage | FunctionCall | Sequence[FunctionCall] | Exception
"""A scripted reply: text, a whole message, tool calls, or an exception the call raises."""


@dataclass(frozen=True, slots=True)
class ScriptedRequest:
    """What the client was asked: the messages (copied), tool names and options."""

    messages: tuple[ChatMessage, ...]
    tools: tuple[str, ...]
    options: ChatOptions | None

    @property
    def last_text(self) -> str:
        """Text of the last message (what the model was answering)."""
        return self.messages[-1].text if self.messages else ""


class ScriptedChatClient:
    """A chat client that answers from a script and records every request.

    Args:
        script: replies used in order, or a function `(messages, tools) -> Reply`.
            An exception as a reply is raised by that call (a rate limit, a timeout),
            after the request was recorded; a list script then goes on with the next reply.
        chunk_words: streamed replies arrive this many words at a time.
        name: author name put on replies.

    Raises on use, with `WorkflowError`, when a list script runs out.
    """

    def __init__(
        self,
        script: Sequence[Reply] | Callable[[Sequence[ChatMessage], Sequence[ToolSpec]], Reply],
        *,
        chunk_words: int = 1,
        name: str | None = None,
    ) -> None:
        self._script = script
        self._next = 0
        self.chunk_words = max(1, chunk_words)
        self.name = name
        self.requests: list[ScriptedRequest] = []

    def _reply(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> ChatMessage:
        if callable(self._script):
            reply = self._script(messages, tools)
        else:
            if self._next >= len(self._script):
                raise WorkflowError(
                    f"ScriptedChatClient ran out of replies after {self._next} calls; the last "
                    f"request was {messages[-1].text[:80]!r} if any; add replies to the script"
                )
            reply = self._script[self._next]
            self._next += 1
        if isinstance(reply, Exception):
            raise reply
        return self._as_message(reply, len(messages))

    def _as_message(
        self, reply: str | ChatMessage | FunctionCall | Sequence[FunctionCall], turn: int
    ) -> ChatMessage:
        if isinstance(reply, ChatMessage):
            return reply
        if isinstance(reply, str):
            return ChatMessage("assistant", (TextContent(reply),), self.name)
        calls = [reply] if isinstance(reply, FunctionCall) else list(reply)
        contents: list[Content] = []
        for n, call in enumerate(calls):
            # Ids depend only on the conversation, so a resumed run makes the same ones.
            call_id = call.call_id or f"call_{turn}_{n}"
            contents.append(FunctionCall(call_id, call.name, call.arguments))
        return ChatMessage("assistant", tuple(contents), self.name)

    def _record(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        options: ChatOptions | None,
    ) -> None:
        self.requests.append(
            ScriptedRequest(tuple(messages), tuple(t.name for t in tools), options)
        )

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> ChatResponse:
        """The next scripted reply, whole."""
        self._record(messages, tools, options)
        message = self._reply(messages, tools)
        return ChatResponse(message, _usage(messages, message), "stop")

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> AsyncIterator[ChatUpdate]:
        """The next scripted reply, a few words per update, tool calls at the end."""
        self._record(messages, tools, options)
        message = self._reply(messages, tools)
        words = re.findall(r"\S+\s*|\s+", message.text)
        for i in range(0, len(words), self.chunk_words):
            yield ChatUpdate(text="".join(words[i : i + self.chunk_words]))
        yield ChatUpdate(
            function_calls=tuple(message.function_calls),
            usage=_usage(messages, message),
            finish_reason="tool_calls" if message.function_calls else "stop",
        )


def _usage(messages: Sequence[ChatMessage], reply: ChatMessage) -> Usage:
    """A deterministic stand-in for token counts: words in and out."""
    count: Callable[[str], int] = lambda text: len(text.split())  # noqa: E731
    return Usage(sum(count(m.text) for m in messages), count(reply.text))
