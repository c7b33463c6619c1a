"""Agents in workflows: tool loop, approvals across restarts, per-session conversations."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

import stepgraph as sg
from stepgraph import serde
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    AgentResponse,
    AgentUpdate,
    ApprovalRequest,
    ApprovalResponse,
    ChatMessage,
    ChatUpdate,
    FunctionCall,
    FunctionResult,
    ScriptedChatClient,
    TextContent,
    ToolSpec,
    Usage,
    json_schema,
    tool,
)


def test_messages_round_trip_through_serde() -> None:
    message = ChatMessage(
        "assistant",
        (
            TextContent("hi"),
            FunctionCall("c1", "add", {"a": 1, "b": [2, 3]}),
            FunctionResult("c1", {"sum": 6}),
            ApprovalRequest(FunctionCall("c2", "pay", {"amount": 5}), "clerk"),
            ApprovalResponse(True, "ok"),
            Usage(3, 4),
        ),
        "bot",
    )
    registry = serde.TypeRegistry([ChatMessage])
    assert serde.decode(serde.encode(message, types=registry), types=registry) == message


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: int
    y: int = 0


def test_tool_schema_from_hints_and_docstring() -> None:
    @tool
    def paint(point: Point, color: Color, labels: list[str], mode: Literal["a", "b"] = "a") -> str:
        """Paint a point.

        Args:
            point: where to paint.
            color: which colour.
            labels: tags for the dot.
        """
        return f"{point.x},{point.y}:{color.value}:{labels}:{mode}"

    assert paint.name == "paint"
    assert paint.description == "Paint a point."
    props = paint.parameters["properties"]
    assert props["point"]["type"] == "object"
    assert props["point"]["required"] == ["x"]
    assert props["color"]["enum"] == ["red", "blue"]
    assert props["labels"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "tags for the dot.",
    }
    assert props["mode"] == {"enum": ["a", "b"]}
    assert paint.parameters["required"] == ["point", "color", "labels"]
    assert json_schema(int | None) == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    result = asyncio.run(paint.invoke({"point": {"x": 1}, "color": "blue", "labels": ["t"]}))
    assert result == "1,0:blue:['t']:a"


def calculator_client() -> ScriptedChatClient:
    """Calls add twice, then multiply once, then answers with the last result."""

    def script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> Any:
        results = [c for m in messages for c in m.contents if isinstance(c, FunctionResult)]
        if not results:
            return [
                FunctionCall("", "add", {"a": 1, "b": 2}),
                FunctionCall("", "add", {"a": 3, "b": 4}),
            ]
        if len(results) == 2:
            return FunctionCall("", "multiply", {"a": results[0].result, "b": results[1].result})
        return f"The answer is {results[-1].result}."

    return ScriptedChatClient(script)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def multiply(a: int, b: int) -> int:
    """Multiply two numbers."""
    return a * b


def test_tool_loop_with_several_calls() -> None:
    client = calculator_client()
    agent = Agent("calc", client, instructions="You compute.", tools=[add, multiply])
    response = asyncio.run(agent.run("what is (1+2)*(3+4)?"))
    assert response.text == "The answer is 21."
    roles = [m.role for m in response.messages]
    assert roles == ["assistant", "tool", "assistant", "tool", "assistant"]
    assert len(client.requests) == 3
    assert client.requests[0].messages[0] == ChatMessage.system("You compute.")
    assert client.requests[0].tools == ("add", "multiply")
    assert response.usage is not None
    assert response.usage.output_tokens > 0


def test_tool_errors_reach_the_model() -> None:
    def script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> Any:
        results = [c for m in messages for c in m.contents if isinstance(c, FunctionResult)]
        if not results:
            return FunctionCall("", "add", {"a": "x", "b": 1})
        return f"error seen: {results[0].error is not None}"

    agent = Agent("calc", ScriptedChatClient(script), tools=[add])
    assert asyncio.run(agent.run("go")).text == "error seen: True"


class Ledger:
    """Records every payment actually made (the side effect to count)."""

    def __init__(self) -> None:
        self.paid: list[int] = []

    def tool(self) -> Any:
        @tool(approval_required=True)
        def pay(amount: int) -> str:
            """Pay an amount."""
            self.paid.append(amount)
            return f"paid {amount}"

        return pay


def payment_workflow(ledger: Ledger) -> sg.Workflow[str]:
    def script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> Any:
        results = [c for m in messages for c in m.contents if isinstance(c, FunctionResult)]
        if not results:
            return FunctionCall("call-pay", "pay", {"amount": 40})
        r = results[-1]
        return f"done: {r.result if r.error is None else r.error}"

    agent = Agent("clerk", ScriptedChatClient(script), tools=[ledger.tool()])
    return sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build(name="payments")


def test_approval_across_a_restart_runs_the_tool_exactly_once(tmp_path: Path) -> None:
    from stepgraph.stores.sqlite import SqliteCheckpointStore

    ledger = Ledger()
    db = tmp_path / "agents.db"

    async def ask() -> str:
        store = SqliteCheckpointStore(db)
        s = payment_workflow(ledger).session("desk", store=store)
        result = await s.run("pay the invoice")
        assert result.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
        (req,) = result.pending_requests
        assert isinstance(req.payload, ApprovalRequest)
        assert req.payload.call.name == "pay"
        assert ledger.paid == []
        await store.aclose()
        return req.id

    async def approve(request_id: str) -> list[Any]:
        store = SqliteCheckpointStore(db)
        s = payment_workflow(ledger).session("desk", store=store)  # new objects
        result = await s.respond({request_id: {"approved": True}})
        await store.aclose()
        return result.outputs

    request_id = asyncio.run(ask())
    outputs = asyncio.run(approve(request_id))
    assert ledger.paid == [40]
    (response,) = outputs
    assert isinstance(response, AgentResponse)
    assert response.text == "done: paid 40"


def test_rejected_approval_never_runs_the_tool() -> None:
    ledger = Ledger()

    async def main() -> str:
        s = payment_workflow(ledger).session()
        (req,) = (await s.run("pay")).pending_requests
        result = await s.respond({req.id: ApprovalResponse(False, "too much")})
        return result.outputs[0].text

    assert asyncio.run(main()) == "done: rejected by a person too much"
    assert ledger.paid == []


def echo_workflow(
    client: ScriptedChatClient, mode: Literal["full", "last"] = "full"
) -> sg.Workflow[str]:
    agent = Agent("echo", client)
    return sg.WorkflowBuilder[str](start=AgentExecutor(agent, context_mode=mode)).build()


def counting_client() -> ScriptedChatClient:
    return ScriptedChatClient(lambda messages, tools: f"I have seen {len(messages)} messages")


def test_sessions_keep_separate_conversations_and_reset_starts_a_new_one() -> None:
    client = counting_client()
    wf = echo_workflow(client)

    async def main() -> None:
        a, b = wf.session("a"), wf.session("b")
        await a.run("one")
        await a.run("two")
        only_b = await b.run("first for b")
        assert only_b.outputs[0].text == "I have seen 1 messages"
        third = await a.run("three")
        assert third.outputs[0].text == "I have seen 5 messages"
        texts_seen_by_b = [m.text for m in client.requests[2].messages]
        assert texts_seen_by_b == ["first for b"]
        await a.reset()
        after = await a.run("fresh")
        assert after.outputs[0].text == "I have seen 1 messages"
        assert [m.text for m in client.requests[-1].messages] == ["fresh"]

    asyncio.run(main())


def test_context_mode_last_shows_only_the_new_input() -> None:
    client = counting_client()
    wf = echo_workflow(client, mode="last")

    async def main() -> None:
        s = wf.session()
        await s.run("one")
        second = await s.run("two")
        assert second.outputs[0].text == "I have seen 1 messages"
        executor = s.core.content.executors[0]
        assert isinstance(executor, AgentExecutor)
        assert len(executor.conversation) == 4  # the whole conversation is still kept

    asyncio.run(main())


def test_streamed_updates_arrive_before_the_superstep_ends() -> None:
    release = asyncio.Event()

    class SlowClient(ScriptedChatClient):
        async def get_streaming_response(
            self, messages: Any, *, tools: Any = (), options: Any = None
        ) -> Any:
            yield_from = super().get_streaming_response(messages, tools=tools, options=options)
            first = True
            async for update in yield_from:
                yield update
                if first:
                    first = False
                    await release.wait()  # the model "thinks" after its first words

    wf = echo_workflow(SlowClient(["hello there general kenobi"]))

    async def main() -> list[str]:
        seen: list[str] = []
        async for event in wf.stream("hi"):
            if isinstance(event, AgentUpdate):
                seen.append(event.text)
                release.set()  # only reachable if the update came while the model was paused
            if isinstance(event, sg.SuperstepCompleted):
                seen.append("<barrier>")
        return seen

    seen = asyncio.run(main())
    assert seen[0] == "hello "
    assert seen.index("<barrier>") > seen.index("kenobi")


def test_agents_chain_in_a_workflow() -> None:
    writer = Agent("writer", ScriptedChatClient(["draft v1"]))
    reviewer = Agent(
        "reviewer",
        ScriptedChatClient(lambda messages, tools: f"review of: {messages[-1].text}"),
    )
    wf = (
        sg.WorkflowBuilder[str](start=AgentExecutor(writer))
        .add_edge("writer", AgentExecutor(reviewer))
        .build()
    )
    result = asyncio.run(wf.run("write something"))
    (response,) = result.outputs
    assert response.agent == "reviewer"
    assert response.text == "review of: draft v1"


class Approver(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.request(text, response_type=bool)

    @sg.response_handler
    async def on_answer(self, text: str, ok: bool, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"{text}: {'ok' if ok else 'no'}")


def test_workflow_as_agent_isolates_conversations_and_carries_requests() -> None:
    inner = sg.WorkflowBuilder[str](start=Approver(id="approver")).build(name="approvals")
    agent = inner.as_agent("approvals")

    async def main() -> None:
        first = await agent.run("launch", conversation_id="c1")
        (call,) = first.messages[0].function_calls
        assert call.arguments["payload"] == "launch"
        assert call.arguments["executor"] == "approver"
        other = await agent.run("something else", conversation_id="c2")
        (other_call,) = other.messages[0].function_calls
        assert other_call.call_id != call.call_id
        conversation = [
            ChatMessage.user("launch"),
            *first.messages,
            ChatMessage("tool", (FunctionResult(call.call_id, True),)),
        ]
        answered = await agent.run(conversation, conversation_id="c1")
        assert answered.text == "launch: ok"
        assert agent.session_for("c2").pending_requests[0].id == other_call.call_id

    asyncio.run(main())


def test_workflow_agent_inside_another_workflow() -> None:
    inner = sg.WorkflowBuilder[str](
        start=AgentExecutor(Agent("inner", ScriptedChatClient(lambda m, t: m[-1].text.upper())))
    ).build(name="shouter")
    outer = sg.WorkflowBuilder[str](
        start=AgentExecutor(inner.as_agent("shouter"), id="shouter")
    ).build()

    async def main() -> None:
        a, b = outer.session("a"), outer.session("b")
        ra = await a.run("hello")
        rb = await b.run("bye")
        assert ra.outputs[0].text == "HELLO"
        assert rb.outputs[0].text == "BYE"

    asyncio.run(main())


@pytest.mark.parametrize("bad", [[], ["only one"]])
def test_scripted_client_that_runs_out_says_so(bad: list[str]) -> None:
    agent = Agent("a", ScriptedChatClient(bad))

    async def main() -> None:
        if bad:
            await agent.run("1")
        with pytest.raises(sg.WorkflowError, match="ran out of replies"):
            await agent.run("2")

    asyncio.run(main())


def test_workflow_agent_streams_text_and_its_agents_tokens() -> None:
    from stepgraph.orchestrations import sequential

    pair = sequential(
        [
            Agent("a", ScriptedChatClient(["one two"])),
            Agent("b", ScriptedChatClient(["three four"])),
        ],
        name="pair",
    )
    agent = pair.as_agent()

    async def main() -> None:
        updates: list[str] = []

        async def on_update(update: ChatUpdate) -> None:
            updates.append(update.text)

        reply = await agent.run("go", on_update=on_update)
        assert updates == ["one ", "two", "three ", "four"]  # tokens, then nothing again
        assert [m.text for m in reply.messages] == ["one two", "three four"]
        assert all(m.role == "assistant" for m in reply.messages)

    asyncio.run(main())


def test_workflow_agent_streams_outputs_that_are_not_tokens_as_text() -> None:
    @sg.executor(id="echo")
    async def echo(text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"echo {text}")

    quiet = Agent("q", ScriptedChatClient(["quiet reply"]))
    wf = (
        sg.WorkflowBuilder[str](start=echo).build(name="echo"),
        sg.WorkflowBuilder[str](start=AgentExecutor(quiet, stream=False)).build(name="q"),
    )

    async def main() -> None:
        for workflow, expected in zip(wf, (["echo hi"], ["quiet reply"]), strict=True):
            updates: list[str] = []

            async def on_update(update: ChatUpdate, into: list[str] = updates) -> None:
                into.append(update.text)

            reply = await workflow.as_agent().run("hi", on_update=on_update)
            assert updates == expected
            assert reply.text == expected[0]

    asyncio.run(main())
