"""Magentic: a manager that plans with a task ledger and steers with a progress ledger.

The manager builds a task ledger (facts, then a plan), optionally has a person
review the plan, then loops: a progress ledger (structured JSON from its model)
says whether the request is satisfied, whether the team is looping or making
progress, who speaks next and with what instruction. Stalls are counted; too
many trigger a reset (re-plan with what was learned, a fresh conversation);
too many resets, or too many rounds, end the run with the best final answer.

Every manager call is built from the manager's own state (task, ledger,
conversation), which is its snapshot and so lives in checkpoints; a reset or
re-plan starts a new conversation, and participants keep nothing. Each model
call of the manager is a durable step of its handler call (`ctx.step`,
numbered in call order: `facts-1`, `plan-2`, `ledger-3`...), so a handler run
again after a failure does not ask the model again for what it already had.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._builder import WorkflowBuilder
from .._context import Context
from .._executor import Executor, handler, response_handler
from .._workflow import Workflow
from ..agents import Agent, ChatMessage, ChatOptions
from ._common import AgentStep, Progress, Start, last_text

__all__ = ["MagenticTask", "PlanReview", "PlanReviewRequest", "ProgressLedger", "magentic"]

FACTS_PROMPT = "List the facts given in the task, facts to look up, and educated guesses."
PLAN_PROMPT = "Write a short bullet plan for the team ({team}) to address the task."
PROGRESS_PROMPT = (
    "Task: {task}\nFacts: {facts}\nPlan: {plan}\nTeam: {team}\n"
    'Answer with JSON: {{"is_request_satisfied": bool, "is_in_loop": bool, '
    '"is_progress_being_made": bool, "next_speaker": name, "instruction": text}}.'
)
REPLAN_PROMPT = "We are stuck. Update the facts and the plan with what we learned so far."
FINAL_PROMPT = "Give the final answer to the task from the conversation so far."

LEDGER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "is_request_satisfied": {"type": "boolean"},
        "is_in_loop": {"type": "boolean"},
        "is_progress_being_made": {"type": "boolean"},
        "next_speaker": {"type": "string"},
        "instruction": {"type": "string"},
    },
    "required": ["is_request_satisfied", "is_in_loop", "is_progress_being_made", "next_speaker"],
}


@dataclass(frozen=True, slots=True)
class ProgressLedger:
    """The manager's assessment of one round."""

    is_request_satisfied: bool
    is_in_loop: bool
    is_progress_being_made: bool
    next_speaker: str
    instruction: str = ""

    @classmethod
    def parse(cls, text: str, team: Sequence[str]) -> ProgressLedger:
        """Read the ledger JSON from a model reply.

        Raises:
            ValueError: malformed JSON, missing fields, or an unknown speaker.
        """
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end < start:
            raise ValueError(f"the manager's progress ledger is not JSON: {text!r}")
        raw = json.loads(text[start : end + 1])
        if not isinstance(raw, dict):
            raise ValueError("the progress ledger is not a JSON object")
        data: dict[str, Any] = raw  # pyright: ignore[reportUnknownVariableType]
        ledger = cls(
            bool(data["is_request_satisfied"]),
            bool(data["is_in_loop"]),
            bool(data["is_progress_being_made"]),
            str(data.get("next_speaker", "")),
            str(data.get("instruction", "")),
        )
        if not ledger.is_request_satisfied and ledger.next_speaker not in team:
            raise ValueError(f"the manager chose {ledger.next_speaker!r}, not one of {list(team)}")
        return ledger


@dataclass(frozen=True, slots=True)
class PlanReviewRequest:
    """Asks a person to review the plan before the team starts."""

    task: str
    facts: str
    plan: str


@dataclass(frozen=True, slots=True)
class PlanReview:
    """A person's review of the plan: approve, or ask for changes."""

    approved: bool
    feedback: str = ""


@dataclass(frozen=True, slots=True)
class MagenticTask:
    """What a participant gets: the conversation so far and the manager's instruction."""

    conversation: tuple[ChatMessage, ...]
    instruction: str


@dataclass(frozen=True, slots=True)
class MagenticReply:
    """A participant's reply, back to the manager."""

    speaker: str
    messages: tuple[ChatMessage, ...]


class Worker(AgentStep):
    """A Magentic participant: answers the manager's instruction, keeps nothing."""

    @handler
    async def on_task(self, task: MagenticTask, ctx: Context[MagenticReply]) -> None:
        conversation = [
            *task.conversation,
            ChatMessage("user", ChatMessage.user(task.instruction).contents, "manager"),
        ]
        reply = await self.reply(conversation, ctx)
        await ctx.send(MagenticReply(self.id, reply.messages), to="manager")


class MagenticManager(Executor):
    """Plans, steers and ends a Magentic run; its state is its snapshot."""

    def __init__(
        self,
        agent: Agent,
        team: Sequence[str],
        *,
        max_rounds: int,
        max_stalls: int,
        max_resets: int,
        plan_review: bool,
    ) -> None:
        super().__init__(id="manager")
        self.agent = agent
        self.team = tuple(team)
        self.max_rounds = max_rounds
        self.max_stalls = max_stalls
        self.max_resets = max_resets
        self.plan_review = plan_review
        self.state: dict[str, Any] = self._fresh("")
        self._asked = 0  # model calls of the current handler call (names its steps)

    @staticmethod
    def _fresh(task: str) -> dict[str, Any]:
        return {
            "task": task,
            "facts": "",
            "plan": "",
            "conversation": [],
            "round": 0,
            "stalls": 0,
            "resets": 0,
        }

    async def _ask(
        self,
        ctx: Context[Any, Any],
        kind: str,
        messages: list[ChatMessage],
        schema: dict[str, Any] | None = None,
        check: Callable[[str], object] | None = None,
    ) -> str:
        """One model call, the durable step `<kind>-<n>` (n counts this handler call's asks).

        `check` runs inside the step: a reply it rejects is not recorded, so it is
        asked for again when the handler runs again.
        """
        self._asked += 1
        return await ctx.step(f"{kind}-{self._asked}", self._model, messages, schema, check)

    async def _model(
        self,
        messages: list[ChatMessage],
        schema: dict[str, Any] | None,
        check: Callable[[str], object] | None,
    ) -> str:
        options = ChatOptions(response_format=schema) if schema else None
        if self.agent.instructions:
            messages = [ChatMessage.system(self.agent.instructions), *messages]
        reply = await self.agent.client.get_response(messages, options=options)
        text = reply.message.text
        if check is not None:
            check(text)
        return text

    def _parse(self, text: str) -> ProgressLedger:
        return ProgressLedger.parse(text, self.team)

    async def _plan(self, ctx: Context[Any, Any], feedback: str = "") -> None:
        s = self.state
        team = ", ".join(self.team)
        task = [ChatMessage.user(s["task"])]
        if s["conversation"]:  # a re-plan learns from the conversation it then drops
            task = [*task, *s["conversation"], ChatMessage.user(REPLAN_PROMPT)]
        s["facts"] = await self._ask(ctx, "facts", [ChatMessage.system(FACTS_PROMPT), *task])
        extra = [ChatMessage.user(f"Reviewer feedback: {feedback}")] if feedback else []
        s["plan"] = await self._ask(
            ctx,
            "plan",
            [
                ChatMessage.system(PLAN_PROMPT.format(team=team)),
                *task,
                ChatMessage.assistant(s["facts"]),
                *extra,
            ],
        )
        s["conversation"] = []
        s["stalls"] = 0

    @handler
    async def on_task(
        self, conversation: list[ChatMessage], ctx: Context[MagenticTask, ChatMessage]
    ) -> None:
        self._asked = 0
        self.state = self._fresh(last_text(conversation))
        await self._plan(ctx)
        await self._after_plan(ctx)

    async def _after_plan(self, ctx: Context[Any, Any]) -> None:
        s = self.state
        await ctx.emit(Progress("magentic", s["round"], "manager", f"plan: {s['plan']}"))
        if self.plan_review:
            await ctx.request(
                PlanReviewRequest(s["task"], s["facts"], s["plan"]), response_type=PlanReview
            )
        else:
            await self._step(ctx)

    @response_handler
    async def on_plan_review(
        self,
        request: PlanReviewRequest,
        review: PlanReview,
        ctx: Context[MagenticTask, ChatMessage],
    ) -> None:
        self._asked = 0
        if review.approved:
            await self._step(ctx)
        else:
            await self._plan(ctx, review.feedback)
            await self._after_plan(ctx)

    @handler
    async def on_reply(self, reply: MagenticReply, ctx: Context[MagenticTask, ChatMessage]) -> None:
        self._asked = 0
        self.state["conversation"] = [*self.state["conversation"], *reply.messages]
        await self._step(ctx)

    async def _step(self, ctx: Context[Any, Any]) -> None:
        s = self.state
        if s["round"] >= self.max_rounds:
            return await self._finish(ctx, "round limit reached")
        prompt = PROGRESS_PROMPT.format(
            task=s["task"], facts=s["facts"], plan=s["plan"], team=", ".join(self.team)
        )
        messages = [ChatMessage.system(prompt), *s["conversation"]]
        text = await self._ask(ctx, "ledger", messages, LEDGER_SCHEMA, self._parse)
        ledger = self._parse(text)
        if ledger.is_request_satisfied:
            return await self._finish(ctx, "request satisfied")
        if ledger.is_in_loop or not ledger.is_progress_being_made:
            s["stalls"] += 1
        else:
            s["stalls"] = max(0, s["stalls"] - 1)
        if s["stalls"] > self.max_stalls:
            s["resets"] += 1
            if s["resets"] > self.max_resets:
                return await self._finish(ctx, "stalled too often")
            await ctx.emit(Progress("magentic", s["round"], "manager", "stalled: re-planning"))
            await self._plan(ctx)
            return await self._step(ctx)
        s["round"] += 1
        await ctx.emit(Progress("magentic", s["round"], ledger.next_speaker, ledger.instruction))
        task = MagenticTask(tuple(s["conversation"]), ledger.instruction)
        await ctx.send(task, to=ledger.next_speaker)

    async def _finish(self, ctx: Context[Any, Any], reason: str) -> None:
        s = self.state
        answer = await self._ask(
            ctx,
            "final",
            [ChatMessage.system(FINAL_PROMPT), ChatMessage.user(s["task"]), *s["conversation"]],
        )
        await ctx.emit(Progress("magentic", s["round"], "manager", f"finished: {reason}"))
        await ctx.yield_output(ChatMessage.assistant(answer, "manager"))

    async def snapshot(self) -> dict[str, Any]:
        """Task, ledger, conversation and counters."""
        return dict(self.state)

    async def restore(self, data: dict[str, Any]) -> None:
        """Put a snapshot back."""
        self.state = dict(data)


def magentic(
    participants: Sequence[Agent],
    *,
    manager: Agent,
    max_rounds: int = 20,
    max_stalls: int = 3,
    max_resets: int = 2,
    plan_review: bool = False,
    name: str = "magentic",
) -> Workflow[Any]:
    """A Magentic-One style team: a planning manager steering participant agents.

    The output is the manager's final answer (a `ChatMessage`). With `plan_review`,
    a person approves the plan (`PlanReviewRequest` answered with a `PlanReview`).
    """
    workers = [Worker(p) for p in participants]
    team = [w.id for w in workers]
    if len(set(team)) != len(team) or not team:
        raise ValueError(f"magentic() needs participants with unique names, got {team}")
    boss = MagenticManager(
        manager,
        team,
        max_rounds=max_rounds,
        max_stalls=max_stalls,
        max_resets=max_resets,
        plan_review=plan_review,
    )
    start = Start(id="input")
    builder = WorkflowBuilder[Any](start=start).add_edge(start, boss)
    for w in workers:
        builder.add_edge(boss, w).add_edge(w, boss)
    return builder.build(name=name, max_supersteps=2 * max_rounds + 20)
