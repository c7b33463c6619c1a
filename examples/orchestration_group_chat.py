"""Group chat: a manager agent picks who speaks next, with live progress events.

What it shows: `orchestrations.group_chat()` with an `Agent` manager returning
a structured choice (`{"next": name | null}`), a round limit, and `Progress`
events streamed as the chat goes.
"""

from __future__ import annotations

import asyncio
import json

from _models import model

from stepgraph.agents import Agent
from stepgraph.orchestrations import Progress, group_chat


def manager(messages, tools):  # type: ignore[no-untyped-def]
    spoken = [m.author for m in messages if m.role == "assistant"]
    order = ["designer", "engineer", "designer"]
    return json.dumps({"next": order[len(spoken)] if len(spoken) < len(order) else None})


def build():  # type: ignore[no-untyped-def]
    designer = Agent("designer", model(lambda m, t: f"design idea {len(m)}"))
    engineer = Agent("engineer", model(lambda m, t: "feasible with two sensors"))
    return group_chat([designer, engineer], manager=Agent("pm", model(manager)), max_rounds=6)


async def main() -> None:
    async for event in build().stream("Design a smart doorbell."):
        if isinstance(event, Progress):
            print(f"round {event.round}: {event.speaker}")
        elif hasattr(event, "value") and isinstance(event.value, list):
            print("OUTPUT", " / ".join(m.text for m in event.value[1:]))


if __name__ == "__main__":
    asyncio.run(main())
