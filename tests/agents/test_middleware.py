"""Agent middleware: layers around model calls and tool runs, composed in declaration order."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    AgentUpdate,
    ApprovalRequest,
    ApprovalResponse,
    ChatMessage,
    ChatOptions,
    ChatResponse,
    FunctionCall,
    FunctionResult,
    MCPTools,
    Middleware,
    ModelCall,
    ScriptedChatClient,
    ToolBlocked,
    ToolCall,
    TracingMiddleware,
    Usage,
    tool,
)
from stepgraph.agents._middleware import Next
from stepgraph.stores import MemoryCheckpointStore
from stepgraph.tracing import OpenTelemetryTracer


class Log(Middleware):
    """Records where each call enters and leaves it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def model_call(
        self, call: ModelCall, next: Next[ModelCall, ChatResponse]
    ) -> ChatResponse:
        self.log.append(f"{self.name}>model")
        response = await next(call)
        self.log.append(f"{self.name}<model")
        return response

    async def tool_call(self, call: ToolCall, next: Next[ToolCall, Any]) -> Any:
        self.log.append(f"{self.name}>{call.name}")
        result = await next(call)
        self.log.append(f"{self.name}<{call.name}")
        return result


class Tokens(Middleware):
    """Counts tokens over real model calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.usage = Usage()

    async def model_call(
        self, call: ModelCall, next: Next[ModelCall, ChatResponse]
    ) -> ChatResponse:
        response = await next(call)
        self.calls += 1
        if response.usage is not None:
            self.usage = Usage(
                self.usage.input_tokens + response.usage.input_tokens,
                self.usage.output_tokens + response.usage.output_tokens,
            )
        return response


def weather(looked: list[str] | None = None) -> Any:
    def lookup(city: str) -> str:
        """Look the weather up."""
        if looked is not None:
            looked.append(city)
        return f"sunny in {city}"

    return tool(lookup)


def test_layers_compose_in_declaration_order_the_first_outermost() -> None:
    log: list[str] = []
    client = ScriptedChatClient([FunctionCall("", "lookup", {"city": "Oslo"}), "Sunny."])
    agent = Agent("a", client, tools=[weather()], middleware=[Log("outer", log), Log("inner", log)])
    response = asyncio.run(agent.run("Weather?"))
    assert response.text == "Sunny."
    assert log == [
        "outer>model", "inner>model", "inner<model", "outer<model",
        "outer>lookup", "inner>lookup", "inner<lookup", "outer<lookup",
        "outer>model", "inner>model", "inner<model", "outer<model",
    ]  # fmt: skip


def test_a_layer_changes_messages_tools_and_options() -> None:
    class Redact(Middleware):
        async def model_call(
            self, call: ModelCall, next: Next[ModelCall, ChatResponse]
        ) -> ChatResponse:
            call.messages = [
                ChatMessage.user(m.text.replace("secret", "[redacted]")) if m.role == "user" else m
                for m in call.messages
            ]
            call.tools = []
            call.options = dataclasses.replace(call.options or ChatOptions(), temperature=0.0)
            return await next(call)

    client = ScriptedChatClient(["Noted."])
    agent = Agent("a", client, instructions="Be brief.", tools=[weather()], middleware=[Redact()])
    asyncio.run(agent.run("my secret is 42"))
    (request,) = client.requests
    assert [m.text for m in request.messages] == ["Be brief.", "my [redacted] is 42"]
    assert request.tools == ()
    assert request.options == ChatOptions(temperature=0.0)


def test_a_blocked_tool_does_not_run_and_the_model_sees_the_refusal() -> None:
    looked: list[str] = []

    class Guard(Middleware):
        async def tool_call(self, call: ToolCall, next: Next[ToolCall, Any]) -> Any:
            if call.arguments.get("city") == "Atlantis":
                raise ToolBlocked("lookups of Atlantis are not allowed")
            if call.arguments.get("city") == "Nowhere":
                return "no such place"  # answered in place of the tool
            call.arguments["city"] = call.arguments["city"].title()
            return await next(call)

    calls = [
        FunctionCall("c1", "lookup", {"city": "Atlantis"}),
        FunctionCall("c2", "lookup", {"city": "Nowhere"}),
        FunctionCall("c3", "lookup", {"city": "oslo"}),
    ]
    client = ScriptedChatClient([calls, "Done."])
    agent = Agent("a", client, tools=[weather(looked)], middleware=[Guard()])
    response = asyncio.run(agent.run("Weather?"))
    assert looked == ["Oslo"]
    assert response.messages[1].contents == (
        FunctionResult("c1", error="lookups of Atlantis are not allowed"),
        FunctionResult("c2", "no such place"),
        FunctionResult("c3", "sunny in Oslo"),
    )
    seen = client.requests[1].messages[-1].contents  # the model's next request shows it
    assert seen[0] == FunctionResult("c1", error="lookups of Atlantis are not allowed")


def test_a_layer_counts_tokens_from_usage() -> None:
    tokens = Tokens()
    client = ScriptedChatClient([FunctionCall("", "lookup", {"city": "Oslo"}), "Sunny there."])
    agent = Agent("a", client, tools=[weather()], middleware=[tokens])
    response = asyncio.run(agent.run("Weather in Oslo?"))
    assert tokens.calls == 2
    assert tokens.usage == response.usage
    assert tokens.usage.input_tokens > 0
    assert tokens.usage.output_tokens == 2


def test_updates_still_stream_and_a_layer_can_watch_them() -> None:
    seen: list[str] = []

    class Watch(Middleware):
        async def model_call(
            self, call: ModelCall, next: Next[ModelCall, ChatResponse]
        ) -> ChatResponse:
            inner = call.on_update
            assert inner is not None

            async def forward(update: Any) -> None:
                seen.append(update.text)
                await inner(update)

            call.on_update = forward
            return await next(call)

    tokens = Tokens()
    client = ScriptedChatClient(["It is sunny."])
    agent = Agent("a", client, middleware=[Watch(), tokens])
    workflow = sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build(name="w")
    result = asyncio.run(workflow.run("Weather?"))
    updates = [e.text for e in result.events if isinstance(e, AgentUpdate)]
    assert "".join(updates) == "It is sunny."
    assert [t for t in seen if t] == updates
    assert tokens.calls == 1
    assert tokens.usage.output_tokens == 3


def test_a_resumed_turn_runs_no_middleware_for_replayed_steps() -> None:
    log: list[str] = []
    looked: list[str] = []
    tokens = Tokens()
    client = ScriptedChatClient(
        [FunctionCall("", "lookup", {"city": "Oslo"}), ConnectionError("429"), "Sunny."]
    )
    agent = Agent("a", client, tools=[weather(looked)], middleware=[Log("m", log), tokens])
    workflow = sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build(name="w")

    async def main() -> None:
        session = workflow.session("s", store=MemoryCheckpointStore())
        with pytest.raises(sg.ExecutorFailedError):
            await session.run("Weather?")
        assert log == ["m>model", "m<model", "m>lookup", "m<lookup", "m>model"]
        log.clear()
        result = await session.resume()
        assert result.outputs[0].text == "Sunny."
        # Only the failed model call ran again, through the middleware; nothing else did.
        assert log == ["m>model", "m<model"]
        assert looked == ["Oslo"]
        assert tokens.calls == 2

    asyncio.run(main())


def test_an_approved_tool_runs_through_the_middleware_a_rejected_one_does_not() -> None:
    log: list[str] = []

    def pay(amount: int) -> str:
        """Pay."""
        return f"paid {amount}"

    client = ScriptedChatClient(
        [
            [FunctionCall("p1", "pay", {"amount": 1}), FunctionCall("p2", "pay", {"amount": 2})],
            "Done.",
        ]
    )
    agent = Agent(
        "a", client, tools=[tool(pay, approval_required=True)], middleware=[Log("m", log)]
    )
    workflow = sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build(name="w")

    async def main() -> None:
        session = workflow.session("s", store=MemoryCheckpointStore())
        pending = (await session.run("pay both")).pending_requests
        assert all(isinstance(r.payload, ApprovalRequest) for r in pending)
        assert "m>pay" not in log
        answers = {r.id: ApprovalResponse(r.payload.call.call_id == "p1", "no") for r in pending}
        result = await session.respond(answers)
        assert result.outputs[0].text == "Done."

    asyncio.run(main())
    assert log.count("m>pay") == 1  # the approved call; the rejected one never ran


@pytest.fixture
def traced() -> tuple[OpenTelemetryTracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryTracer(provider), exporter


def test_spans_follow_the_genai_conventions(
    traced: tuple[OpenTelemetryTracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = traced

    def fail() -> str:
        """Always fails."""
        raise RuntimeError("broken")

    client = ScriptedChatClient(
        [[FunctionCall("c1", "lookup", {"city": "Oslo"}), FunctionCall("c2", "fail")], "Sunny."]
    )
    agent = Agent(
        "forecaster",
        client,
        tools=[weather(), fail],
        options=ChatOptions(model="gpt-test", temperature=0.5),
        middleware=[TracingMiddleware(tracer)],
    )
    workflow = sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build(name="w")
    session = workflow.session("s", store=MemoryCheckpointStore(), tracer=tracer)
    asyncio.run(session.run("Weather?"))
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count("chat gpt-test") == 2
    chat = next(s for s in spans if s.name == "chat gpt-test")
    attrs = dict(chat.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "stepgraph.scripted"
    assert attrs["gen_ai.request.model"] == "gpt-test"
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.agent.name"] == "forecaster"
    assert attrs["gen_ai.usage.input_tokens"] == 1
    assert attrs["gen_ai.usage.output_tokens"] == 0
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert attrs["stepgraph.step"] == "forecaster/model-0"
    lookup = next(s for s in spans if s.name == "execute_tool lookup")
    attrs = dict(lookup.attributes or {})
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == "lookup"
    assert attrs["gen_ai.tool.call.id"] == "c1"
    assert attrs["gen_ai.tool.type"] == "function"
    failed = next(s for s in spans if s.name == "execute_tool fail")
    assert failed.status.status_code is StatusCode.ERROR
    # The agent's spans are children of the executor span that ran it.
    executor = next(s for s in spans if s.name == "stepgraph.executor forecaster")
    assert chat.parent is not None
    assert chat.parent.span_id == executor.context.span_id


def test_spans_name_the_provider_given_and_a_chat_without_a_model() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingMiddleware(OpenTelemetryTracer(provider), provider="acme")
    agent = Agent("a", ScriptedChatClient(["Hi."]), middleware=[tracing])
    asyncio.run(agent.run("Hello"))
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat"
    assert (span.attributes or {})["gen_ai.provider.name"] == "acme"
    assert "stepgraph.step" not in (span.attributes or {})


SERVER = Path(__file__).parent.parent.parent / "examples" / "mcp_server_notes.py"


def test_mcp_tool_calls_run_through_the_middleware(tmp_path: Path) -> None:
    pytest.importorskip("mcp")
    log: list[str] = []

    class Titles(Middleware):
        async def tool_call(self, call: ToolCall, next: Next[ToolCall, Any]) -> Any:
            log.append(call.name)
            call.arguments["title"] = call.arguments["title"].upper()
            return await next(call)

    notes = MCPTools.stdio(
        sys.executable, [str(SERVER)], env={"NOTES_FILE": str(tmp_path / "n.json")}, name="n"
    )
    client = ScriptedChatClient(
        [FunctionCall("", "add_note", {"title": "a", "text": "x"}), "Saved."]
    )
    agent = Agent("clerk", client, tools=[notes], middleware=[Titles()])
    response = asyncio.run(agent.run("note a"))
    assert log == ["add_note"]
    assert response.messages[1].contents[0] == FunctionResult("call_1_0", "saved 'A' (1 notes)")
