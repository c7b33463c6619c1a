"""Group chat: a manager picks the next speaker each round.

A manager agent's model call is a durable step (`ctx.step`) of the manager's
handler call, like every participant agent's model and tool calls.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._builder import WorkflowBuilder
from .._context import Context
from .._executor import Executor, handler, response_handler
from .._workflow import Workflow
from ..agents import Agent, ChatMessage, ChatOptions
from ._common import (
    Conversation,
    Participant,
    Progress,
    Review,
    ReviewRequest,
    Start,
    Termination,
    as_step,
)
from ._sequential import Finish

__all__ = ["GroupChatState", "group_chat", "parse_choice"]

_ROUND = "group_chat.round"


@dataclass(frozen=True, slots=True)
class GroupChatState:
    """What a speaker-selection function sees."""

    conversation: tuple[ChatMessage, ...]
    round: int
    participants: tuple[str, ...]


Selector = Callable[[GroupChatState], str | None]
"""Returns the next speaker's name, or None to end the chat."""

CHOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"next": {"type": ["string", "null"]}, "reason": {"type": "string"}},
    "required": ["next"],
}


def parse_choice(text: str, participants: Sequence[str]) -> str | None:
    """Read a manager agent's structured choice `{"next": name | null}`.

    Raises:
        ValueError: the text is not such a JSON object, or names no participant.
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError(f"the manager did not answer with a JSON object: {text!r}")
    choice: Any = json.loads(text[start : end + 1])
    if not isinstance(choice, dict):
        raise ValueError(f"the manager did not answer with a JSON object: {text!r}")
    nxt: object = typing.cast(dict[str, object], choice).get("next")
    if nxt is None:
        return None
    if nxt not in participants:
        raise ValueError(f"the manager chose {nxt!r}, not one of {list(participants)}")
    return str(nxt)


class Manager(Executor):
    """Picks the next speaker, or ends the chat (after an optional human review)."""

    def __init__(
        self,
        id: str,
        participants: Sequence[str],
        select: Selector | Agent,
        *,
        max_rounds: int,
        termination: Termination | None,
        review: bool,
    ) -> None:
        super().__init__(id=id)
        self.participants = tuple(participants)
        self.select = select
        self.max_rounds = max_rounds
        self.termination = termination
        self.review = review

    @handler
    async def on_conversation(
        self, conversation: list[ChatMessage], ctx: Context[Conversation, Conversation]
    ) -> None:
        round_ = int(ctx.state.get(_ROUND, 0))
        done = round_ >= self.max_rounds or bool(
            self.termination and self.termination(conversation)
        )
        speaker = None if done else await self._choose(conversation, round_, ctx)
        if speaker is None:
            if self.review:
                await ctx.request(ReviewRequest(tuple(conversation), self.id), response_type=Review)
            else:
                await ctx.send(list(conversation), to="output")
            return
        ctx.state.set(_ROUND, round_ + 1)
        await ctx.emit(Progress("group_chat", round_ + 1, speaker))
        await ctx.send(list(conversation), to=speaker)

    @response_handler
    async def on_review(
        self, request: ReviewRequest, review: Review, ctx: Context[Conversation, Conversation]
    ) -> None:
        conversation = list(request.conversation)
        if review.approved:
            await ctx.send(conversation, to="output")
            return
        ctx.state.set(_ROUND, 0)  # a new budget of rounds to act on the feedback
        feedback = ChatMessage("user", ChatMessage.user(review.feedback).contents, "reviewer")
        await self.on_conversation([*conversation, feedback], ctx)

    async def _choose(
        self, conversation: list[ChatMessage], round_: int, ctx: Context[Any, Any]
    ) -> str | None:
        if not isinstance(self.select, Agent):
            return self.select(GroupChatState(tuple(conversation), round_, self.participants))
        roster = ", ".join(self.participants)
        prompt = [
            ChatMessage.system(
                f"You manage a group chat between: {roster}. Reply with JSON "
                '{"next": <name or null when the task is done>, "reason": <why>}.'
            ),
            *conversation,
        ]
        # A durable step: run again, a recorded choice is not asked for again; the reply is
        # parsed inside it, so an unusable reply is not recorded and is asked for again.
        return await ctx.step(f"{self.select.name}/choose", self._ask, self.select, prompt)

    async def _ask(self, manager: Agent, prompt: list[ChatMessage]) -> str | None:
        options = ChatOptions(response_format=CHOICE_SCHEMA)
        reply = await manager.client.get_response(prompt, options=options)
        return parse_choice(reply.message.text, self.participants)


def group_chat(
    participants: Sequence[Participant],
    *,
    manager: Selector | Agent,
    max_rounds: int = 10,
    termination: Termination | None = None,
    review: bool = False,
    name: str = "group_chat",
) -> Workflow[Any]:
    """A manager picks who speaks each round until it ends the chat or limits are hit.

    `manager` is a function over `GroupChatState` returning a participant name (or
    None to finish), or an `Agent` whose reply is the JSON `{"next": name | null}`.
    Each round emits a `Progress` event. With `review`, a person approves the final
    conversation or sends it back with feedback.
    """
    steps = [as_step(p) for p in participants]
    names = [s.id for s in steps]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"group_chat() needs participants with unique names, got {names}")
    boss = Manager(
        "manager", names, manager, max_rounds=max_rounds, termination=termination, review=review
    )
    start = Start(id="input", clear=[_ROUND])
    builder = (
        WorkflowBuilder[Any](start=start).add_edge(start, boss).add_edge(boss, Finish(id="output"))
    )
    for step in steps:
        builder.add_edge(boss, step).add_edge(step, boss)
    return builder.build(name=name, max_supersteps=4 * max_rounds + 20)
