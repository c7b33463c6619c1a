"""OpenAIChatClient request and response mapping, against in-process OpenAI wire-format servers.

Each test hands the real `AsyncOpenAI` an `httpx2.MockTransport` whose handler records the
JSON body the SDK sent and answers with canned JSON or SSE bodies in OpenAI's wire format.
(openai 3.x runs on httpx2, so the transport comes from httpx2, not httpx.)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Literal

import httpx2
import pytest
from openai import AsyncOpenAI

from stepgraph import WorkflowError
from stepgraph.agents._client import ChatOptions, ChatUpdate, ToolSpec, collect
from stepgraph.agents._messages import (
    ApprovalRequest,
    ApprovalResponse,
    ChatMessage,
    FunctionCall,
    FunctionResult,
    TextContent,
    Usage,
)
from stepgraph.agents._openai import DEFAULT_MODEL, ChatClientError, OpenAIChatClient

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


# -- the in-process server -----------------------------------------------------------------


class Server:
    """A MockTransport handler: records each request, answers with the next canned reply."""

    def __init__(self, *replies: httpx2.Response) -> None:
        self.replies = list(replies)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert request.headers["authorization"] == "Bearer test"
        return self.replies.pop(0)

    def body(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index].content)

    def path(self, index: int = -1) -> str:
        return self.requests[index].url.path


def run(
    server: Server,
    scenario: Callable[[OpenAIChatClient], Awaitable[Any]],
    *,
    api: Literal["chat", "responses"] = "chat",
    **kwargs: Any,
) -> Any:
    async def main() -> Any:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(server)) as http:
            sdk = AsyncOpenAI(
                base_url="http://test/v1", api_key="test", http_client=http, max_retries=0
            )
            async with OpenAIChatClient("gpt-test", api=api, client=sdk, **kwargs) as client:
                return await scenario(client)

    return asyncio.run(main())


def sse(*events: dict[str, Any], done: bool = False) -> httpx2.Response:
    """An SSE body. Responses events (they have a type) get `event:` lines and sequence numbers."""
    lines = []
    for number, event in enumerate(events):
        if "type" in event:
            lines.append(f"event: {event['type']}\n")
            event = {"type": event["type"], "sequence_number": number, **event}
        lines.append(f"data: {json.dumps(event)}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    headers = {"content-type": "text/event-stream"}
    return httpx2.Response(200, headers=headers, content="".join(lines).encode())


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    """A Responses streaming event."""
    return {"type": kind, **fields}


def error(status: int, message: str, code: str | None = None) -> httpx2.Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }
    return httpx2.Response(status, json=body)


async def stream(client: OpenAIChatClient, *messages: ChatMessage, **kw: Any) -> list[ChatUpdate]:
    return [u async for u in client.get_streaming_response(list(messages), **kw)]


# -- Chat Completions wire format --------------------------------------------------------------


def completion(
    message: dict[str, Any], finish: str = "stop", usage: tuple[int, int] = (9, 3)
) -> httpx2.Response:
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-test",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "refusal": None, **message},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
            },
        },
    )


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    usage: tuple[int, int] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    return body


def test_chat_text_reply() -> None:
    server = Server(completion({"content": "Hello!"}))
    conversation = [ChatMessage.system("Be brief."), ChatMessage.user("Hi")]
    reply = run(server, lambda c: c.get_response(conversation))

    assert server.path() == "/v1/chat/completions"
    assert server.body() == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }
    assert reply.message == ChatMessage("assistant", (TextContent("Hello!"),))
    assert reply.usage == Usage(9, 3)
    assert reply.finish_reason == "stop"


def test_chat_tool_call_round_trip() -> None:
    tool_call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    server = Server(
        completion({"content": None, "tool_calls": [tool_call]}, finish="tool_calls"),
        completion({"content": "Sunny in Paris."}),
    )

    async def scenario(client: OpenAIChatClient) -> tuple[Any, Any]:
        history = [ChatMessage.user("Weather in Paris?")]
        first = await client.get_response(history, tools=[WEATHER])
        history += [
            first.message,
            ChatMessage("tool", (FunctionResult("call_abc", {"temp_c": 21, "sky": "clear"}),)),
        ]
        return first, await client.get_response(history, tools=[WEATHER])

    first, second = run(server, scenario)

    assert server.body(0)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert first.message.function_calls == [
        FunctionCall("call_abc", "get_weather", {"city": "Paris"})
    ]
    assert first.message.text == ""
    assert first.finish_reason == "tool_calls"
    assert server.body(1)["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp_c": 21, "sky": "clear"}'},
    ]
    assert second.message.text == "Sunny in Paris."


def test_chat_results_errors_and_skipped_contents() -> None:
    server = Server(completion({"content": "ok"}))
    call = FunctionCall("c1", "delete_file", {"path": "/tmp/x"})
    history = [
        ChatMessage("assistant", (TextContent("Deleting."), call, Usage(1, 2))),
        ChatMessage("user", (ApprovalRequest(call, "agent"),)),
        ChatMessage("user", (ApprovalResponse(True, "fine"),)),
        ChatMessage("tool", (FunctionResult("c1", error="permission denied"),)),
        ChatMessage("tool", (FunctionResult("c2", "plain text"),)),
    ]
    run(server, lambda c: c.get_response(history))

    assert server.body()["messages"] == [
        {
            "role": "assistant",
            "content": "Deleting.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "delete_file", "arguments": '{"path": "/tmp/x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "Error: permission denied"},
        {"role": "tool", "tool_call_id": "c2", "content": "plain text"},
    ]


def test_chat_malformed_arguments_kept_raw_and_sent_back_verbatim() -> None:
    bad = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Par'},
    }
    server = Server(
        completion({"content": None, "tool_calls": [bad]}, finish="tool_calls"),
        completion({"content": "ok"}),
    )

    async def scenario(client: OpenAIChatClient) -> Any:
        first = await client.get_response([ChatMessage.user("?")])
        await client.get_response([first.message])
        return first

    first = run(server, scenario)
    assert first.message.function_calls == [
        FunctionCall("call_1", "get_weather", {"_raw": '{"city": "Par'})
    ]
    sent = server.body(1)["messages"][0]["tool_calls"][0]["function"]["arguments"]
    assert sent == '{"city": "Par'


def test_chat_options_mapping() -> None:
    server = Server(completion({"content": "{}"}), completion({"content": "{}"}))
    schema = {
        "title": "Weather report",
        "type": "object",
        "properties": {"sky": {"type": "string"}},
    }
    defaults = ChatOptions(temperature=0.5, max_tokens=50)

    async def scenario(client: OpenAIChatClient) -> None:
        await client.get_response([ChatMessage.user("x")])
        options = ChatOptions(
            model="gpt-other", temperature=0.0, response_format=schema, tool_choice="get_weather"
        )
        await client.get_response([ChatMessage.user("x")], tools=[WEATHER], options=options)

    run(server, scenario, default_options=defaults)

    assert server.body(0) == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.5,
        "max_tokens": 50,
    }
    body = server.body(1)
    assert body["model"] == "gpt-other"
    assert body["temperature"] == 0.0  # a per-request 0.0 overrides the default, not ignored
    assert body["max_tokens"] == 50
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Weather_report", "schema": schema},
    }
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_chat_named_tool_choices() -> None:
    server = Server(completion({"content": "a"}), completion({"content": "b"}))

    async def scenario(client: OpenAIChatClient) -> None:
        for choice in ("required", "none"):
            await client.get_response(
                [ChatMessage.user("x")], options=ChatOptions(tool_choice=choice)
            )

    run(server, scenario)
    assert [server.body(i)["tool_choice"] for i in (0, 1)] == ["required", "none"]


def test_chat_streaming_text() -> None:
    server = Server(
        sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, finish="stop"),
            chunk(usage=(5, 2)),
            done=True,
        )
    )
    updates = run(server, lambda c: stream(c, ChatMessage.user("Hi")))

    body = server.body()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [u.text for u in updates if u.text] == ["Hel", "lo"]
    reply = collect(updates)
    assert reply.message.text == "Hello"
    assert reply.usage == Usage(5, 2)
    assert reply.finish_reason == "stop"


def test_chat_streaming_tool_call_fragments_assembled() -> None:
    def call_start(index: int, call_id: str, city_part: str) -> dict[str, Any]:
        fn = {"name": "get_weather", "arguments": city_part}
        return {"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": fn}]}

    def args(index: int, part: str) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, "function": {"arguments": part}}]}

    server = Server(
        sse(
            chunk({"role": "assistant", "content": None, **call_start(0, "call_a", "")}),
            chunk(args(0, '{"ci')),
            chunk(call_start(1, "call_b", '{"city"')),
            chunk(args(0, 'ty": "Par')),
            chunk(args(1, ': "Oslo"}')),
            chunk(args(0, 'is"}')),
            chunk({}, finish="tool_calls"),
            chunk(usage=(20, 11)),
            done=True,
        )
    )
    updates = run(server, lambda c: stream(c, ChatMessage.user("?"), tools=[WEATHER]))

    with_calls = [u for u in updates if u.function_calls]
    assert len(with_calls) == 1, "calls are emitted once, whole, when the choice finishes"
    assert with_calls[0].function_calls == (
        FunctionCall("call_a", "get_weather", {"city": "Paris"}),
        FunctionCall("call_b", "get_weather", {"city": "Oslo"}),
    )
    assert with_calls[0].finish_reason == "tool_calls"
    assert server.body()["tools"][0]["function"]["name"] == "get_weather"
    assert collect(updates).usage == Usage(20, 11)


def test_chat_stream_without_finish_reason_still_emits_calls() -> None:
    fn = {"name": "get_weather", "arguments": '{"city": '}
    server = Server(
        sse(
            chunk(
                {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": fn}]}
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "oops"}}]}),
            done=True,
        )
    )
    updates = run(server, lambda c: stream(c, ChatMessage.user("?")))
    assert collect(updates).message.function_calls == [
        FunctionCall("call_1", "get_weather", {"_raw": '{"city": oops'})
    ]


# -- Responses wire format ---------------------------------------------------------------------


USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 4,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 16,
}


def response_body(
    output: list[dict[str, Any]], status: str = "completed", **extra: Any
) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "model": "gpt-test",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": USAGE if status != "in_progress" else None,
        **extra,
    }


def message_item(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_1",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def call_item(call_id: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": "get_weather",
        "arguments": arguments,
        "status": status,
    }


def test_responses_text_reply() -> None:
    server = Server(httpx2.Response(200, json=response_body([message_item("Hello!")])))
    conversation = [ChatMessage.system("Be brief."), ChatMessage.user("Hi")]
    reply = run(server, lambda c: c.get_response(conversation), api="responses")

    assert server.path() == "/v1/responses"
    assert server.body() == {
        "model": "gpt-test",
        "input": [
            {"type": "message", "role": "system", "content": "Be brief."},
            {"type": "message", "role": "user", "content": "Hi"},
        ],
    }
    assert reply.message == ChatMessage("assistant", (TextContent("Hello!"),))
    assert reply.usage == Usage(12, 4)
    assert reply.finish_reason == "stop"


def test_responses_tool_call_round_trip() -> None:
    server = Server(
        httpx2.Response(200, json=response_body([call_item("call_1", '{"city":"Paris"}')])),
        httpx2.Response(200, json=response_body([message_item("Sunny.")])),
    )

    async def scenario(client: OpenAIChatClient) -> tuple[Any, Any]:
        history = [ChatMessage.user("Weather?")]
        first = await client.get_response(history, tools=[WEATHER])
        history += [first.message, ChatMessage("tool", (FunctionResult("call_1", [1, 2]),))]
        return first, await client.get_response(history, tools=[WEATHER])

    first, second = run(server, scenario, api="responses")

    assert server.body(0)["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": WEATHER.parameters,
            "strict": False,
        }
    ]
    assert first.message.function_calls == [
        FunctionCall("call_1", "get_weather", {"city": "Paris"})
    ]
    assert first.finish_reason == "tool_calls"
    assert server.body(1)["input"] == [
        {"type": "message", "role": "user", "content": "Weather?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "[1, 2]"},
    ]
    assert second.message.text == "Sunny."


def test_responses_options_mapping() -> None:
    body = response_body(
        [], status="incomplete", incomplete_details={"reason": "max_output_tokens"}
    )
    server = Server(httpx2.Response(200, json=body))
    schema = {"type": "object", "properties": {"sky": {"type": "string"}}}
    options = ChatOptions(
        temperature=0.2, max_tokens=7, response_format=schema, tool_choice="get_weather"
    )
    reply = run(
        server,
        lambda c: c.get_response([ChatMessage.user("x")], tools=[WEATHER], options=options),
        api="responses",
    )
    sent = server.body()
    assert sent["temperature"] == 0.2
    assert sent["max_output_tokens"] == 7
    assert "max_tokens" not in sent
    assert sent["text"] == {"format": {"type": "json_schema", "name": "response", "schema": schema}}
    assert sent["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert reply.finish_reason == "length"


def text_stream_events() -> list[dict[str, Any]]:
    item = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant"}
    part = {"type": "output_text", "text": "", "annotations": []}
    at = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    return [
        ev("response.created", response=response_body([], status="in_progress")),
        ev("response.output_item.added", output_index=0, item={**item, "content": []}),
        ev("response.content_part.added", **at, part=part),
        ev("response.output_text.delta", **at, delta="Hel", logprobs=[]),
        ev("response.output_text.delta", **at, delta="lo", logprobs=[]),
        ev("response.output_text.done", **at, text="Hello", logprobs=[]),
        ev("response.output_item.done", output_index=0, item=message_item("Hello")),
        ev("response.completed", response=response_body([message_item("Hello")])),
    ]


def test_responses_streaming_text() -> None:
    server = Server(sse(*text_stream_events()))
    updates = run(server, lambda c: stream(c, ChatMessage.user("Hi")), api="responses")

    assert server.body()["stream"] is True
    assert [u.text for u in updates if u.text] == ["Hel", "lo"]
    reply = collect(updates)
    assert reply.message.text == "Hello"
    assert reply.usage == Usage(12, 4)
    assert reply.finish_reason == "stop"


def test_responses_streaming_function_call_fragments_assembled() -> None:
    final = call_item("call_1", '{"city": "Paris"}')
    at = {"item_id": "fc_call_1", "output_index": 0}
    server = Server(
        sse(
            ev("response.created", response=response_body([], status="in_progress")),
            ev(
                "response.output_item.added",
                output_index=0,
                item=call_item("call_1", "", "in_progress"),
            ),
            ev("response.function_call_arguments.delta", **at, delta='{"ci'),
            ev("response.function_call_arguments.delta", **at, delta='ty": '),
            ev("response.function_call_arguments.delta", **at, delta='"Paris"}'),
            ev("response.function_call_arguments.done", **at, arguments=final["arguments"]),
            ev("response.output_item.done", output_index=0, item=final),
            ev("response.completed", response=response_body([final])),
        )
    )
    updates = run(
        server, lambda c: stream(c, ChatMessage.user("?"), tools=[WEATHER]), api="responses"
    )

    with_calls = [u.function_calls for u in updates if u.function_calls]
    assert with_calls == [(FunctionCall("call_1", "get_weather", {"city": "Paris"}),)]
    reply = collect(updates)
    assert reply.finish_reason == "tool_calls"
    assert reply.usage == Usage(12, 4)


def test_responses_stream_assembles_fragments_when_server_skips_item_done() -> None:
    # A minimal OpenAI-compatible server: argument deltas, then straight to response.completed.
    at = {"item_id": "fc_call_9", "output_index": 0}
    server = Server(
        sse(
            ev(
                "response.output_item.added",
                output_index=0,
                item=call_item("call_9", "", "in_progress"),
            ),
            ev("response.function_call_arguments.delta", **at, delta='{"city":'),
            ev("response.function_call_arguments.delta", **at, delta=' "Rome"}'),
            ev("response.completed", response=response_body([])),
        )
    )
    updates = run(server, lambda c: stream(c, ChatMessage.user("?")), api="responses")
    reply = collect(updates)
    assert reply.message.function_calls == [FunctionCall("call_9", "get_weather", {"city": "Rome"})]
    assert reply.finish_reason == "tool_calls"


def test_responses_stream_failure_is_chat_client_error() -> None:
    error_info = {"code": "server_error", "message": "model crashed"}
    failed = response_body([], status="failed", error=error_info)
    server = Server(sse(ev("response.failed", response=failed)))
    with pytest.raises(ChatClientError, match="model crashed") as info:
        run(server, lambda c: stream(c, ChatMessage.user("?")), api="responses")
    assert info.value.code == "server_error"
    assert info.value.status_code is None


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (500, "The server had an error", None),
        (401, "Incorrect API key provided", "invalid_api_key"),
    ],
)
def test_http_errors_become_chat_client_error(
    api: str, status: int, message: str, code: str | None
) -> None:
    server = Server(error(status, message, code))
    with pytest.raises(ChatClientError) as info:
        run(server, lambda c: c.get_response([ChatMessage.user("x")]), api=api)
    err = info.value
    assert isinstance(err, WorkflowError)
    assert (err.status_code, err.message, err.code) == (status, message, code)
    assert str(err) == f"HTTP {status}: {message}"
    assert err.__cause__ is None
    assert err.__suppress_context__


def test_http_error_on_streaming_request() -> None:
    server = Server(error(429, "Rate limit reached", "rate_limit_exceeded"))
    with pytest.raises(ChatClientError) as info:
        run(server, lambda c: stream(c, ChatMessage.user("x")))
    assert info.value.status_code == 429


def test_error_event_inside_chat_stream() -> None:
    server = Server(
        sse(chunk({"content": "Hel"}), {"error": {"message": "overloaded", "type": "server_error"}})
    )
    with pytest.raises(ChatClientError, match="overloaded"):
        run(server, lambda c: stream(c, ChatMessage.user("x")))


# -- configuration and lifecycle --------------------------------------------------------------


class _EnvServer(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        _EnvServer.seen.append((self.path, self.headers["authorization"], body))
        reply = json.dumps(completion({"content": "from env"}).json()).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_environment_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    _EnvServer.seen = []
    with ThreadingHTTPServer(("127.0.0.1", 0), _EnvServer) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
            monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
            monkeypatch.setenv("OPENAI_MODEL", "local-model")

            async def main() -> str:
                async with OpenAIChatClient() as client:
                    assert client.model == "local-model"
                    return (await client.get_response([ChatMessage.user("hi")])).message.text

            assert asyncio.run(main()) == "from env"
        finally:
            httpd.shutdown()
            thread.join()
    [(path, auth, body)] = _EnvServer.seen
    assert (path, auth, body["model"]) == (
        "/v1/chat/completions",
        "Bearer sk-from-env",
        "local-model",
    )


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.invalid/v1")
    monkeypatch.setenv("OPENAI_MODEL", "env-model")

    async def main() -> None:
        client = OpenAIChatClient("arg-model", api_key="sk-arg", base_url="http://arg.invalid/v1")
        sdk = client._connection()
        assert (client.model, sdk.api_key, str(sdk.base_url)) == (
            "arg-model",
            "sk-arg",
            "http://arg.invalid/v1/",
        )
        await client.aclose()
        assert sdk.is_closed(), "a client it created is closed by aclose()"

    asyncio.run(main())


def test_model_fallback_and_local_server_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)

    async def main() -> None:
        async with OpenAIChatClient() as client:
            assert client.model == DEFAULT_MODEL == "gpt-4o-mini"
            with pytest.raises(ChatClientError, match="OPENAI_API_KEY"):
                await client.get_response([ChatMessage.user("x")])
        async with OpenAIChatClient(base_url="http://localhost:11434/v1") as local:
            assert local._connection().api_key == "no-key"

    asyncio.run(main())


def test_nothing_created_before_first_use_and_closed_client_refuses() -> None:
    server = Server(completion({"content": "hi"}))

    async def main() -> None:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(server)) as http:
            sdk = AsyncOpenAI(base_url="http://test/v1", api_key="test", http_client=http)
            client = OpenAIChatClient(client=sdk)
            await client.get_response([ChatMessage.user("x")])
            await client.aclose()
            assert not http.is_closed, "an injected client stays the caller's"
            with pytest.raises(ChatClientError, match="closed"):
                await client.get_response([ChatMessage.user("x")])

    asyncio.run(main())
    lazy = OpenAIChatClient(api_key="k")  # constructed outside any event loop
    assert lazy._client is None


def test_invalid_api_choice() -> None:
    with pytest.raises(ChatClientError, match="responses"):
        OpenAIChatClient(api="completions")  # type: ignore[arg-type]


def test_missing_openai_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r"pip install 'stepgraph\[openai\]'"):
        OpenAIChatClient()


def test_module_imports_without_openai() -> None:
    code = "import sys; sys.modules['openai'] = None; import stepgraph.agents._openai"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_headers_from_options_reach_the_provider() -> None:
    server = Server(completion({"content": "ok"}))
    options = ChatOptions(headers={"X-Tenant": "acme"})
    run(server, lambda c: c.get_response([ChatMessage.user("Hi")], options=options))
    assert server.requests[0].headers["x-tenant"] == "acme"
    assert "headers" not in server.body()  # a header, not a body field


def test_a_middleware_adds_a_header_to_the_model_call() -> None:
    from dataclasses import replace

    from stepgraph.agents import Agent, Middleware

    class Tenant(Middleware):
        async def model_call(self, call: Any, next: Any) -> Any:
            call.options = replace(call.options or ChatOptions(), headers={"X-Tenant": "acme"})
            return await next(call)

    server = Server(completion({"content": "ok"}))

    async def scenario(client: OpenAIChatClient) -> Any:
        agent = Agent("a", client, middleware=[Tenant()])
        return await agent.run([ChatMessage.user("Hi")])

    run(server, scenario)
    assert server.requests[0].headers["x-tenant"] == "acme"
