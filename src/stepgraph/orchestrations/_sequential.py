"""The sequential orchestration, and the pieces other orchestrations share with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from .._builder import WorkflowBuilder
from .._context import Context
from .._executor import Executor, handler, response_handler
from .._workflow import Workflow
from ..agents import ChatMessage
from ._common import Conversation, Participant, Review, ReviewRequest, Start, as_step

__all__ = ["Finish", "ReviewGate", "sequential"]


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
