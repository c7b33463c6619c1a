"""Magentic orchestration: a manager plans, steers a team, detects a stall and re-plans.

What it shows: `orchestrations.magentic()`: the task ledger (facts, plan), the
progress ledger deciding who acts next with what instruction, stall detection
followed by re-planning, a person reviewing the plan, and the final answer.
"""

from __future__ import annotations

import asyncio
import json

from _models import model

from stepgraph.agents import Agent
from stepgraph.orchestrations import PlanReview, Progress, magentic


def manager(messages, tools):  # type: ignore[no-untyped-def]
    system = messages[0].text
    if system.startswith("List the facts"):
        return "Facts: the dataset is a CSV of 3 columns."
    if system.startswith("Write a short bullet plan"):
        stuck = any("We are stuck" in m.text for m in messages)
        return (
            "v2: analyst computes the mean directly" if stuck else "v1: researcher loads the data"
        )
    if system.startswith("Give the final answer"):
        return "The mean is 42."
    turns = [m.author for m in messages if m.role == "assistant"]
    ledger = {"is_request_satisfied": False, "is_in_loop": False, "is_progress_being_made": True}
    if "v1:" in system:  # the first plan: the researcher ends up repeating itself, a stall
        stalled = bool(turns)
        ledger.update(next_speaker="researcher", instruction="Load data.csv", is_in_loop=stalled)
    elif "analyst" not in turns:  # the re-plan: go straight to the analyst
        ledger.update(next_speaker="analyst", instruction="Compute the mean of column b")
    else:
        ledger.update(is_request_satisfied=True, next_speaker="analyst")
    return json.dumps(ledger)


def build():  # type: ignore[no-untyped-def]
    team = [
        Agent("researcher", model(lambda m, t: "Loaded 100 rows.")),
        Agent("analyst", model(lambda m, t: "Mean of column b: 42.")),
    ]
    return magentic(team, manager=Agent("manager", model(manager)), max_stalls=0, plan_review=True)


async def main() -> None:
    session = build().session()
    result = await session.run("What is the mean of column b in data.csv?")
    while result.pending_requests:
        request = result.pending_requests[0]
        print("plan to review:", request.payload.plan.replace("\n", " "))
        result = await session.respond({request.id: PlanReview(True)})
    for event in result.events:
        if isinstance(event, Progress):
            print(f"round {event.round} {event.speaker}: {event.detail[:60]}")
    print("OUTPUT", result.outputs[0].text)


if __name__ == "__main__":
    asyncio.run(main())
