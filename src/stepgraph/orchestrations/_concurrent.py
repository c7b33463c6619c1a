"""The concurrent orchestration: every participant answers the same conversation at once.

Agent participants run as the items of a map (`WorkflowBuilder.add_map`):
`spread` sends one `Turn` per participant, in participant order; each turn is
one activation of a fresh `Participants` worker, which runs the agent the
turn names; the collector (the aggregator, or the review gate) gets their
conversations in participant order once every agent has answered. So each
agent's turn has its own events (with its item index), retry policy and
records (a failed agent runs again alone on `resume()`, its finished model
and tool calls replayed), and `max_concurrency` bounds how many agents call
their models at once.

Executor participants keep a static fan-out and fan-in: each is the
session's own instance of its executor (it may keep state), which a map's
fresh per-item workers are not.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._builder import WorkflowBuilder
from .._context import Context
from .._executor import Executor, handler, response_handler
from .._workflow import Workflow
from ..agents import Agent, ChatMessage
from ._common import Conversation, Participant, Review, ReviewRequest, Start, agent_reply, as_step

__all__ = ["Aggregate", "Participants", "Turn", "concurrent"]

Aggregate = Callable[[list[ChatMessage]], Any] | Callable[[list[ChatMessage]], Awaitable[Any]]
"""A custom aggregator: the participants' last replies, in order -> the run's output."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One participant's turn: an item of the map over the participants."""

    participant: str
    conversation: tuple[ChatMessage, ...]


class Spread(Executor):
    """Gives every participant the conversation: one `Turn` each, in participant order."""

    def __init__(self, id: str, participants: Sequence[str]) -> None:
        super().__init__(id=id)
        self.participants = tuple(participants)

    @handler
    async def on_conversation(
        self, conversation: list[ChatMessage], ctx: Context[list[Turn]]
    ) -> None:
        shared = tuple(conversation)
        await ctx.send([Turn(name, shared) for name in self.participants])


class Participants(Executor):
    """The map worker: runs the agent a `Turn` names and sends the conversation plus its reply.

    Its `AgentUpdate` events name the participant as their `executor_id`, as a
    participant's own `AgentStep` does.
    """

    def __init__(self, id: str, agents: Sequence[Agent]) -> None:
        super().__init__(id=id)
        self.agents = {a.name: a for a in agents}

    @handler
    async def on_turn(self, turn: Turn, ctx: Context[Conversation]) -> None:
        conversation = list(turn.conversation)
        agent = self.agents[turn.participant]
        reply = await agent_reply(agent, turn.participant, conversation, ctx)
        await ctx.send([*conversation, *reply.messages])


class Aggregator(Executor):
    """Joins the participants' conversations: by default the input plus each last reply."""

    def __init__(self, id: str, func: Aggregate | None = None) -> None:
        super().__init__(id=id)
        self.func = func

    @handler
    async def on_replies(self, replies: list[list[ChatMessage]], ctx: Context[None, Any]) -> None:
        last = [r[-1] for r in replies if r]
        if self.func is None:
            shared = _common_prefix(replies)
            await ctx.yield_output([*shared, *last])
            return
        result = self.func(last)
        if inspect.isawaitable(result):
            result = await result
        await ctx.yield_output(result)


class ConcurrentReview(Executor):
    """A person reviews all replies before aggregation; sent back, everyone answers again.

    Approved, the replies go to `aggregator`; sent back, the conversation with
    the feedback goes to `again` (None: along the gate's fan-out to the participants).
    """

    def __init__(self, id: str, aggregator: str, again: str | None = None) -> None:
        super().__init__(id=id)
        self.aggregator = aggregator
        self.again = again

    @handler
    async def on_replies(self, replies: list[list[ChatMessage]], ctx: Context[Any]) -> None:
        flat = [*_common_prefix(replies), *(r[-1] for r in replies if r)]
        await ctx.request(ReviewRequest(tuple(flat), "all"), response_type=Review)
        ctx.state.set(f"{self.id}.replies", [list(r) for r in replies])

    @response_handler
    async def on_review(self, request: ReviewRequest, review: Review, ctx: Context[Any]) -> None:
        replies: list[list[ChatMessage]] = ctx.state.get(f"{self.id}.replies", [])
        if review.approved:
            await ctx.send(replies, to=self.aggregator)
        else:
            base = _common_prefix(replies)
            feedback = ChatMessage("user", ChatMessage.user(review.feedback).contents, "reviewer")
            await ctx.send([*base, feedback], to=self.again)


def concurrent(
    participants: Sequence[Participant],
    *,
    aggregator: Aggregate | Executor | None = None,
    review: bool = False,
    max_concurrency: int | None = None,
    name: str = "concurrent",
    max_supersteps: int = 100,
) -> Workflow[Any]:
    """The input sent to every participant at once, their replies joined in participant order.

    The default aggregator outputs the input conversation plus each participant's
    last reply; a function gets the last replies and its result is the output; an
    executor gets `list[list[ChatMessage]]`. With `review`, a person approves the
    replies before aggregation or sends them back with feedback. Agents run as the
    items of a map, at most `max_concurrency` at once (None: all); executor
    participants are fanned out to (and `max_concurrency` does not apply).
    """
    if not participants:
        raise ValueError("concurrent() needs at least one participant")
    start = Start(id="input")
    agg = aggregator if isinstance(aggregator, Executor) else Aggregator("aggregate", aggregator)
    builder = WorkflowBuilder[Any](start=start)
    agents = [p for p in participants if isinstance(p, Agent)]
    if len(agents) < len(participants):
        _fan_out(builder, start, [as_step(p) for p in participants], agg, review)
        return builder.build(name=name, max_supersteps=max_supersteps)
    names = [a.name for a in agents]
    if len(set(names)) != len(names):
        raise ValueError(f"concurrent() needs participants with unique names, got {names}")
    spread, worker = Spread("spread", names), Participants("participants", agents)
    builder.add_edge(start, spread)
    if review:
        gate = ConcurrentReview("review", agg.id, spread.id)
        builder.add_map(spread, worker, gate, max_concurrency=max_concurrency)
        builder.add_edge(gate, agg).add_edge(gate, spread)
    else:
        builder.add_map(spread, worker, agg, max_concurrency=max_concurrency)
    return builder.build(name=name, max_supersteps=max_supersteps)


def _fan_out(
    builder: WorkflowBuilder[Any], start: Start, steps: list[Executor], agg: Executor, review: bool
) -> None:
    """The static form, for executor participants: fan-out to each, fan-in of their replies."""
    builder.add_fan_out(start, steps)
    if review:
        gate = ConcurrentReview("review", agg.id)
        builder.add_fan_in(steps, gate).add_edge(gate, agg).add_fan_out(gate, steps)
    else:
        builder.add_fan_in(steps, agg)


def _common_prefix(replies: Sequence[Sequence[ChatMessage]]) -> list[ChatMessage]:
    """The messages every reply starts with: the conversation the participants were given."""
    if not replies:
        return []
    prefix: list[ChatMessage] = []
    for group in zip(*(r[:-1] for r in replies), strict=False):
        if all(m == group[0] for m in group):
            prefix.append(group[0])
        else:
            break
    return prefix
