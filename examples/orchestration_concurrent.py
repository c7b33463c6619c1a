"""Concurrent orchestration: three analysts answer at once, a function aggregates.

What it shows: `orchestrations.concurrent()` fanning one question out to
several agents that run in the same superstep, joining their replies in
participant order, and a custom aggregator function over the replies.
"""

from __future__ import annotations

import asyncio

from _models import model

from stepgraph.agents import Agent, ChatMessage
from stepgraph.orchestrations import concurrent


def verdict(replies: list[ChatMessage]) -> str:
    votes = [r.text.split(":")[0] for r in replies]
    names = ", ".join(r.author or "" for r in replies)
    return f"{votes.count('BUY')} of {len(votes)} say BUY ({names})"


def build():  # type: ignore[no-untyped-def]
    analysts = [
        Agent("growth", model(lambda m, t: "BUY: revenue doubles")),
        Agent("value", model(lambda m, t: "HOLD: priced in")),
        Agent("risk", model(lambda m, t: "BUY: low debt")),
    ]
    return concurrent(analysts, aggregator=verdict, name="analysts")


async def main() -> None:
    result = await build().run("Should we buy ACME?")
    print("OUTPUT", result.outputs[0])


if __name__ == "__main__":
    asyncio.run(main())
