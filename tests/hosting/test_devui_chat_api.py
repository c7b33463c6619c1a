"""`GET /ui/api/sessions/{id}/chat` and the `chat` flag of `GET /ui/api/workflow`, in process.

The conversation comes from the session's head checkpoint: a second app on the
same store (another process, a restart) reads the same; another identity's
session is a 404 exactly like an unknown id.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx2
from tests.hosting import apps, authhook
from tests.hosting.support import serving, wait_until

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, ScriptedChatClient
from stepgraph.hosting import create_app
from stepgraph.orchestrations import sequential
from stepgraph.stores import SqliteCheckpointStore


def _pair() -> sg.Workflow[Any]:
    """Two agents in a chain: `b` answers what `a` said."""
    a = AgentExecutor(Agent("a", ScriptedChatClient(["a one", "a two"])))
    b = AgentExecutor(Agent("b", ScriptedChatClient(["b one", "b two"])))
    return sg.WorkflowBuilder[str](start=a).add_edge(a, b).build(name="pair")


async def _settled(http: httpx2.AsyncClient, sid: str) -> None:
    async def idle() -> bool:
        return not (await http.get(f"/ui/api/sessions/{sid}")).json()["busy"]

    await wait_until(idle, f"session {sid} to settle")


async def _say(http: httpx2.AsyncClient, text: str, sid: str | None = None) -> str:
    path = "/ui/api/sessions" if sid is None else f"/ui/api/sessions/{sid}/runs"
    r = await http.post(path, json={"input": text})
    assert r.status_code == 202, r.text
    sid = str(r.json()["session_id"])
    await _settled(http, sid)
    return sid


def _run(coro: Any) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(30):
            await coro

    asyncio.run(bounded())


def test_workflow_says_whether_it_is_a_chat() -> None:
    async def flags() -> None:
        orchestration = sequential([Agent("solo", ScriptedChatClient(["hi"]))])
        cases = [(_pair(), True), (apps.writer, True), (apps.chat, False), (apps.relay, False)]
        cases.append((orchestration, False))  # no conversation outlives its runs
        for wf, chat in cases:
            async with serving(create_app(wf)) as http:
                body = (await http.get("/ui/api/workflow")).json()
                assert body["chat"] is chat, wf.name

    _run(flags())


def test_chat_merges_the_agents_conversations_and_survives_a_restart(tmp_path: Path) -> None:
    expected = [
        {"role": "user", "name": None, "text": "hi"},
        {"role": "assistant", "name": "a", "text": "a one"},
        {"role": "assistant", "name": "b", "text": "b one"},
        {"role": "user", "name": None, "text": "more"},
        {"role": "assistant", "name": "a", "text": "a two"},
        {"role": "assistant", "name": "b", "text": "b two"},
    ]

    async def scenario() -> None:
        store = SqliteCheckpointStore(tmp_path / "runs.db")
        async with serving(create_app(_pair(), store=store)) as http:
            sid = await _say(http, "hi")
            r = await http.get(f"/ui/api/sessions/{sid}/chat")
            assert r.status_code == 200
            assert r.json() == {"session_id": sid, "messages": expected[:3]}
            await _say(http, "more", sid)
            assert (await http.get(f"/ui/api/sessions/{sid}/chat")).json()["messages"] == expected
        # another app on the same store (a restart, another process) reads the same
        again = SqliteCheckpointStore(tmp_path / "runs.db")
        async with serving(create_app(_pair(), store=again, log_path=":memory:")) as http:
            r = await http.get(f"/ui/api/sessions/{sid}/chat")
            assert r.status_code == 200
            assert r.json()["messages"] == expected

    _run(scenario())


def test_chat_of_a_waiting_orchestration_is_the_conversation_its_request_carries() -> None:
    orchestration = sequential(
        [Agent("drafter", ScriptedChatClient(["a draft"], name="drafter"))],
        review_after=["drafter"],
    )

    async def scenario() -> None:
        async with serving(create_app(orchestration)) as http:
            sid = await _say(http, "write it")
            detail = (await http.get(f"/ui/api/sessions/{sid}")).json()
            assert [r["executor_id"] for r in detail["pending_requests"]] == ["review:drafter"]
            messages = (await http.get(f"/ui/api/sessions/{sid}/chat")).json()["messages"]
            assert messages == [
                {"role": "user", "name": None, "text": "write it"},
                {"role": "assistant", "name": "drafter", "text": "a draft"},
            ]

    _run(scenario())


def test_chat_of_an_unknown_or_another_identitys_session_is_a_404(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = create_app(
            apps.writer,
            store=SqliteCheckpointStore(tmp_path / "runs.db"),
            auth=authhook.authenticate,
        )
        alice, bob = authhook.token("alice"), authhook.token("bob")
        admin = authhook.token("root", "admin")
        async with serving(app, alice) as as_alice:
            r = await as_alice.post("/ui/api/sessions", json={"input": "mine"})
            sid = r.json()["session_id"]
            async with (
                httpx2.AsyncClient(
                    transport=httpx2.ASGITransport(app=app),
                    base_url="http://app",
                    headers={"authorization": f"Bearer {bob}"},
                ) as as_bob,
                httpx2.AsyncClient(
                    transport=httpx2.ASGITransport(app=app),
                    base_url="http://app",
                    headers={"authorization": f"Bearer {admin}"},
                ) as as_admin,
            ):
                await _settled(as_alice, sid)
                theirs = await as_bob.get(f"/ui/api/sessions/{sid}/chat")
                unknown = await as_bob.get("/ui/api/sessions/ui_nosuchsession/chat")
                assert theirs.status_code == unknown.status_code == 404
                assert theirs.json()["error"]["code"] == "session_not_found"
                assert theirs.text.replace(sid, "X") == unknown.text.replace(
                    "ui_nosuchsession", "X"
                )
                mine = (await as_alice.get(f"/ui/api/sessions/{sid}/chat")).json()["messages"]
                assert mine == [
                    {"role": "user", "name": None, "text": "mine"},
                    {"role": "assistant", "name": "writer", "text": "streamed reply to mine"},
                ]
                seen = await as_admin.get(f"/ui/api/sessions/{sid}/chat")
                assert seen.json()["messages"] == mine
            assert (await as_alice.get("/ui/api/sessions/ui_nosuchsession/chat")).status_code == 404
            async with httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url="http://app"
            ) as nobody:
                assert (await nobody.get(f"/ui/api/sessions/{sid}/chat")).status_code == 401

    _run(scenario())
