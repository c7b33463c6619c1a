"""Sequential orchestration: a researcher, a writer and an editor, with a human review.

What it shows: `orchestrations.sequential()` chaining agents over one shared
conversation, a person reviewing the writer's draft (`ReviewRequest` answered
with a `Review`) and sending it back once, and the final conversation as output.
"""

from __future__ import annotations

import asyncio

from _models import model

from stepgraph.agents import Agent
from stepgraph.orchestrations import Review, sequential


def build():  # type: ignore[no-untyped-def]
    researcher = Agent(
        "researcher", model(lambda m, t: "Fact: heat pumps move heat, they do not make it.")
    )
    writer = Agent(
        "writer",
        model(
            lambda m, t: (
                "Heat pumps: 3x efficient."
                if m[-1].author == "reviewer"
                else "Heat pumps are great."
            )
        ),
    )
    editor = Agent("editor", model(lambda m, t: f"Edited: {m[-1].text}"))
    return sequential([researcher, writer, editor], review_after=["writer"], name="article")


async def main() -> None:
    session = build().session()
    result = await session.run("Explain heat pumps in one line.")
    while result.pending_requests:
        request = result.pending_requests[0]
        draft = request.payload.conversation[-1].text
        verdict = Review(True) if "3x" in draft else Review(False, "Add a number.")
        print(f"review of {draft!r}: {'approve' if verdict.approved else verdict.feedback}")
        result = await session.respond({request.id: verdict})
    for message in result.outputs[0]:
        print(f"  {message.author or message.role}: {message.text}")
    print("OUTPUT", result.outputs[0][-1].text)


if __name__ == "__main__":
    asyncio.run(main())
