"""Cheap hostile requests get a 4xx before any turn runs, never a 5xx (issue 18, item 1).

Each reproduction of the reliability pass is one test; a Hypothesis fuzz of
`POST /v1/responses` (bodies built from the shapes the server reads, with
hostile values anywhere) checks that no request at all gets a 5xx.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import hypothesis
import pytest
from hypothesis import strategies as st
from starlette.applications import Starlette
from tests.hosting import apps

import stepgraph as sg
from stepgraph.hosting import create_app

SURROGATE = "\ud800"


class Server:
    """One app (no lifespan: plain responses need none) and an HTTP client, on one loop."""

    def __init__(self, app: Starlette, store: sg.CheckpointStore) -> None:
        self.app, self.store = app, store
        self.http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://app"
        )

    async def post(self, path: str, body: bytes) -> httpx2.Response:
        headers = {"content-type": "application/json"}
        return await self.http.post(path, content=body, headers=headers)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.post("/v1/responses", json.dumps(body).encode())
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def sessions(self) -> list[str]:
        return [s["id"] for s in self.app.state.host.log.sessions()]


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as r:
        yield r


@pytest.fixture
def server(runner: asyncio.Runner) -> Iterator[Server]:
    store = sg.MemoryCheckpointStore()
    s = Server(create_app(apps.chat, store=store), store)
    yield s
    runner.run(s.http.aclose())
    s.app.state.host.log.close()


def _raw(text: str) -> bytes:
    """A body whose JSON escapes (`\\ud800`) stay escapes: the bytes a client sends."""
    return text.encode()


def _refused(r: httpx2.Response, *words: str) -> None:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    for word in words:
        assert word in err["message"], err


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ('{"input": "\\ud800"}', "input"),
        ('{"input": [{"role": "user", "content": "a\\udfffb"}]}', "input"),
        ('{"input": "x", "model": "\\ud800"}', "model"),
        ('{"input": "x", "metadata": {"k": "\\ud800"}}', "metadata"),
        ('{"input": "x", "metadata": {"\\ud800": "v"}}', "metadata"),
        ('{"input": "x", "previous_response_id": "resp_\\ud800"}', "previous_response_id"),
        ('{"input": "x", "conversation": "conv_\\ud800"}', "conversation"),
        ('{"input": "x", "conversation": {"id": "conv_\\ud800"}}', "conversation"),
        ('{"input": "x", "unknown_field": ["\\ud800"]}', "unknown_field"),
        (
            '{"input": [{"type": "function_call_output", "call_id": "c", "output": "\\ud800"}]}',
            "input",
        ),
    ],
)
def test_a_lone_surrogate_anywhere_is_a_400_and_runs_nothing(
    runner: asyncio.Runner, server: Server, body: str, param: str
) -> None:
    r = runner.run(server.post("/v1/responses", _raw(body)))
    _refused(r, "lone surrogate")
    assert r.json()["error"]["param"] == param
    assert server.sessions() == []  # no turn ran


def test_a_lone_surrogate_in_an_answer_is_a_400(runner: asyncio.Runner, server: Server) -> None:
    async def main() -> None:
        ask = await server.create({"input": "approve go"})
        call = ask["output"][0]["call_id"]
        for output in ("\\ud800", '{\\"approved\\": true, \\"note\\": \\"\\\\ud800\\"}'):
            body = (
                '{"previous_response_id": "' + ask["id"] + '", "input": [{"type": '
                '"function_call_output", "call_id": "' + call + '", "output": "' + output + '"}]}'
            )
            _refused(await server.post("/v1/responses", _raw(body)), "lone surrogate")
        # The request still waits for its answer: nothing ran.
        done = await server.create(
            {
                "previous_response_id": ask["id"],
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": call,
                        "output": '{"approved": true}',
                    }
                ],
            }
        )
        assert done["output"][0]["content"][0]["text"] == "go: approved"

    runner.run(main())


@pytest.mark.parametrize("depth", [65, 1_000, 100_000])
def test_deep_nesting_is_a_400(runner: asyncio.Runner, server: Server, depth: int) -> None:
    body = '{"input": "x", "tools": ' + "[" * depth + "]" * depth + "}"
    _refused(runner.run(server.post("/v1/responses", body.encode())), "nests deeper than 64")
    assert server.sessions() == []


def test_deep_json_in_an_answer_is_a_400(runner: asyncio.Runner, server: Server) -> None:
    async def main() -> None:
        ask = await server.create({"input": "approve go"})
        call = ask["output"][0]["call_id"]
        for output in ("[" * 5000 + "]" * 5000, '{"approved": ' + "[" * 100 + "]" * 100 + "}"):
            item = {"type": "function_call_output", "call_id": call, "output": output}
            body = json.dumps({"previous_response_id": ask["id"], "input": [item]})
            _refused(await server.post("/v1/responses", body.encode()), "nests deeper")

    runner.run(main())


def test_an_integer_over_4300_digits_is_a_400(runner: asyncio.Runner, server: Server) -> None:
    body = '{"input": "x", "temperature": ' + "9" * 5000 + "}"
    _refused(runner.run(server.post("/v1/responses", body.encode())), "4300 digits")
    body = '{"input": "x", "temperature": NaN}'
    _refused(runner.run(server.post("/v1/responses", body.encode())), "NaN")
    assert server.sessions() == []


@pytest.mark.parametrize(
    "item",
    [
        {"role": ["user"], "content": "x"},
        {"role": {"user": 1}, "content": "x"},
        {"type": "message", "role": [], "content": "x"},
        {"role": "user", "content": [{"type": ["input_text"], "text": "x"}]},
        {"role": "user", "content": [{"type": {"a": 1}, "text": "x"}]},
    ],
)
def test_a_list_or_object_as_role_or_type_is_a_400(
    runner: asyncio.Runner, server: Server, item: dict[str, Any]
) -> None:
    body = json.dumps({"input": [item]}).encode()
    _refused(runner.run(server.post("/v1/responses", body)))
    assert server.sessions() == []


def test_conversation_routes_refuse_the_same_bodies(runner: asyncio.Runner, server: Server) -> None:
    async def main() -> None:
        ok = await server.post("/v1/conversations", b'{"metadata": {"k": "v"}}')
        assert ok.status_code == 200
        conv = ok.json()["id"]
        for path in ("/v1/conversations", f"/v1/conversations/{conv}"):
            for body, words in [
                (b'{"metadata": {"k": "\\ud800"}}', "lone surrogate"),
                (b'{"metadata": {"\\udfff": "v"}}', "lone surrogate"),
                (b'{"metadata": ' + b"[" * 100 + b"]" * 100 + b"}", "nests deeper"),
                (b'{"metadata": ' + b"1" * 5000 + b"}", "4300 digits"),
                (b'{"metadata": {"k": ["v"]}}', "metadata"),
            ]:
                _refused(await server.post(path, body), *words)
        got = await server.http.get(f"/v1/conversations/{conv}")
        assert got.json()["metadata"] == {"k": "v"}

    runner.run(main())


def test_nul_characters_on_postgresql(runner: asyncio.Runner) -> None:
    """PostgreSQL text holds no NUL: such input is stored (the label made safe), and ids
    with one name nothing (404), instead of a 500 after the turn ran."""
    from tests.stores.pg_support import RUN, drop_schemas, require_dsn

    from stepgraph.stores.postgres import PostgresCheckpointStore

    dsn, schema = require_dsn(), f"{RUN}_nul"
    store = PostgresCheckpointStore(dsn, schema=schema, max_size=2)
    server = Server(create_app(apps.chat, store=store), store)

    async def main() -> None:
        r = await server.create({"input": "a\x00b"})
        assert r["output"][0]["content"][0]["text"] == "turn 1: a\x00b"
        for body in ({"previous_response_id": "resp_\x00"}, {"conversation": "conv_\x00"}):
            got = await server.post("/v1/responses", json.dumps({"input": "x", **body}).encode())
            assert got.status_code == 404, got.text
        for method, path in [
            ("GET", "/v1/responses/resp_%00"),
            ("DELETE", "/v1/responses/resp_%00"),
            ("GET", "/v1/responses/resp_%00/input_items"),
            ("GET", "/v1/conversations/conv_%00"),
            ("DELETE", "/v1/conversations/conv_%00"),
            ("GET", "/v1/conversations/conv_%00/items"),
            ("GET", "/ui/api/sessions/s%00"),
            ("GET", "/ui/api/sessions/s%00/checkpoints"),
        ]:
            got = await server.http.request(method, path)
            assert got.status_code == 404, (method, path, got.text)

    try:
        runner.run(main())
    finally:
        server.app.state.host.log.close()
        runner.run(server.http.aclose())
        runner.run(store.aclose())
        drop_schemas(dsn, schema)


# -- the fuzz -----------------------------------------------------------------------------

_HOSTILE_TEXT = st.sampled_from([SURROGATE, "a\udfffb", "\x00", "a\x00b", "\uffff", "é" * 3])
_COMMANDS = st.sampled_from(["hi", "approve go", "pick p", "twice t", "json a b", "boom", ""])
_TEXT = st.one_of(st.text(max_size=12), _COMMANDS, _COMMANDS, _HOSTILE_TEXT)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
_ANY = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)),
    max_leaves=8,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `value`, sometimes any JSON at all."""
    return st.one_of(*[value] * 6, _ANY)


_PART = st.fixed_dictionaries(
    {"type": _maybe(st.sampled_from(["input_text", "output_text", "text", "input_image"]))},
    optional={"text": _maybe(_TEXT)},
)
_MESSAGE = st.fixed_dictionaries(
    {},
    optional={
        "type": _maybe(st.just("message")),
        "role": _maybe(st.sampled_from(["user", "system", "developer", "assistant", "robot"])),
        "content": _maybe(st.one_of(_TEXT, st.lists(_maybe(_PART), max_size=3))),
    },
)
_ANSWER = st.fixed_dictionaries(
    {"type": _maybe(st.sampled_from(["function_call_output", "function_call"]))},
    optional={
        "call_id": _maybe(_TEXT),
        "output": _maybe(st.one_of(_TEXT, st.just('{"approved": true}'), st.lists(_PART))),
    },
)
_BODY = st.fixed_dictionaries(
    {"input": _maybe(st.one_of(_TEXT, st.lists(st.one_of(_MESSAGE, _ANSWER), max_size=3)))},
    optional={
        "model": _maybe(_TEXT),
        "previous_response_id": _maybe(_TEXT),
        "conversation": _maybe(st.one_of(_TEXT, st.fixed_dictionaries({"id": _maybe(_TEXT)}))),
        "metadata": _maybe(st.dictionaries(_TEXT, _maybe(_TEXT), max_size=3)),
        "stream": _maybe(st.booleans()),
        "background": _maybe(st.booleans()),
        "stepgraph_events": _maybe(st.booleans()),
        "temperature": _ANY,
    },
)


def _encode(value: Any) -> bytes:
    """JSON with lone surrogates kept as escapes (what a hostile client sends)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=False).encode()


_NASTY_BYTES = st.sampled_from(
    [
        b"[" * 3000 + b"]" * 3000,
        b'{"input": ' + b"1" * 4400 + b"}",
        b'{"input": "x", "model": Infinity}',
        b'{"input": "\\udc00\\ud800"}',
        b"\xff\xfe\x00",
        b'{"input": "x"',
    ]
)
_NOT_JSON = st.one_of(*[st.none()] * 9, _NASTY_BYTES)  # one body in ten


@pytest.mark.parametrize("store_kind", ["memory", "postgres"])
def test_fuzz_responses_never_answer_5xx(store_kind: str) -> None:
    """Hypothesis bodies for `POST /v1/responses` (and the ids they name, made real half
    of the time): every answer is below 500 and in OpenAI's error shape when refused."""

    store: sg.CheckpointStore = sg.MemoryCheckpointStore()
    dsn = schema = ""
    if store_kind == "postgres":
        from tests.stores.pg_support import RUN, require_dsn

        from stepgraph.stores.postgres import PostgresCheckpointStore

        dsn, schema = require_dsn(), f"{RUN}_fuzz"
        store = PostgresCheckpointStore(dsn, schema=schema, max_size=4)
    server = Server(create_app(apps.chat, store=store), store)  # no lifespan: none needed

    with asyncio.Runner() as runner:
        real: dict[str, str] = {}

        async def prepare() -> None:
            ask = await server.create({"input": "approve go"})
            real["resp"] = ask["id"]
            real["call"] = ask["output"][0]["call_id"]
            r = await server.post("/v1/conversations", b"{}")
            real["conv"] = r.json()["id"]

        runner.run(prepare())

        @hypothesis.given(body=_BODY, real_ids=st.booleans(), nasty=_NOT_JSON)
        @hypothesis.settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(body: dict[str, Any], real_ids: bool, nasty: bytes | None) -> None:
            if real_ids:
                if "previous_response_id" in body:
                    body["previous_response_id"] = real["resp"]
                if "conversation" in body:
                    body["conversation"] = real["conv"]
                items = body.get("input")
                for item in items if isinstance(items, list) else []:
                    if isinstance(item, dict) and "call_id" in item:
                        item["call_id"] = real["call"]
            data = nasty if nasty is not None else _encode(body)
            r = runner.run(server.post("/v1/responses", data))
            if r.status_code == 503 and nasty is None and body.get("background") is True:
                # A valid background request needs the app's lifespan, not entered here.
                assert r.json()["error"]["code"] == "not_started"
                return
            assert r.status_code < 500, (data[:300], r.text)
            if r.status_code >= 400:
                assert set(r.json()["error"]) == {"message", "type", "param", "code"}

        try:
            check()
        finally:
            server.app.state.host.log.close()
            runner.run(server.http.aclose())
            runner.run(store.aclose())
            if dsn:
                from tests.stores.pg_support import drop_schemas

                drop_schemas(dsn, schema)
