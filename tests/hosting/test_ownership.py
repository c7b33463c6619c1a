"""Who may see what (issue #23): an auth hook, ownership of every record, admins.

The scenario (`ownership`) runs in process, again after a restart (the SQLite
log reopened), and across two `stepgraph serve --auth ...` replicas sharing a
PostgreSQL log (skipped when PostgreSQL is unreachable, failed under CI=true).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from starlette.applications import Starlette
from tests.hosting import apps, authhook
from tests.hosting.authhook import token
from tests.hosting.ownership import ANSWER, Callers, check, make
from tests.hosting.support import APPS, ServerProcess, client_for

from stepgraph.hosting import Principal, create_app
from stepgraph.stores import SqliteCheckpointStore

HOOK = Path(authhook.__file__)
TOKENS = {"alice": token("alice"), "bob": token("bob"), "admin": token("root", "admin")}


def _http(app: Starlette, key: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app),
        base_url="http://app",
        headers={"authorization": f"Bearer {key}"},
    )


@contextlib.asynccontextmanager
async def callers(app: Starlette) -> AsyncIterator[Callers]:
    async with app.router.lifespan_context(app):
        c = Callers(
            {who: client_for(app, key) for who, key in TOKENS.items()},
            {who: _http(app, key) for who, key in TOKENS.items()},
        )
        try:
            yield c
        finally:
            for client in c.ai.values():
                await client.close()
            for http in c.http.values():
                await http.aclose()


def _run(coro: Any) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(60):
            await coro

    asyncio.run(bounded())


def _app(tmp: Path, **kw: Any) -> Starlette:
    return create_app(apps.chat, store=SqliteCheckpointStore(tmp / "runs.db"), **kw)


def test_principal_is_a_frozen_dataclass() -> None:
    p = Principal("alice", ("admin",))
    assert p.is_admin
    assert Principal("bob").roles == ()
    with pytest.raises(AttributeError):
        p.identity = "eve"  # type: ignore[misc]
    with pytest.raises(ValueError, match="identity"):
        Principal("")


async def _test_hook_refuses_unknown_callers_with_401(tmp_path: Path, hook: Any) -> None:
    app = _app(tmp_path, auth=hook)
    async with callers(app) as c:
        forged = client_for(app, token("alice")[:-2] + "xx")
        with pytest.raises(openai.AuthenticationError) as caught:
            await forged.responses.create(model="chat", input="hi")
        assert caught.value.code == "invalid_api_key"
        await forged.close()
        async with _http(app, "nonsense") as http:
            assert (await http.get("/ui/api/sessions")).status_code == 401
            assert (await http.get("/healthz")).status_code == 200
        r = await c.ai["alice"].responses.create(model="chat", input="hi")
        assert r.output_text == "turn 1: hi"


async def _test_two_identities_and_an_admin_then_a_restart(tmp_path: Path) -> None:
    async with callers(_app(tmp_path, auth=authhook.authenticate)) as c:
        made = await make(c)
        await check(c, made)
    # A busy session of Alice's is still a 404 for Bob, never the 409 that tells it exists.
    app = _app(tmp_path, auth=authhook.authenticate)
    async with callers(app) as c:
        host = app.state.host
        host.claim(made.ui_session, "session")
        try:
            for path, body in [
                ("runs", {"input": "x"}),
                ("respond", {"answers": {made.ui_request: {"approved": True}}}),
                ("resume", {}),
            ]:
                url = f"/ui/api/sessions/{made.ui_session}/{path}"
                r = await c.http["bob"].post(url, json=body)
                assert r.status_code == 404, (path, r.text)
                busy = await c.http["alice"].post(url, json=body)
                assert busy.status_code == 409, (path, busy.text)
        finally:
            await host.release(made.ui_session)
    # The same files, a new process's worth of app: ownership is in the log.
    async with callers(_app(tmp_path, auth=authhook.authenticate)) as c:
        await check(c, made, same_process=False)
        # Alice answers her own call in her conversation, after the restart.
        answer = [{"type": "function_call_output", "call_id": made.call_id, "output": ANSWER}]
        done = await c.ai["alice"].responses.create(
            model="chat",
            input=answer,  # pyright: ignore[reportArgumentType]
            conversation=made.conv,
        )
        assert done.status == "completed"


async def _test_api_key_is_one_admin_and_no_auth_is_one_anonymous_admin(tmp_path: Path) -> None:
    async with callers(_app(tmp_path, auth=authhook.authenticate)) as c:
        alices = await c.ai["alice"].responses.create(model="chat", input="hi")
    for kw in ({"api_key": TOKENS["bob"]}, {}):
        app = _app(tmp_path, **kw)
        async with app.router.lifespan_context(app):
            client = client_for(app, TOKENS["bob"])
            assert (await client.responses.retrieve(alices.id)).output_text == "turn 1: hi"
            await client.close()


def _v0_log(path: Path) -> None:
    """A hosting log as stepgraph wrote it before owners (schema version 0)."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE sessions (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            origin TEXT NOT NULL, label TEXT NOT NULL, created_at REAL NOT NULL);
        CREATE TABLE conversations (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,
            created_at INTEGER NOT NULL, metadata TEXT NOT NULL, head_response TEXT,
            head_checkpoint TEXT);
        CREATE TABLE responses (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
            session_id TEXT NOT NULL, conversation_id TEXT, checkpoint_id TEXT,
            body TEXT NOT NULL, input_items TEXT NOT NULL);
        INSERT INTO sessions (id, origin, label, created_at) VALUES ('sess_old', 'responses', 'x', 0);
        INSERT INTO conversations VALUES ('conv_old', 'conv_old', 0, '{}', NULL, NULL);
        """
    )
    body = {"id": "resp_old", "object": "response", "status": "completed", "output": []}
    db.execute(
        "INSERT INTO responses (id, session_id, body, input_items) VALUES (?, ?, ?, ?)",
        ("resp_old", "sess_old", json.dumps(body), "[]"),
    )
    db.commit()
    db.close()


async def _test_rows_from_before_owners_are_the_admins(tmp_path: Path) -> None:
    _v0_log(tmp_path / "runs.hosting.db")
    async with callers(_app(tmp_path, auth=authhook.authenticate)) as c:
        with pytest.raises(openai.NotFoundError):
            await c.ai["alice"].responses.retrieve("resp_old")
        with pytest.raises(openai.NotFoundError):
            await c.ai["alice"].conversations.retrieve("conv_old")
        assert (await c.http["alice"].get("/ui/api/sessions")).json()["data"] == []
        assert (await c.ai["admin"].responses.retrieve("resp_old")).id == "resp_old"
        assert (await c.ai["admin"].conversations.retrieve("conv_old")).id == "conv_old"
        sessions = (await c.http["admin"].get("/ui/api/sessions")).json()["data"]
        assert {s["id"] for s in sessions} == {"sess_old"}
    with sqlite3.connect(tmp_path / "runs.hosting.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    app = _app(tmp_path)  # no auth: the one anonymous caller sees them, as before
    async with app.router.lifespan_context(app):
        client = client_for(app)
        assert (await client.responses.retrieve("resp_old")).id == "resp_old"
        await client.close()


# -- the live event stream --------------------------------------------------------------


class AuthServer(ServerProcess):
    """`stepgraph serve apps.py:chat --auth authhook.py:authenticate` in a subprocess."""

    def argv(self) -> list[str]:
        cli = [sys.executable, "-m", "stepgraph.cli", "serve", self.target]
        return [*cli, "--store", self.store_url, "--port", "0", "--auth", f"{HOOK}:authenticate"]

    def as_(self, who: str) -> tuple[openai.AsyncOpenAI, httpx2.AsyncClient]:
        key = TOKENS[who]
        ai = openai.AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=key, max_retries=0)
        http = httpx2.AsyncClient(
            base_url=self.base_url, headers={"authorization": f"Bearer {key}"}, timeout=30
        )
        return ai, http


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    tmp = tmp_path_factory.mktemp("auth")
    server = AuthServer(f"{APPS}:chat", f"sqlite:///{tmp}/runs.db", tmp / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _records_until(lines: AsyncIterator[str], response_id: str) -> list[dict[str, Any]]:
    """SSE records read until the run of `response_id` has ended."""
    seen: list[dict[str, Any]] = []
    async for line in lines:
        if not line.startswith("data: "):
            continue
        rec: dict[str, Any] = json.loads(line[6:])
        seen.append(rec)
        run = rec.get("run") or {}
        if run.get("response_id") == response_id and run.get("status") != "running":
            return seen
    raise AssertionError("the stream ended early")


def test_event_stream_carries_only_the_callers_records(auth_server: AuthServer) -> None:
    async def main() -> None:
        alice, alice_http = auth_server.as_("alice")
        bob, bob_http = auth_server.as_("bob")
        _, admin_http = auth_server.as_("admin")
        async with (
            alice,
            bob,
            alice_http,
            bob_http,
            admin_http,
            bob_http.stream("GET", "/ui/api/events") as bobs,
            admin_http.stream("GET", "/ui/api/events") as admins,
        ):
            bob_lines, admin_lines = bobs.aiter_lines(), admins.aiter_lines()
            for lines in (bob_lines, admin_lines):  # subscribed once the stream says so
                while (await anext(lines)) != ": connected":
                    pass
            hers = await alice.responses.create(model="chat", input="secret")
            his = await bob.responses.create(model="chat", input="mine")
            hers_session = hers.model_dump()["stepgraph"]["session_id"]
            got = await _records_until(bob_lines, his.id)
            assert {r["session_id"] for r in got} == {his.model_dump()["stepgraph"]["session_id"]}
            assert not any("secret" in json.dumps(r) for r in got)
            every = await _records_until(admin_lines, his.id)
            assert hers_session in {r["session_id"] for r in every}
        bob2, bob2_http = auth_server.as_("bob")
        await bob2.close()
        async with bob2_http, bob2_http.stream("GET", "/ui/api/events?after=0") as replay:
            # A replay after a reconnect is filtered the same way.
            got = await _records_until(replay.aiter_lines(), his.id)
            assert hers_session not in {r["session_id"] for r in got}

    _run(main())


@pytest.mark.parametrize("hook", [authhook.authenticate, authhook.authenticate_async])
def test_hook_refuses_unknown_callers_with_401(tmp_path: Path, hook: Any) -> None:
    _run(_test_hook_refuses_unknown_callers_with_401(tmp_path, hook))


def test_two_identities_and_an_admin_then_a_restart(tmp_path: Path) -> None:
    _run(_test_two_identities_and_an_admin_then_a_restart(tmp_path))


def test_api_key_is_one_admin_and_no_auth_is_one_anonymous_admin(tmp_path: Path) -> None:
    _run(_test_api_key_is_one_admin_and_no_auth_is_one_anonymous_admin(tmp_path))


def test_rows_from_before_owners_are_the_admins(tmp_path: Path) -> None:
    _run(_test_rows_from_before_owners_are_the_admins(tmp_path))


# -- two replicas sharing a PostgreSQL log ------------------------------------------------


@contextlib.asynccontextmanager
async def _on(server: AuthServer) -> AsyncIterator[Callers]:
    pairs = {who: server.as_(who) for who in TOKENS}
    try:
        yield Callers({w: p[0] for w, p in pairs.items()}, {w: p[1] for w, p in pairs.items()})
    finally:
        for ai, http in pairs.values():
            await ai.close()
            await http.aclose()


def test_ownership_holds_across_replicas(tmp_path: Path) -> None:
    from tests.stores.pg_support import RUN, drop_schemas, require_dsn, store_url

    dsn = require_dsn()
    schema = f"{RUN}_owners"
    url = store_url(dsn, schema)
    a = AuthServer(f"{APPS}:chat", url, tmp_path / "a.log")
    b = AuthServer(f"{APPS}:chat", url, tmp_path / "b.log")

    async def main() -> None:
        async with _on(a) as on_a, _on(b) as on_b:
            made = await make(on_a)
            await check(on_b, made, same_process=False)
            await check(on_a, made)

    try:
        a.start()
        b.start()
        _run(main())
    finally:
        for server in (a, b):
            with contextlib.suppress(Exception):
                server.stop()
        drop_schemas(dsn, schema)


def test_postgres_log_from_before_owners_is_migrated() -> None:
    import psycopg
    from tests.stores.pg_support import RUN, drop_schemas, require_dsn

    from stepgraph.hosting._pglog import PostgresResponseLog  # pyright: ignore[reportPrivateUsage]

    dsn = require_dsn()
    schema = f"{RUN}_owners_v0"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f"CREATE TABLE {schema}.stepgraph_hosting_sessions (seq bigserial PRIMARY KEY, "
            "id text NOT NULL UNIQUE, origin text NOT NULL, label text NOT NULL, "
            "created_at double precision NOT NULL)"
        )
        conn.execute(
            f"CREATE TABLE {schema}.stepgraph_hosting_conversations (id text PRIMARY KEY, "
            "session_id text NOT NULL, created_at bigint NOT NULL, metadata text NOT NULL, "
            "head_response text, head_checkpoint text)"
        )
        conn.execute(
            f"CREATE TABLE {schema}.stepgraph_hosting_responses (seq bigserial PRIMARY KEY, "
            "id text NOT NULL UNIQUE, session_id text NOT NULL, conversation_id text, "
            "checkpoint_id text, body text NOT NULL, input_items text NOT NULL)"
        )
        conn.execute(
            f"INSERT INTO {schema}.stepgraph_hosting_sessions (id, origin, label, created_at) "
            "VALUES ('sess_old', 'responses', 'x', 0)"
        )
    log = PostgresResponseLog(dsn, schema=schema)
    try:
        assert log.sessions() == [
            {"id": "sess_old", "origin": "responses", "label": "x", "created_at": 0.0}
        ]
        assert log.session_owner("sess_old") is None
        assert log.sessions(owner="alice") == []
        log.add_session("sess_new", "ui", "y", "alice")
        assert [s["id"] for s in log.sessions(owner="alice")] == ["sess_new"]
    finally:
        log.close()
        drop_schemas(dsn, schema)
