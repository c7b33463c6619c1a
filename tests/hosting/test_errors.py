"""Malformed requests get 4xx with a clear message in OpenAI's error shape, never a traceback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from tests.hosting import apps
from tests.hosting.support import client_for, in_process

import stepgraph as sg
from stepgraph.hosting import create_app, open_store
from stepgraph.stores.file import FileCheckpointStore
from stepgraph.stores.sqlite import SqliteCheckpointStore

BAD_BODIES: list[tuple[Any, str]] = [
    (b"not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1, 2]", "JSON object"),
    (b'{"input": 5}', "input must be a string or a list"),
    (b"{}", "input is required"),
    (b'{"input": [{"type": "weird"}]}', "message and function_call_output"),
    (b'{"input": [{"role": "robot", "content": "x"}]}', "role must be one of"),
    (b'{"input": [{"role": "user", "content": [{"type": "input_image"}]}]}', "text only"),
    (b'{"input": [{"type": "function_call_output", "call_id": 3, "output": "x"}]}', "call_id"),
    (b'{"input": "x", "stream": "yes"}', "stream must be true or false"),
    (b'{"input": "x", "metadata": {"a": 1}}', "metadata"),
    (b'{"input": "x", "conversation": 7}', "conversation must be"),
    (b'{"input": "x", "previous_response_id": ""}', "previous_response_id"),
    (b'{"input": "x", "background": true, "stream": true}', "background"),
    (b'{"input": "x", "background": "yes"}', "background must be true or false"),
    (b'{"input": "x", "double_texting": "later"}', "double_texting must be one of"),
    (b'{"input": []}', "no user message"),
    (b'{"input": "x", "model": 3}', "model must be a string"),
    (b"\xff\xfe", "not valid JSON"),
]


def test_malformed_bodies_get_400_with_a_clear_message() -> None:
    async def main() -> None:
        async with in_process(apps.chat) as (app, _):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://app") as http:
                for body, expected in BAD_BODIES:
                    r = await http.post(
                        "/v1/responses", content=body, headers={"content-type": "application/json"}
                    )
                    assert r.status_code == 400, (body, r.text)
                    err = r.json()["error"]
                    assert expected in err["message"], (body, err)
                    assert err["type"] == "invalid_request_error"
                    assert "Traceback" not in r.text
                r = await http.get("/v1/nowhere")
                assert r.status_code == 404
                assert r.json()["error"]["message"]
                r = await http.put("/v1/responses")
                assert r.status_code == 405
                assert r.json()["error"]["type"]
                r = await http.get("/v1/conversations/conv_x/items", params={"limit": "0"})
                assert r.status_code == 404
                conv = (await http.post("/v1/conversations", json={})).json()
                r = await http.get(f"/v1/conversations/{conv['id']}/items", params={"limit": "x"})
                assert r.status_code == 400
                assert "limit" in r.json()["error"]["message"]
                big = b'{"input": "' + b"x" * (5 * 1024 * 1024) + b'"}'
                r = await http.post("/v1/responses", content=big)
                assert r.status_code == 413

    asyncio.run(main())


def test_api_key_is_required_when_set() -> None:
    async def main() -> None:
        app = create_app(apps.chat, api_key="s3cret")
        async with app.router.lifespan_context(app):
            wrong = client_for(app, api_key="nope")
            with pytest.raises(openai.AuthenticationError):
                await wrong.responses.create(model="chat", input="x")
            right = client_for(app, api_key="s3cret")
            assert (await right.responses.create(model="chat", input="x")).output_text
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://app") as http:
                assert (await http.get("/openapi.json")).status_code == 200
                assert (await http.get("/healthz")).status_code == 200
                assert (await http.get("/ui/")).status_code == 200
                assert (await http.get("/ui/api/sessions")).status_code == 401
                r = await http.get("/ui/api/workflow", headers={"authorization": "Bearer s3cret"})
                assert r.status_code == 200

    asyncio.run(main())


def test_a_continuation_whose_checkpoint_is_gone_is_404(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteCheckpointStore(tmp_path / "runs.db")
        first = create_app(apps.chat, store=store)
        async with first.router.lifespan_context(first):
            r1 = await client_for(first).responses.create(model="chat", input="x")
        session_id = r1.model_extra["stepgraph"]["session_id"]  # type: ignore[index]
        await store.delete_session(session_id)
        second = create_app(apps.chat, store=store)  # a restarted server: nothing cached
        async with second.router.lifespan_context(second):
            with pytest.raises(openai.NotFoundError, match="gone"):
                await client_for(second).responses.create(
                    model="chat", input="y", previous_response_id=r1.id
                )
        await store.aclose()

    asyncio.run(main())


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store("memory:"), sg.MemoryCheckpointStore)
    db = open_store(f"sqlite:///{tmp_path}/a/b.db")
    assert isinstance(db, SqliteCheckpointStore)
    assert db.path == f"{tmp_path}/a/b.db"
    assert (tmp_path / "a").is_dir()
    files = open_store(f"file://{tmp_path}/logs")
    assert isinstance(files, FileCheckpointStore)
    assert (tmp_path / "logs").is_dir()
    rel = open_store("sqlite:///./.stepgraph-test/x.db")
    assert isinstance(rel, SqliteCheckpointStore)
    assert rel.path == "./.stepgraph-test/x.db"
    Path(".stepgraph-test").rmdir()
    with pytest.raises(ValueError, match="unknown store URL scheme"):
        open_store("redis://localhost")
    with pytest.raises(ValueError, match="empty"):
        open_store("")


def test_405_names_every_method_of_the_path_in_allow() -> None:
    async def main() -> None:
        async with in_process(apps.chat) as (app, _):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://app") as http:
                for method, path, allowed in [
                    ("PUT", "/v1/responses", {"POST"}),
                    ("PUT", "/v1/responses/resp_x", {"GET", "HEAD", "DELETE"}),
                    ("PATCH", "/v1/conversations/conv_x", {"GET", "HEAD", "POST", "DELETE"}),
                    ("GET", "/v1/conversations", {"POST"}),
                    ("DELETE", "/ui/api/sessions", {"GET", "HEAD", "POST"}),
                ]:
                    r = await http.request(method, path)
                    assert r.status_code == 405, (method, path)
                    got = {m.strip() for m in r.headers["allow"].split(",")}
                    assert got == allowed, (method, path, got)
                    assert method in r.json()["error"]["message"]
                assert (await http.head("/healthz")).status_code == 200

    asyncio.run(main())


def test_creating_a_conversation_needs_a_json_body() -> None:
    async def main() -> None:
        async with in_process(apps.chat) as (app, client):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://app") as http:
                r = await http.post("/v1/conversations")
                assert r.status_code == 400
                assert "empty" in r.json()["error"]["message"]
                assert app.state.host.log.sessions() == []
            conv = await client.conversations.create()  # the official client sends {}
            assert conv.id.startswith("conv_")

    asyncio.run(main())
