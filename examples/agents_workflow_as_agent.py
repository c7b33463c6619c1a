"""A workflow used as an agent inside another workflow.

What it shows: `Workflow.as_agent()` giving a whole workflow (here a
researcher agent followed by a summarizer) the `Agent` interface, so an
`AgentExecutor` in an outer workflow drives it; each outer session gets its
own inner session. Offline with scripted models; set OPENAI_API_KEY or
OPENAI_BASE_URL for a real one.
"""

from __future__ import annotations

import asyncio

from _models import model

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, AgentResponse


def research_team() -> sg.Workflow[str]:
    researcher = Agent("researcher", model(lambda m, t: f"Notes on {m[-1].text}: three facts."))
    summarizer = Agent("summarizer", model(lambda m, t: f"Summary: {m[-1].text.split(':', 1)[0]}."))
    return (
        sg.WorkflowBuilder[str](start=AgentExecutor(researcher))
        .add_edge("researcher", AgentExecutor(summarizer))
        .build(name="research-team")
    )


def build() -> sg.Workflow[str]:
    team = AgentExecutor(research_team().as_agent("research-team"), id="team")

    @sg.executor(id="report")
    async def report(response: AgentResponse, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"{response.agent} says: {response.text}")

    return sg.WorkflowBuilder[str](start=team).add_edge(team, report).build(name="desk")


async def main() -> None:
    desk = build()
    for topic in ("tidal power", "heat pumps"):
        result = await desk.session(topic).run(topic)
        for value in result.outputs:
            print("OUTPUT", value)


if __name__ == "__main__":
    asyncio.run(main())
