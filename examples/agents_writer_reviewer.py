"""A writer and a reviewer agent in a loop until the reviewer approves.

What it shows: `Agent` + `AgentExecutor` (one conversation per session),
`AgentUpdate` events streamed live while a model answers, conditional edges
on an agent's reply, and the final `AgentResponse` as the run's output.
Offline with scripted models; set OPENAI_API_KEY or OPENAI_BASE_URL for a real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from _models import model

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, AgentResponse, AgentUpdate, ChatMessage, ToolSpec


def reviewer_script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    drafts = [m for m in messages if m.author == "writer"]
    return f"APPROVED: {drafts[-1].text}" if len(drafts) >= 2 else "Too long; cut it in half."


def approved(response: AgentResponse) -> bool:
    return "APPROVED" in response.text


def build() -> sg.Workflow[str]:
    writer = Agent(
        "writer",
        model(
            [
                "Supersteps make agent workflows predictable, durable and fast.",
                "Supersteps: predictable, durable, fast.",
            ]
        ),
        instructions="Write one sentence for a landing page; revise it when reviewed.",
    )
    reviewer = Agent(
        "reviewer",
        model(reviewer_script),
        instructions="Review the sentence. Start with APPROVED when it is good.",
    )

    @sg.executor(id="publish")
    async def publish(response: AgentResponse, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(response.text.removeprefix("APPROVED: "))

    w, r = AgentExecutor(writer), AgentExecutor(reviewer)
    return (
        sg.WorkflowBuilder[str](start=w)
        .add_edge(w, r)
        .add_edge(r, w, when=lambda resp: not approved(resp))
        .add_edge(r, publish, when=approved)
        .build(name="writer-reviewer")
    )


async def main() -> None:
    speaker = None
    async for event in build().stream("Pitch stepgraph."):
        if isinstance(event, AgentUpdate):
            if event.agent != speaker:
                speaker = event.agent
                print(f"\n[{speaker}] ", end="")
            print(event.text, end="", flush=True)
        elif isinstance(event, sg.Output):
            print("\nOUTPUT", event.value)


if __name__ == "__main__":
    asyncio.run(main())
