"""Handoff: agents pass the conversation to each other through handoff tools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._builder import WorkflowBuilder
from .._context import Context
from .._events import Event
from .._executor import handler, response_handler
from .._workflow import Workflow
from ..agents import Agent, ChatMessage, Tool
from ._common import AgentStep, Conversation, Start, Termination
from ._sequential import Finish

__all__ = ["Handoff", "UserInputRequest", "handoff"]

_TURNS = "handoff.turns"


@dataclass(frozen=True, slots=True)
class Handoff(Event):
    """An agent handed the conversation to another."""

    source: str
    target: str


@dataclass(frozen=True, slots=True)
class UserInputRequest:
    """An agent answered without handing off: what does the user say next?"""

    conversation: tuple[ChatMessage, ...]
    agent: str


def _handoff_tool(target: str, description: str) -> Tool:
    def transfer() -> str:
        return f"handed off to {target}"

    return Tool(
        transfer,
        name=f"handoff_to_{target}",
        description=f"Hand the conversation to {target}. {description}".strip(),
        ends_turn=True,
    )


class HandoffStep(AgentStep):
    """One agent of a handoff orchestration."""

    def __init__(
        self,
        agent: Agent,
        targets: Sequence[str],
        descriptions: Mapping[str, str],
        *,
        mode: Literal["interactive", "autonomous"],
        max_turns: int,
        termination: Termination | None,
    ) -> None:
        tools = [_handoff_tool(t, descriptions.get(t, "")) for t in targets]
        super().__init__(agent.with_tools(tools), id=agent.name)
        self.targets = list(targets)
        self.descriptions = dict(descriptions)
        self.mode = mode
        self.max_turns = max_turns
        self.termination = termination

    @handler
    async def on_conversation(
        self, conversation: list[ChatMessage], ctx: Context[Conversation, Conversation]
    ) -> None:
        await self._turn(list(conversation), ctx)

    @response_handler
    async def on_user(
        self, request: UserInputRequest, answer: str, ctx: Context[Conversation]
    ) -> None:
        await self._turn([*request.conversation, ChatMessage.user(answer)], ctx)

    async def _turn(self, conversation: list[ChatMessage], ctx: Context[Any, Any]) -> None:
        turns = int(ctx.state.get(_TURNS, 0)) + 1
        ctx.state.set(_TURNS, turns)
        reply = await self.reply(conversation, ctx)
        conversation = [*conversation, *reply.messages]
        target = next(
            (
                c.name.removeprefix("handoff_to_")
                for m in reply.messages
                for c in m.function_calls
                if c.name.removeprefix("handoff_to_") in self.targets
            ),
            None,
        )
        if target is not None and turns < self.max_turns:
            await ctx.emit(Handoff(self.id, target))
            await ctx.send(conversation, to=target)
        elif turns >= self.max_turns or (self.termination and self.termination(conversation)):
            await ctx.send(conversation, to="output")
        elif self.mode == "interactive":
            await ctx.request(UserInputRequest(tuple(conversation), self.id), response_type=str)
        else:
            await ctx.send(conversation, to=self.id)


def handoff(
    agents: Sequence[Agent],
    *,
    start: str | None = None,
    topology: Mapping[str, Sequence[str]] | None = None,
    descriptions: Mapping[str, str] | None = None,
    mode: Literal["interactive", "autonomous"] = "interactive",
    max_turns: int = 10,
    termination: Termination | None = None,
    name: str = "handoff",
) -> Workflow[Any]:
    """Agents that hand the conversation to each other with `handoff_to_<name>` tools.

    Args:
        agents: the agents (names must be unique).
        start: the agent that takes the input (the first by default).
        topology: who may hand off to whom; a full mesh by default.
        descriptions: what each agent is for, shown in the handoff tools.
        mode: when an agent answers without handing off, "interactive" asks the user
            (a `UserInputRequest` answered with a string) and "autonomous" lets it go on.
        max_turns: agent turns per run before the conversation is output.
        termination: ends the run when it returns True for the conversation.
        name: the workflow name.
    """
    names = [a.name for a in agents]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"handoff() needs agents with unique names, got {names}")
    graph = {n: [m for m in names if m != n] for n in names} if topology is None else topology
    steps = {
        a.name: HandoffStep(
            a,
            graph.get(a.name, []),
            descriptions or {},
            mode=mode,
            max_turns=max_turns,
            termination=termination,
        )
        for a in agents
    }
    first = steps[start or names[0]]
    input_ = Start(id="input", clear=[_TURNS])
    builder = WorkflowBuilder[Any](start=input_).add_edge(input_, first)
    finish = Finish(id="output")
    for n, step in steps.items():
        for target in graph.get(n, []):
            builder.add_edge(step, steps[target])
        builder.add_edge(step, finish)
        if mode == "autonomous":
            builder.add_edge(step, step)
    return builder.build(name=name, max_supersteps=max(4 * max_turns + 10, 100))
