"""Pieces every orchestration shares: the conversation on the wire, agent steps, reviews.

Orchestrations pass the whole conversation (`list[ChatMessage]`) from step to
step as the message, so participant steps keep no state of their own: the
conversation lives in the queued messages and the manager's snapshot, which
checkpoints store, and a resumed or reset run carries nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._context import Context
from .._events import Event
from .._executor import Executor, handler
from ..agents import Agent, AgentResponse, AgentUpdate, ChatMessage, ChatUpdate

__all__ = [
    "AgentStep",
    "Conversation",
    "Participant",
    "Review",
    "ReviewRequest",
    "Start",
    "agent_reply",
    "as_step",
    "last_text",
]

Conversation = list[ChatMessage]
"""What orchestration steps send each other: the conversation so far."""

Participant = Agent | Executor
"""An orchestration participant: an `Agent`, or an executor taking and sending a conversation."""


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """Asks a person to review the conversation (after `participant`, or before aggregating)."""

    conversation: tuple[ChatMessage, ...]
    participant: str = ""


@dataclass(frozen=True, slots=True)
class Review:
    """A person's review: approve, or send back with feedback."""

    approved: bool
    feedback: str = ""


class Start(Executor):
    """Turns the run's input (text, a message or messages) into a conversation.

    Args:
        id: the executor id.
        clear: shared-state keys of the orchestration, cleared for each new input.
    """

    def __init__(self, id: str, clear: Sequence[str] = ()) -> None:
        super().__init__(id=id)
        self.clear = tuple(clear)

    async def _start(self, conversation: Conversation, ctx: Context[Conversation]) -> None:
        for key in self.clear:
            ctx.state.delete(key)
        await ctx.send(conversation)

    @handler
    async def on_text(self, text: str, ctx: Context[Conversation]) -> None:
        await self._start([ChatMessage.user(text)], ctx)

    @handler
    async def on_message(self, message: ChatMessage, ctx: Context[Conversation]) -> None:
        await self._start([message], ctx)

    @handler
    async def on_messages(self, messages: list[ChatMessage], ctx: Context[Conversation]) -> None:
        await self._start(list(messages), ctx)


class AgentStep(Executor):
    """One agent's turn: reads the conversation, appends its reply, sends it on.

    Args:
        agent: the agent.
        id: the executor id (the agent's name by default).
        context: "full" shows the agent the whole conversation, "last" only the last message.
    """

    def __init__(
        self, agent: Agent, *, id: str | None = None, context: Literal["full", "last"] = "full"
    ) -> None:
        super().__init__(id=id or agent.name)
        self.agent = agent
        self.context = context

    @handler
    async def on_conversation(
        self, conversation: list[ChatMessage], ctx: Context[Conversation, Conversation]
    ) -> None:
        reply = await self.reply(conversation, ctx)
        await ctx.send([*conversation, *reply.messages])

    async def reply(
        self, conversation: Sequence[ChatMessage], ctx: Context[Any, Any]
    ) -> AgentResponse:
        """Run the agent on the conversation, streaming `AgentUpdate` events live."""
        view = list(conversation) if self.context == "full" else list(conversation[-1:])
        return await agent_reply(self.agent, self.id, view, ctx)


async def agent_reply(
    agent: Agent, executor_id: str, conversation: list[ChatMessage], ctx: Context[Any, Any]
) -> AgentResponse:
    """Run `agent` on `conversation`, streaming `AgentUpdate(executor_id, ...)` events live.

    Its model and tool calls are durable steps of the handler call (`ctx.step`):
    run again, finished calls are replayed from their records, emitting nothing.
    """

    async def forward(update: ChatUpdate) -> None:
        if update.text or update.function_calls:
            await ctx.emit(AgentUpdate(executor_id, agent.name, update.text, update.function_calls))

    return await agent.run(
        conversation, on_update=forward, step=ctx.step, idempotency_key=ctx.idempotency_key
    )


def as_step(participant: Participant, context: Literal["full", "last"] = "full") -> Executor:
    """An executor for a participant: agents get an `AgentStep`, executors stay as they are."""
    if isinstance(participant, Agent):
        return AgentStep(participant, context=context)
    return participant


def last_text(conversation: Sequence[ChatMessage]) -> str:
    """Text of the last message that has text."""
    for message in reversed(conversation):
        if message.text:
            return message.text
    return ""


@dataclass(frozen=True, slots=True)
class Progress(Event):
    """A step of an orchestration: who acts in which round, and why."""

    orchestration: str
    round: int
    speaker: str
    detail: str = ""


Termination = Callable[[Sequence[ChatMessage]], bool]
"""Ends an orchestration when it returns True for the conversation so far."""

__all__ += ["Progress", "Termination"]
