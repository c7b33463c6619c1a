"""Chat messages and their typed contents, all frozen dataclasses that `serde` round-trips."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ApprovalRequest",
    "ApprovalResponse",
    "ChatMessage",
    "Content",
    "FunctionCall",
    "FunctionResult",
    "Role",
    "TextContent",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class TextContent:
    """Plain text."""

    text: str


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A model asking to call a tool.

    Attributes:
        call_id: id pairing the call with its `FunctionResult`.
        name: the tool name.
        arguments: the parsed JSON arguments.
    """

    call_id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict[str, Any])


@dataclass(frozen=True, slots=True)
class FunctionResult:
    """The result of a tool call (or the error it raised, as text)."""

    call_id: str
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A tool call that waits for a person's approval before it runs."""

    call: FunctionCall
    agent: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalResponse:
    """A person's answer to an `ApprovalRequest`."""

    approved: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by a model."""

    input_tokens: int = 0
    output_tokens: int = 0


Content = TextContent | FunctionCall | FunctionResult | ApprovalRequest | ApprovalResponse | Usage
"""Every kind of content a message may hold."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation: a role, typed contents, and who wrote it.

    Attributes:
        role: system, user, assistant or tool.
        contents: the message's contents, in order.
        author: the agent (or person) that wrote it, when known.
    """

    role: Role
    contents: tuple[Content, ...] = ()
    author: str | None = None

    @classmethod
    def user(cls, text: str) -> ChatMessage:
        """A user message with one text content."""
        return cls("user", (TextContent(text),))

    @classmethod
    def system(cls, text: str) -> ChatMessage:
        """A system message with one text content."""
        return cls("system", (TextContent(text),))

    @classmethod
    def assistant(cls, text: str, author: str | None = None) -> ChatMessage:
        """An assistant message with one text content."""
        return cls("assistant", (TextContent(text),), author)

    @property
    def text(self) -> str:
        """The text contents joined together."""
        return "".join(c.text for c in self.contents if isinstance(c, TextContent))

    @property
    def function_calls(self) -> list[FunctionCall]:
        """The function calls this message holds."""
        return [c for c in self.contents if isinstance(c, FunctionCall)]
