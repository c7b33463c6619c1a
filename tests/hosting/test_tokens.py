"""Agents' tokens end to end: one `response.output_text.delta` per `AgentUpdate`.

Driven with the official client's `responses.stream()`, in process (the whole
event sequence) and over a real socket (the first token reaches the client
while the agent is still replying).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai
import uvicorn
from tests.hosting.support import in_process

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    ChatMessage,
    ChatOptions,
    ChatResponse,
    ChatUpdate,
    FunctionCall,
    ScriptedChatClient,
    ToolSpec,
)
from stepgraph.hosting import create_app
from stepgraph.orchestrations import concurrent, sequential


def words(prefix: str, n: int) -> str:
    """`n` words; the scripted client streams each word (and its space) as one token."""
    return " ".join(f"{prefix}{i}" for i in range(n))


def tokens(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" + (" " if i < n - 1 else "") for i in range(n)]


def agent(name: str, text: str) -> Agent:
    return Agent(name, ScriptedChatClient(lambda messages, tools: text))


async def stream(workflow: sg.Workflow[Any], text: str) -> tuple[list[Any], Any]:
    """Every event the client's helper saw, and the final response."""
    async with in_process(workflow) as (_, client):
        async with client.responses.stream(model="m", input=text) as s:
            seen = [ev async for ev in s]
            final = await s.get_final_response()
        again = await client.responses.retrieve(final.id)
        assert again.output_text == final.output_text
    return seen, final


def deltas(events: list[Any]) -> list[str]:
    return [ev.delta for ev in events if ev.type == "response.output_text.delta"]


def test_each_token_is_one_delta_and_the_final_text_is_their_join() -> None:
    n = 50
    wf = sg.WorkflowBuilder[str](start=AgentExecutor(agent("writer", words("w", n)))).build()
    events, final = asyncio.run(stream(wf, "write"))
    assert deltas(events) == tokens("w", n)
    assert final.output_text == words("w", n)
    assert [ev.type for ev in events if not ev.type.endswith(".delta")] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    (done,) = [ev for ev in events if ev.type == "response.output_text.done"]
    assert done.text == words("w", n)
    assert [ev.sequence_number for ev in events] == list(range(len(events)))


def test_sequential_orchestration_streams_each_agent_as_one_item() -> None:
    n = 7
    wf = sequential([agent(name, words(name, n)) for name in ("a", "b", "c")])
    events, final = asyncio.run(stream(wf, "go"))
    assert deltas(events) == tokens("a", n) + tokens("b", n) + tokens("c", n)
    assert [item.content[0].text for item in final.output] == [  # type: ignore[union-attr]
        words("a", n),
        words("b", n),
        words("c", n),
    ]
    assert final.output_text == "".join(deltas(events))


def test_concurrent_orchestration_keeps_each_agents_tokens_in_its_item() -> None:
    n = 5
    wf = concurrent([agent(name, words(name, n)) for name in ("a", "b")])
    events, final = asyncio.run(stream(wf, "go"))
    by_item: dict[int, str] = {}
    for ev in events:
        if ev.type == "response.output_text.delta":
            by_item[ev.output_index] = by_item.get(ev.output_index, "") + ev.delta
    assert sorted(by_item.values()) == [words("a", n), words("b", n)]
    assert sorted(len(d) for d in deltas(events)) == sorted(len(t) for t in tokens("a", n) * 2)
    assert sorted(item.content[0].text for item in final.output) == sorted(by_item.values())  # type: ignore[union-attr]


def test_tokens_of_an_agent_inside_a_sub_workflow() -> None:
    n = 12
    child = sg.WorkflowBuilder[str](start=AgentExecutor(agent("inner", words("s", n)))).build()
    wf = sg.WorkflowBuilder[str](start=sg.SubWorkflow(child, id="sub")).build(name="outer")
    events, final = asyncio.run(stream(wf, "go"))
    assert deltas(events) == tokens("s", n)
    assert final.output_text == words("s", n)
    assert len(final.output) == 1


def test_workflow_agent_inside_a_workflow_forwards_its_agents_tokens() -> None:
    n = 4
    inner = sequential([agent("a", words("a", n)), agent("b", words("b", n))], name="pair")
    wf = sg.WorkflowBuilder[str](start=AgentExecutor(inner.as_agent(), id="pair")).build()
    events, final = asyncio.run(stream(wf, "go"))
    assert deltas(events) == tokens("a", n) + tokens("b", n)
    assert final.output_text == words("a", n) + words("b", n)
    assert len(final.output) == 1  # the reply streamed; not shown again


def test_text_before_a_tool_call_and_the_answer_after_it_stream_once() -> None:
    def lookup(city: str) -> str:
        """The weather."""
        return f"sunny in {city}"

    script = [
        ChatMessage(
            "assistant",
            (
                *ChatMessage.user("Let me check.").contents,
                FunctionCall("c1", "lookup", {"city": "Oslo"}),
            ),
        ),
        "It is sunny.",
    ]
    bot = Agent("bot", ScriptedChatClient(script), tools=[lookup])
    wf = sg.WorkflowBuilder[str](start=AgentExecutor(bot)).build()
    events, final = asyncio.run(stream(wf, "weather?"))
    assert deltas(events) == ["Let ", "me ", "check.", "It ", "is ", "sunny."]
    assert [item.content[0].text for item in final.output] == ["Let me check.", "It is sunny."]  # type: ignore[union-attr]


def test_an_agent_that_does_not_stream_is_one_delta() -> None:
    text = words("q", 9)
    wf = sg.WorkflowBuilder[str](start=AgentExecutor(agent("quiet", text), stream=False)).build()
    events, final = asyncio.run(stream(wf, "go"))
    assert deltas(events) == [text]
    assert final.output_text == text


class GatedClient:
    """Streams its first token, then waits for `gate` before the rest."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> ChatResponse:
        raise AssertionError("the agent streams")

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> AsyncIterator[ChatUpdate]:
        yield ChatUpdate(text="first ")
        await self.gate.wait()
        yield ChatUpdate(text="second")


def test_first_token_reaches_the_client_over_a_socket_while_the_agent_replies() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        wf = sg.WorkflowBuilder[str](start=AgentExecutor(Agent("g", GatedClient(gate)))).build()
        app = create_app(wf, store=sg.MemoryCheckpointStore())
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            await serve_and_stream(app, sock, gate)

    asyncio.run(main())


async def serve_and_stream(app: Any, sock: socket.socket, gate: asyncio.Event) -> None:
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(server.serve(sockets=[sock]))
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0
        )
        try:
            async with asyncio.timeout(20):  # a buffered stream would wait here forever
                async with client.responses.stream(model="g", input="hi") as s:
                    got: list[str] = []
                    async for ev in s:
                        if ev.type == "response.output_text.delta":
                            got.append(ev.delta)
                            assert gate.is_set() == (len(got) > 1)
                            gate.set()  # the agent may go on only now
                    final = await s.get_final_response()
            assert got == ["first ", "second"]
            assert final.output_text == "first second"
        finally:
            await client.close()
            server.should_exit = True
