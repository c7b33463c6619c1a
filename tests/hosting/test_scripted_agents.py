"""A served agent workflow on a list-scripted client answers every conversation from its start."""

from __future__ import annotations

import asyncio

from tests.hosting.support import in_process

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, ScriptedChatClient


def test_two_conversations_on_one_scripted_client() -> None:
    client = ScriptedChatClient(["Hello!", "Goodbye!"])
    workflow = sg.WorkflowBuilder[str](start=AgentExecutor(Agent("bot", client))).build(name="bot")

    async def main() -> None:
        async with in_process(workflow) as (_, c):
            outs: list[str] = []
            for _ in range(2):
                conv = await c.conversations.create()
                first = await c.responses.create(model="bot", input="hi", conversation=conv.id)
                second = await c.responses.create(model="bot", input="bye", conversation=conv.id)
                outs += [first.output_text, second.output_text]
            # a request with no prior context is a new session too
            fresh = await c.responses.create(model="bot", input="hi")
            outs.append(fresh.output_text)
            assert outs == ["Hello!", "Goodbye!", "Hello!", "Goodbye!", "Hello!"]

    asyncio.run(main())
    sessions = [r.session_id for r in client.requests]
    assert len(set(sessions)) == 3
    assert None not in sessions
