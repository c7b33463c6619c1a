"""AnthropicChatClient request and response mapping, against in-process Anthropic wire servers.

Most tests hand the real `AsyncAnthropic` an `httpx2.MockTransport` whose handler records the
JSON body the SDK sent and answers with canned JSON or SSE bodies in the Messages API's wire
format; one test runs a real local HTTP server (streaming SSE) found through the environment.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx2
import pytest
from anthropic import AsyncAnthropic

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, AgentUpdate, ChatClientError, tool
from stepgraph.agents._anthropic import DEFAULT_MODEL, AnthropicChatClient
from stepgraph.agents._client import ChatOptions, ChatUpdate, ToolSpec, collect
from stepgraph.agents._messages import ChatMessage, FunctionCall, FunctionResult, TextContent, Usage

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def key_of(headers: Any) -> str | None:
    """The API key a request carried (SDK versions send `x-api-key` or a bearer token)."""
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (bearer.removeprefix("Bearer ") if bearer else None)


class Server:
    """A MockTransport handler: records each request, answers with the next canned reply."""

    def __init__(self, *replies: httpx2.Response) -> None:
        self.replies = list(replies)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert key_of(request.headers) == "test"
        assert request.url.path == "/v1/messages"
        return self.replies.pop(0)

    def body(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index].content)


def run(
    server: Server, scenario: Callable[[AnthropicChatClient], Awaitable[Any]], **kw: Any
) -> Any:
    async def main() -> Any:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(server)) as http:
            sdk = AsyncAnthropic(
                base_url="http://test", api_key="test", http_client=http, max_retries=0
            )
            async with AnthropicChatClient("claude-test", client=sdk, **kw) as client:
                return await scenario(client)

    return asyncio.run(main())


def message(
    *blocks: dict[str, Any], stop: str = "end_turn", usage: tuple[int, int] = (12, 5)
) -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": list(blocks),
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        },
    )


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def streamed(*events: dict[str, Any]) -> httpx2.Response:
    headers = {"content-type": "text/event-stream"}
    return httpx2.Response(200, headers=headers, content=sse(*events).encode())


def start(input_tokens: int = 20) -> dict[str, Any]:
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
    }
    return {"type": "message_start", "message": body}


def text_events(*pieces: str, index: int = 0) -> list[dict[str, Any]]:
    deltas = [
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
        for p in pieces
    ]
    return [
        {"type": "content_block_start", "index": index, "content_block": text("")},
        {"type": "ping"},
        *deltas,
        {"type": "content_block_stop", "index": index},
    ]


def tool_events(index: int, call_id: str, name: str, *fragments: str) -> list[dict[str, Any]]:
    deltas = [
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": f},
        }
        for f in fragments
    ]
    opened = {"type": "content_block_start", "index": index}
    return [
        {**opened, "content_block": tool_use(call_id, name, {})},
        *deltas,
        {"type": "content_block_stop", "index": index},
    ]


def end(stop: str = "end_turn", output_tokens: int = 7) -> list[dict[str, Any]]:
    delta = {"stop_reason": stop, "stop_sequence": None}
    return [
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]


async def stream(
    client: AnthropicChatClient, *messages: ChatMessage, **kw: Any
) -> list[ChatUpdate]:
    return [u async for u in client.get_streaming_response(list(messages), **kw)]


# -- whole replies -----------------------------------------------------------------------------


def test_text_reply_and_system_prompt() -> None:
    server = Server(message(text("Hello there")))
    prompt = [ChatMessage.system("Be brief."), ChatMessage.user("hi"), ChatMessage.system("Sir.")]
    reply = run(server, lambda c: c.get_response(prompt))
    assert reply.message == ChatMessage("assistant", (TextContent("Hello there"),))
    assert (reply.usage, reply.finish_reason) == (Usage(12, 5), "stop")
    body = server.body()
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 4096, "the API needs a cap; the client always sends one"
    assert body["system"] == "Be brief.\n\nSir."
    assert body["messages"] == [{"role": "user", "content": [text("hi")]}]
    assert "tools" not in body
    assert "tool_choice" not in body


def test_tool_call_round_trip() -> None:
    server = Server(
        message(
            text("Checking."), tool_use("toolu_1", "get_weather", {"city": "Oslo"}), stop="tool_use"
        ),
        message(text("Cold.")),
    )

    async def scenario(client: AnthropicChatClient) -> list[Any]:
        user = ChatMessage.user("weather in Oslo?")
        first = await client.get_response([user], tools=[WEATHER])
        results = ChatMessage("tool", (FunctionResult("toolu_1", {"temp": -3}),))
        second = await client.get_response([user, first.message, results], tools=[WEATHER])
        return [first, second]

    first, second = run(server, scenario)
    assert first.message.function_calls == [
        FunctionCall("toolu_1", "get_weather", {"city": "Oslo"})
    ]
    assert first.message.text == "Checking."
    assert first.finish_reason == "tool_calls"
    assert second.message.text == "Cold."
    assert server.body(0)["tools"] == [
        {
            "name": "get_weather",
            "description": WEATHER.description,
            "input_schema": WEATHER.parameters,
        }
    ]
    assert server.body(1)["messages"] == [
        {"role": "user", "content": [text("weather in Oslo?")]},
        {
            "role": "assistant",
            "content": [text("Checking."), tool_use("toolu_1", "get_weather", {"city": "Oslo"})],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": -3}'}
            ],
        },
    ]


def test_errors_and_adjacent_turns_are_merged() -> None:
    server = Server(message(text("ok")))
    conversation = [
        ChatMessage.user("a"),
        ChatMessage(
            "assistant", (FunctionCall("t1", "f", {}), FunctionCall("t2", "g", {"_raw": "{"}))
        ),
        ChatMessage("tool", (FunctionResult("t1", "fine"), FunctionResult("t2", error="boom"))),
        ChatMessage.user("and?"),
        ChatMessage("assistant", ()),  # nothing to send
    ]
    run(server, lambda c: c.get_response(conversation))
    [_, assistant, user] = server.body()["messages"]
    assert [b["input"] for b in assistant["content"]] == [{}, {"_raw": "{"}]
    assert user["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "fine"},
        {"type": "tool_result", "tool_use_id": "t2", "content": "Error: boom", "is_error": True},
        text("and?"),
    ]


def test_options_mapping() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    server = Server(*(message(text("{}")) for _ in range(4)))
    defaults = ChatOptions(temperature=0.5, max_tokens=100)

    async def scenario(client: AnthropicChatClient) -> None:
        hi = [ChatMessage.user("x")]
        await client.get_response(hi, tools=[WEATHER], options=ChatOptions(tool_choice="required"))
        opts = ChatOptions(model="claude-other", max_tokens=9, response_format=schema)
        await client.get_response(hi, tools=[WEATHER], options=opts)
        await client.get_response(
            hi, tools=[WEATHER], options=ChatOptions(tool_choice="get_weather")
        )
        await client.get_response(hi, options=ChatOptions(tool_choice="none"))

    run(server, scenario, default_options=defaults)
    first, second, third, fourth = (server.body(i) for i in range(4))
    assert (first["tool_choice"], first["temperature"], first["max_tokens"]) == (
        {"type": "any"},
        0.5,
        100,
    )
    assert (second["model"], second["max_tokens"]) == ("claude-other", 9)
    assert second["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert third["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert "tool_choice" not in fourth, "no tools, no tool choice (the API rejects one)"


def test_max_tokens_stop_and_cached_input_counted() -> None:
    reply = httpx2.Response(
        200,
        json={
            **message(text("trunc")).json(),
            "stop_reason": "max_tokens",
            "usage": {
                "input_tokens": 3,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 7,
                "output_tokens": 4,
            },
        },
    )
    response = run(Server(reply), lambda c: c.get_response([ChatMessage.user("x")]))
    assert (response.finish_reason, response.usage) == ("length", Usage(110, 4))


# -- streaming ---------------------------------------------------------------------------------


def test_streaming_text() -> None:
    server = Server(streamed(start(), *text_events("Hel", "lo ", "there"), *end()))
    updates = run(server, lambda c: stream(c, ChatMessage.user("hi")))
    assert [u.text for u in updates if u.text] == ["Hel", "lo ", "there"]
    assert updates[-1] == ChatUpdate("", (), Usage(20, 7), "stop")
    assert server.body()["stream"] is True
    assert collect(updates).message.text == "Hello there"


def test_streaming_tool_calls_assembled_from_json_fragments() -> None:
    server = Server(
        streamed(
            start(),
            *text_events("Let me check."),
            *tool_events(1, "toolu_a", "get_weather", '{"ci', 'ty": "Os', 'lo"}'),
            *tool_events(2, "toolu_b", "get_weather"),  # no fragments: empty input
            *end("tool_use", 30),
        )
    )
    updates = run(server, lambda c: stream(c, ChatMessage.user("x"), tools=[WEATHER]))
    calls = [c for u in updates for c in u.function_calls]
    assert calls == [
        FunctionCall("toolu_a", "get_weather", {"city": "Oslo"}),
        FunctionCall("toolu_b", "get_weather", {}),
    ]
    whole = collect(updates)
    assert (whole.finish_reason, whole.usage) == ("tool_calls", Usage(20, 30))
    assert whole.message.text == "Let me check."


def test_stream_cut_short_still_emits_open_calls() -> None:
    events = tool_events(0, "toolu_a", "get_weather", '{"city": "Rome"}')[:-1]  # no block stop
    server = Server(streamed(start(), *events))
    updates = run(server, lambda c: stream(c, ChatMessage.user("x")))
    assert [c for u in updates for c in u.function_calls] == [
        FunctionCall("toolu_a", "get_weather", {"city": "Rome"})
    ]


def test_error_event_inside_stream_is_chat_client_error() -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    server = Server(streamed(start(), *text_events("Hel")[:2], overloaded))
    with pytest.raises(ChatClientError, match="Overloaded") as info:
        run(server, lambda c: stream(c, ChatMessage.user("x")))
    assert (info.value.status_code, info.value.code) == (None, "overloaded_error")


@pytest.mark.parametrize("status", [400, 401, 429, 500])
def test_http_errors_become_chat_client_error(status: int) -> None:
    body = {"type": "error", "error": {"type": "some_error", "message": f"bad {status}"}}
    server = Server(httpx2.Response(status, json=body))
    with pytest.raises(ChatClientError, match=f"bad {status}") as info:
        run(server, lambda c: c.get_response([ChatMessage.user("x")]))
    assert (info.value.status_code, info.value.code) == (status, "some_error")


def test_agent_streams_updates_through_a_workflow() -> None:
    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"cold in {city}"

    server = Server(
        streamed(
            start(), *tool_events(0, "toolu_1", "get_weather", '{"city": "Oslo"}'), *end("tool_use")
        ),
        streamed(start(), *text_events("It is ", "cold."), *end()),
    )

    async def scenario(client: AnthropicChatClient) -> tuple[list[AgentUpdate], Any]:
        agent = Agent("weather", client, instructions="Answer briefly.", tools=[get_weather])
        wf = sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build()
        updates: list[AgentUpdate] = []
        outputs: list[Any] = []
        async for event in wf.stream("Oslo?"):
            if isinstance(event, AgentUpdate):
                updates.append(event)
            elif isinstance(event, sg.Output):
                outputs.append(event.value)
        return updates, outputs

    updates, outputs = run(server, scenario)
    assert [u.text for u in updates if u.text] == ["It is ", "cold."]
    assert [c.name for u in updates for c in u.function_calls] == ["get_weather"]
    assert outputs[0].text == "It is cold."
    assert server.body(1)["system"] == "Answer briefly."
    tool_turn = server.body(1)["messages"][-1]
    assert tool_turn["content"][0]["content"] == "cold in Oslo"


# -- configuration and lifecycle ---------------------------------------------------------------


class _LocalServer(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _LocalServer.seen.append((self.path, key_of(self.headers), body))
        reply = sse(start(), *text_events("from ", "env"), *end()).encode()
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_environment_configuration_against_a_local_sse_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _LocalServer.seen = []
    with ThreadingHTTPServer(("127.0.0.1", 0), _LocalServer) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
            monkeypatch.setenv("ANTHROPIC_MODEL", "claude-local")

            async def main() -> list[ChatUpdate]:
                async with AnthropicChatClient() as client:
                    assert client.model == "claude-local"
                    return await stream(client, ChatMessage.user("hi"))

            updates = asyncio.run(main())
        finally:
            httpd.shutdown()
            thread.join()
    assert collect(updates).message.text == "from env"
    [(path, key, body)] = _LocalServer.seen
    assert (path, key, body["model"], body["stream"]) == (
        "/v1/messages",
        "sk-ant-env",
        "claude-local",
        True,
    )


def test_defaults_missing_key_and_closed_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL"):
        monkeypatch.delenv(name, raising=False)

    async def main() -> None:
        async with AnthropicChatClient() as client:
            assert client.model == DEFAULT_MODEL
            with pytest.raises(ChatClientError, match="ANTHROPIC_API_KEY"):
                await client.get_response([ChatMessage.user("x")])
        local = AnthropicChatClient(base_url="http://localhost:8080")
        sdk = local._connection()
        assert sdk.api_key == "no-key"
        await local.aclose()
        assert sdk.is_closed(), "a client it created is closed by aclose()"
        with pytest.raises(ChatClientError, match="closed"):
            await local.get_response([ChatMessage.user("x")])

    lazy = AnthropicChatClient(api_key="k")  # constructed outside any event loop
    assert lazy._client is None
    asyncio.run(main())


def test_missing_anthropic_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ImportError, match=r"pip install 'stepgraph\[anthropic\]'"):
        AnthropicChatClient()


def test_agents_package_imports_without_anthropic() -> None:
    code = (
        "import sys; sys.modules['anthropic'] = None; import stepgraph.agents as a; "
        "import stepgraph.agents._anthropic; assert 'anthropic' not in [m for m in sys.modules if sys.modules[m]]; "
        "assert a.AnthropicChatClient.__doc__"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_headers_from_options_reach_the_provider() -> None:
    server = Server(message(text("ok")))
    options = ChatOptions(headers={"X-Tenant": "acme"})
    run(server, lambda c: c.get_response([ChatMessage.user("hi")], options=options))
    assert server.requests[0].headers["x-tenant"] == "acme"
    assert "headers" not in server.body()
