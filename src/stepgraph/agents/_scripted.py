"""`ScriptedChatClient`: deterministic replies for tests, examples and the offline demo."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from .._errors import WorkflowError
from .._scope import current_session
from ._client import ChatOptions, ChatResponse, ChatUpdate, ToolSpec
from ._messages import ChatMessage, Content, FunctionCall, TextContent, Usage

__all__ = ["Reply", "ScriptedChatClient", "ScriptedRequest"]

Reply = str | ChatMessage | FunctionCall | Sequence[FunctionCall] | Exception
"""A scripted reply: text, a whole message, tool calls, or an exception the call raises."""


@dataclass(frozen=True, slots=True)
class ScriptedRequest:
    """What the client was asked: the messages (copied), tool names, options, and by which session.

    Attributes:
        session_id: the session whose handler made the call; None outside a run.
    """

    messages: tuple[ChatMessage, ...]
    tools: tuple[str, ...]
    options: ChatOptions | None
    session_id: str | None = None

    @property
    def last_text(self) -> str:
        """Text of the last message (what the model was answering)."""
        return self.messages[-1].text if self.messages else ""


class ScriptedChatClient:
    """A chat client that answers from a script and records every request.

    A list script is played once per session: the calls made while a session runs
    (by every agent of that session sharing the client) take its replies in order, and
    another session starts again from the first reply. So one client serves any number
    of conversations (a hosted workflow opens a session per conversation), and a test
    of one session reads exactly as before. Calls made outside any run (`Agent.run` or
    `get_response` called directly) share one sequence of their own. `requests` records
    every call of every session, in order, each with its `session_id`.

    Args:
        script: replies used in order, or a function `(messages, tools) -> Reply`.
            An exception as a reply is raised by that call (a rate limit, a timeout),
            after the request was recorded; a list script then goes on with the next reply.
        chunk_words: streamed replies arrive this many words at a time.
        name: author name put on replies.

    Raises on use, with `WorkflowError`, when a list script runs out in one session.
    """

    def __init__(
        self,
        script: Sequence[Reply] | Callable[[Sequence[ChatMessage], Sequence[ToolSpec]], Reply],
        *,
        chunk_words: int = 1,
        name: str | None = None,
    ) -> None:
        self._script = script
        self._next: dict[str | None, int] = {}  # the next reply, by session
        self.chunk_words = max(1, chunk_words)
        self.name = name
        self.requests: list[ScriptedRequest] = []

    def _reply(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> ChatMessage:
        if callable(self._script):
            reply = self._script(messages, tools)
        else:
            session = current_session()
            done = self._next.get(session, 0)
            if done >= len(self._script):
                where = "" if session is None else f" in session {session!r}"
                last = messages[-1].text[:80] if messages else ""
                raise WorkflowError(
                    f"ScriptedChatClient ran out of replies after {done} calls{where}; the last "
                    f"request was {last!r}; add replies to the script"
                )
            reply = self._script[done]
            self._next[session] = done + 1
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
            ScriptedRequest(
                tuple(messages), tuple(t.name for t in tools), options, current_session()
            )
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
