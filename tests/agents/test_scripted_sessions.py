"""A list-scripted client is played once per session, so a shared client serves many sessions."""

from __future__ import annotations

import asyncio

import pytest

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, AgentResponse, ChatMessage, ScriptedChatClient


def chat(client: ScriptedChatClient) -> sg.Workflow[str]:
    return sg.WorkflowBuilder[str](start=AgentExecutor(Agent("bot", client))).build()


def texts(result: sg.RunResult) -> list[str]:
    return [o.text for o in result.outputs if isinstance(o, AgentResponse)]


def test_each_session_starts_at_the_first_reply_and_goes_on_in_its_own_order() -> None:
    client = ScriptedChatClient(["hello", "how can I help?"])
    wf = chat(client)

    async def main() -> None:
        a, b = wf.session("a"), wf.session("b")
        assert texts(await a.run("hi")) == ["hello"]
        assert texts(await b.run("hi")) == ["hello"], "a second conversation is not out of replies"
        assert texts(await a.run("thanks")) == ["how can I help?"]
        assert texts(await b.run("thanks")) == ["how can I help?"]
        with pytest.raises(
            sg.ExecutorFailedError, match="ran out of replies after 2 calls in session 'a'"
        ):
            await a.run("more")

    asyncio.run(main())
    # every call of every session is recorded on the one client, with its session
    assert [(r.session_id, r.last_text) for r in client.requests] == [
        ("a", "hi"),
        ("b", "hi"),
        ("a", "thanks"),
        ("b", "thanks"),
        ("a", "more"),
    ]


def test_concurrent_sessions_keep_their_own_place() -> None:
    client = ScriptedChatClient(["one", "two"])
    wf = chat(client)

    async def turns(session_id: str) -> list[str]:
        session = wf.session(session_id)
        first = texts(await session.run("x"))
        await asyncio.sleep(0)
        return first + texts(await session.run("y"))

    async def main() -> list[list[str]]:
        async with asyncio.TaskGroup() as tg:
            runs = [tg.create_task(turns(f"s{i}")) for i in range(5)]
        return [r.result() for r in runs]

    assert asyncio.run(main()) == [["one", "two"]] * 5


def test_agents_of_one_session_share_its_sequence() -> None:
    client = ScriptedChatClient(["draft", "review"])
    writer, reviewer = (
        AgentExecutor(Agent("writer", client)),
        AgentExecutor(Agent("reviewer", client)),
    )
    wf = sg.WorkflowBuilder[str](start=writer).add_edge(writer, reviewer).build()

    async def main() -> None:
        for session_id in ("a", "b"):
            result = await wf.session(session_id).run("write")
            assert texts(result) == ["review"]

    asyncio.run(main())
    assert [(r.session_id, r.messages[-1].text) for r in client.requests] == [
        ("a", "write"),
        ("a", "draft"),
        ("b", "write"),
        ("b", "draft"),
    ]


def test_calls_outside_a_run_share_one_sequence() -> None:
    client = ScriptedChatClient(["one", "two"])
    agent = Agent("bot", client)

    async def main() -> list[str]:
        first = await agent.run("x")
        second = await client.get_response([ChatMessage.user("y")])
        result = await chat(client).run("in a session")  # its own sequence
        return [first.text, second.message.text, *texts(result)]

    assert asyncio.run(main()) == ["one", "two", "one"]
    assert [r.session_id for r in client.requests][:2] == [None, None]
    with pytest.raises(sg.WorkflowError, match=r"ran out of replies after 2 calls; "):
        asyncio.run(client.get_response([ChatMessage.user("z")]))
