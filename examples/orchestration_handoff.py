"""Handoff orchestration: triage hands a customer to billing, who asks the user.

What it shows: `orchestrations.handoff()` giving each agent `handoff_to_<name>`
tools, `Handoff` events, interactive mode (an agent that answers without
handing off asks the user with a `UserInputRequest`), and a termination condition.
"""

from __future__ import annotations

import asyncio

from _models import model

import stepgraph as sg
from stepgraph.agents import Agent, FunctionCall
from stepgraph.orchestrations import Handoff, handoff


def triage(messages, tools):  # type: ignore[no-untyped-def]
    return (
        FunctionCall("", "handoff_to_billing", {})
        if "charged" in messages[-1].text
        else "Anything else?"
    )


def billing(messages, tools):  # type: ignore[no-untyped-def]
    users = [m.text for m in messages if m.role == "user"]
    return f"Refund issued for {users[-1]}. Done." if len(users) > 1 else "Which order was it?"


def build() -> sg.Workflow:
    agents = [Agent("triage", model(triage)), Agent("billing", model(billing))]
    return handoff(agents, mode="interactive", termination=lambda m: m[-1].text.endswith("Done."))


async def main() -> None:
    session = build().session()
    result = await session.run("I was charged twice")
    for event in result.events:
        if isinstance(event, Handoff):
            print(f"handoff: {event.source} -> {event.target}")
    while result.pending_requests:
        request = result.pending_requests[0]
        print(f"{request.payload.agent} asks: {request.payload.conversation[-1].text}")
        result = await session.respond({request.id: "order 1042"})
    print("OUTPUT", result.outputs[0][-1].text)


if __name__ == "__main__":
    asyncio.run(main())
