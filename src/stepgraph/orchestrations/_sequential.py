"""Sequential and concurrent orchestrations."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from .._builder import WorkflowBuilder
from .._context import Context
from .._executor import Executor, handler, response_handler
from .._workflow import Workflow
from ..agents import ChatMessage
from ._common import Conversation, Participant, Review, ReviewRequest, Start, as_step

__all__ = ["Finish", "ReviewGate", "concurrent", "sequential"]


class Finish(Executor):
    """Outputs the conversation it receives: the end of an orchestration."""

    @handler
    async def on_conversation(
        self, conversation: list[ChatMessage], ctx: Context[None, Conversation]
    ) -> None:
        await ctx.yield_output(list(conversation))


class ReviewGate(Executor):
    """Asks a person to review the conversation after `participant`.

    Approved, the conversation goes to `next_id`; sent back, the feedback is
    appended as a user message and the participant takes another turn.
    """

    def __init__(self, id: str, participant: str, next_id: str) -> None:
        super().__init__(id=id)
        self.participant = participant
        self.next_id = next_id

    @handler
    async def on_conversation(
        self, conversation: list[ChatMessage], ctx: Context[Conversation]
    ) -> None:
        await ctx.request(
            ReviewRequest(tuple(conversation), self.participant), response_type=Review
        )

    @response_handler
    async def on_review(
        self, request: ReviewRequest, review: Review, ctx: Context[Conversation]
    ) -> None:
        conversation = list(request.conversation)
        if review.approved:
            await ctx.send(conversation, to=self.next_id)
        else:
            feedback = ChatMessage("user", ChatMessage.user(review.feedback).contents, "reviewer")
            await ctx.send([*conversation, feedback], to=self.participant)


def sequential(
    participants: Sequence[Participant],
    *,
    context: Literal["full", "last"] = "full",
    review_after: Sequence[str] = (),
    name: str = "sequential",
    max_supersteps: int = 100,
) -> Workflow[Any]:
    """Participants in a chain, each seeing the conversation so far (or only the last reply).

    The output is the final conversation. `review_after` names participants after
    whose turn a person reviews (`ReviewRequest` answered with a `Review`).
    """
    if not participants:
        raise ValueError("sequential() needs at least one participant")
    steps = [as_step(p, context) for p in participants]
    unknown = set(review_after) - {s.id for s in steps}
    if unknown:
        raise ValueError(f"review_after names unknown participants {sorted(unknown)}")
    start, finish = Start(id="input"), Finish(id="output")
    builder = WorkflowBuilder[Any](start=start).add_edge(start, steps[0])
    for i, step in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else finish
        if step.id in review_after:
            gate = ReviewGate(f"review:{step.id}", step.id, nxt.id)
            builder.add_edge(step, gate).add_edge(gate, nxt).add_edge(gate, step)
        else:
            builder.add_edge(step, nxt)
    return builder.build(name=name, max_supersteps=max_supersteps)


Aggregate = Callable[[list[ChatMessage]], Any] | Callable[[list[ChatMessage]], Awaitable[Any]]
"""A custom aggregator: the participants' last replies, in order -> the run's output."""


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
    """A person reviews all replies before aggregation; sent back, everyone answers again."""

    def __init__(self, id: str, aggregator: str) -> None:
        super().__init__(id=id)
        self.aggregator = aggregator

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
            await ctx.send(
                [*base, ChatMessage("user", ChatMessage.user(review.feedback).contents, "reviewer")]
            )


def concurrent(
    participants: Sequence[Participant],
    *,
    aggregator: Aggregate | Executor | None = None,
    review: bool = False,
    name: str = "concurrent",
    max_supersteps: int = 100,
) -> Workflow[Any]:
    """The input fanned out to every participant, their replies joined in participant order.

    The default aggregator outputs the input conversation plus each participant's
    last reply; a function gets the last replies and its result is the output; an
    executor gets `list[list[ChatMessage]]`. With `review`, a person approves the
    replies before aggregation or sends them back with feedback.
    """
    if not participants:
        raise ValueError("concurrent() needs at least one participant")
    steps = [as_step(p) for p in participants]
    start = Start(id="input")
    agg = aggregator if isinstance(aggregator, Executor) else Aggregator("aggregate", aggregator)
    builder = WorkflowBuilder[Any](start=start).add_fan_out(start, steps)
    if review:
        gate = ConcurrentReview("review", agg.id)
        builder.add_fan_in(steps, gate).add_edge(gate, agg).add_fan_out(gate, steps)
    else:
        builder.add_fan_in(steps, agg)
    return builder.build(name=name, max_supersteps=max_supersteps)


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
