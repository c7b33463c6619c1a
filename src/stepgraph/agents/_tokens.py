"""`ReplyStream`: agents' tokens in a run's events, as replies that open, grow and close.

A run's event stream carries each agent's reply twice: live, as `AgentUpdate`
tokens (from agents anywhere below the run: inside sub-workflows as
`SubWorkflowEvent`s, in orchestrations under the participant's id), and whole,
in the `Output` that ends the turn (an `AgentResponse`, a `ChatMessage` or a
conversation). A consumer that shows the tokens must not show the reply again,
and one that shows outputs must not lose a reply that streamed nothing (a
model call replayed on resume, an agent with `stream=False`).

`ReplyStream.feed(event)` turns each event into steps, a pure function of the
events seen so far:

* `ReplyOpened` / `ReplyDelta` / `ReplyClosed`: one reply per agent and
  executor path, opened by its first token; it closes when the agent's model
  call ends in tool calls, when an output claims it, and at the end of the
  superstep (where every agent's turn ends), so the next turn is a new reply.
* `OutputText(value, texts)`: an output to show. `texts is None`: nothing
  was streamed for it, show the value whole. Otherwise `texts` holds the
  assistant texts of the output that no streamed reply showed (often none).

An output's assistant message is *claimed* by a streamed reply with exactly
its text, or, when the rest of its messages' texts joined is one reply's text
(an agent that streamed several replies as one, such as a `WorkflowAgent`),
by that reply. Each reply is claimed at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from .._events import Event, Output, RunCompleted, SubWorkflowEvent, SuperstepCompleted
from ._agent import AgentResponse
from ._executor import AgentUpdate
from ._messages import ChatMessage

__all__ = [
    "OutputText",
    "ReplyClosed",
    "ReplyDelta",
    "ReplyOpened",
    "ReplyStep",
    "ReplyStream",
    "agent_update",
    "reply_texts",
]


@dataclass(frozen=True, slots=True)
class ReplyOpened:
    """A streamed reply starts: `reply` numbers it within the stream."""

    reply: int
    executor_id: str
    agent: str


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    """A token of reply `reply`."""

    reply: int
    text: str


@dataclass(frozen=True, slots=True)
class ReplyClosed:
    """Reply `reply` is complete; `text` is its tokens joined."""

    reply: int
    text: str


@dataclass(frozen=True, slots=True)
class OutputText:
    """An output to show: whole (`texts is None`) or only the texts no reply streamed."""

    value: Any
    texts: tuple[str, ...] | None


ReplyStep = ReplyOpened | ReplyDelta | ReplyClosed | OutputText
"""What `ReplyStream.feed` returns for an event, in order."""


def agent_update(event: Event) -> tuple[str, AgentUpdate] | None:
    """`(executor path, update)` of an `AgentUpdate`, unwrapped from sub-workflow events
    (path `"<subworkflow id>/<child executor id>"`), or None for any other event.
    """
    prefix = ""
    while isinstance(event, SubWorkflowEvent):
        prefix += event.executor_id + "/"
        event = event.event
    if isinstance(event, AgentUpdate):
        return prefix + event.executor_id, event
    return None


def reply_texts(value: Any) -> list[str] | None:
    """The assistant texts of an agent output (an `AgentResponse`, a `ChatMessage`, a
    list or tuple of them), or None when `value` is not one.
    """
    if isinstance(value, AgentResponse):
        return [m.text for m in value.messages if m.role == "assistant" and m.text]
    if isinstance(value, ChatMessage):
        return [value.text] if value.text else []
    if isinstance(value, list | tuple) and value:
        items = cast(Sequence[Any], value)
        if all(isinstance(m, ChatMessage | AgentResponse) for m in items):
            return [t for m in items for t in reply_texts(m) or () if _assistant(m)]
    return None


def _assistant(item: ChatMessage | AgentResponse) -> bool:
    return isinstance(item, AgentResponse) or item.role == "assistant"


@dataclass(eq=False, slots=True)
class _Reply:
    number: int
    parts: list[str] = field(default_factory=list[str])
    open: bool = True

    @property
    def text(self) -> str:
        return "".join(self.parts)


class ReplyStream:
    """Follows the token streams of one run's events; see the module docstring."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], _Reply] = {}
        self._unclaimed: list[_Reply] = []
        self._count = 0

    def feed(self, event: Event) -> list[ReplyStep]:
        """The steps `event` makes (none for events that neither stream nor output)."""
        found = agent_update(event)
        if found is not None:
            return self._update(found[0], found[1])
        if isinstance(event, Output):
            return self._claim(event.value)
        if isinstance(event, SuperstepCompleted | RunCompleted):
            return self.close_all()
        return []

    def close_all(self) -> list[ReplyStep]:
        """Close every open reply (the superstep or the stream ended)."""
        steps: list[ReplyStep] = []
        for reply in self._open.values():
            reply.open = False
            steps.append(ReplyClosed(reply.number, reply.text))
        self._open.clear()
        return steps

    def _update(self, path: str, update: AgentUpdate) -> list[ReplyStep]:
        key = (path, update.agent)
        steps: list[ReplyStep] = []
        reply = self._open.get(key)
        if update.text:
            if reply is None:
                reply = self._open[key] = _Reply(self._count)
                self._count += 1
                self._unclaimed.append(reply)
                steps.append(ReplyOpened(reply.number, path, update.agent))
            reply.parts.append(update.text)
            steps.append(ReplyDelta(reply.number, update.text))
        if update.function_calls and reply is not None:
            steps += self._close(key)  # the model call ended in tool calls: its reply is done
        return steps

    def _close(self, key: tuple[str, str]) -> list[ReplyStep]:
        reply = self._open.pop(key)
        reply.open = False
        return [ReplyClosed(reply.number, reply.text)]

    def _claim(self, value: Any) -> list[ReplyStep]:
        texts = reply_texts(value)
        if texts is None or not self._unclaimed:
            return [OutputText(value, None)]
        claimed: list[_Reply] = []
        rest: list[str] = []
        for text in texts:
            reply = next((r for r in self._unclaimed if r.text == text), None)
            if reply is None:
                rest.append(text)
            else:
                self._unclaimed.remove(reply)
                claimed.append(reply)
        joined = "".join(rest)
        whole = next((r for r in self._unclaimed if joined and r.text == joined), None)
        if whole is not None:
            self._unclaimed.remove(whole)
            claimed.append(whole)
            rest = []
        if not claimed:
            return [OutputText(value, None)]
        steps: list[ReplyStep] = []
        for key, reply in list(self._open.items()):
            if reply in claimed:
                steps += self._close(key)
        if rest:
            steps.append(OutputText(value, tuple(rest)))
        return steps
