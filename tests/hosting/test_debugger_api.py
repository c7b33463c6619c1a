"""The dev UI debugger's JSON routes (`/ui/api/sessions/{id}/debug/...`), in process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from starlette.applications import Starlette
from tests.hosting import apps
from tests.hosting.support import in_process

import stepgraph as sg
from stepgraph.hosting._debugger import state_diff


@contextlib.asynccontextmanager
async def debugger() -> AsyncIterator[tuple[Starlette, httpx2.AsyncClient, sg.CheckpointStore]]:
    store = sg.MemoryCheckpointStore()
    async with in_process(apps.chat, store=store) as (app, _):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://app") as http:
            yield app, http, store


async def two_turns(store: sg.CheckpointStore, sid: str = "s1") -> tuple[str, str]:
    """A session of `apps.chat` run twice from Python; the heads after each run."""
    session = apps.chat.session(sid, store=store)
    await session.run("one")
    first = session.head
    await session.run("two")
    assert first is not None
    assert session.head is not None
    return first, session.head


async def run_ends(app: Starlette, sid: str, start: Any) -> dict[str, Any]:
    """Call `start()` (which launches a run) and return the run's record once it ended."""
    host = app.state.host
    sub = host.hub.subscribe(sid)
    try:
        r = await start()
        assert r.status_code == 202, r.text
        while True:
            rec = await sub.queue.get()
            assert rec is not None
            if rec["type"] == "run_record" and rec["run"]["ended_at"] is not None:
                return rec["run"]
    finally:
        host.hub.unsubscribe(sub)


def test_state_diff() -> None:
    d = state_diff({"a": 1, "b": 2, "c": [1]}, {"a": 1, "c": [1, 2], "d": None})
    assert d == {
        "added": {"d": None},
        "removed": {"b": 2},
        "changed": {"c": {"before": [1], "after": [1, 2]}},
    }


def test_tree_and_checkpoint_detail_with_diff() -> None:
    async def main() -> None:
        async with debugger() as (_, http, store):
            first, second = await two_turns(store)
            r = await http.get("/ui/api/sessions/s1/debug/tree")
            assert r.status_code == 200, r.text
            tree = r.json()
            assert tree["head"] == second
            assert tree["status"] == "idle"
            assert not tree["busy"]
            by_id = {n["id"]: n for n in tree["data"]}
            assert by_id[second]["parent_id"] is not None
            assert by_id[second]["status"] == "idle"
            assert {n["status"] for n in tree["data"]} <= {"idle", "mid-run"}
            r = await http.get(f"/ui/api/sessions/s1/debug/checkpoints/{second}")
            cp = r.json()
            assert cp["state"] == {"turns": 2}
            assert cp["head"]
            assert cp["status"] == "idle"
            assert cp["diff"] == {"added": {}, "removed": {}, "changed": {}}
            # the superstep in which `chat` counted the second turn
            step3 = next(n["id"] for n in tree["data"] if n["superstep"] == 3)
            cp = (await http.get(f"/ui/api/sessions/s1/debug/checkpoints/{step3}")).json()
            assert cp["status"] == "mid-run"
            assert not cp["head"]
            assert cp["diff"]["changed"] == {"turns": {"before": 1, "after": 2}}
            root = next(n["id"] for n in tree["data"] if n["parent_id"] is None)
            cp = (await http.get(f"/ui/api/sessions/s1/debug/checkpoints/{root}")).json()
            assert cp["diff"] == {"added": {}, "removed": {}, "changed": {}}
            assert (await http.get(f"/ui/api/sessions/s1/debug/checkpoints/{first}")).json()[
                "state"
            ] == {"turns": 1}

    asyncio.run(main())


def test_fork_writes_a_new_child_and_leaves_the_old_checkpoint() -> None:
    async def main() -> None:
        async with debugger() as (_, http, store):
            first, second = await two_turns(store)
            r = await http.post(
                f"/ui/api/sessions/s1/debug/checkpoints/{first}/fork",
                json={"values": {"turns": 10, "note": {"by": "ui"}}},
            )
            assert r.status_code == 201, r.text
            new = r.json()["checkpoint_id"]
            assert r.json()["parent_id"] == first
            cp = (await http.get(f"/ui/api/sessions/s1/debug/checkpoints/{new}")).json()
            assert cp["parent_id"] == first
            assert cp["head"]
            assert cp["state"] == {"turns": 10, "note": {"by": "ui"}}
            assert cp["diff"]["added"] == {"note": {"by": "ui"}}
            old = (await http.get(f"/ui/api/sessions/s1/debug/checkpoints/{first}")).json()
            assert old["state"] == {"turns": 1}
            r = await http.post(
                f"/ui/api/sessions/s1/debug/checkpoints/{new}/fork", json={"delete": ["note"]}
            )
            again = (await http.get("/ui/api/sessions/s1/debug/tree")).json()
            assert again["head"] == r.json()["checkpoint_id"]
            assert second in {n["id"] for n in again["data"]}

    asyncio.run(main())


def test_resume_with_a_breakpoint_pauses_then_resume_finishes() -> None:
    async def main() -> None:
        async with debugger() as (app, http, store):
            first, _ = await two_turns(store)
            # a checkpoint with a message queued for `chat`: fork `first` and send input
            session = apps.chat.session("s1", store=store)
            await session.restore(first)
            run = await session.run("three", interrupt_after=["chat"])
            assert run.status is sg.RunStatus.PAUSED
            body = {"interrupt_before": ["reply"]}
            url = "/ui/api/sessions/s1/debug/resume"
            # paused after chat: resuming runs reply (the first superstep is not checked)
            ended = await run_ends(app, "s1", lambda: http.post(url, json=body))
            assert ended["status"] == "idle"
            tree = (await http.get("/ui/api/sessions/s1/debug/tree")).json()
            assert tree["status"] == "idle"
            assert "paused" in {n["status"] for n in tree["data"]}

    asyncio.run(main())


def test_resume_stops_at_a_breakpoint_then_goes_on() -> None:
    async def main() -> None:
        async with debugger() as (app, http, store):
            session = apps.chat.session("s2", store=store)
            run = await session.run("x", interrupt_before=["chat"])
            assert run.status is sg.RunStatus.PAUSED
            url = "/ui/api/sessions/s2/debug/resume"
            body = {"checkpoint_id": session.head, "interrupt_before": ["reply"]}
            ended = await run_ends(app, "s2", lambda: http.post(url, json=body))
            assert ended["status"] == "paused"  # chat ran, reply did not
            tree = (await http.get("/ui/api/sessions/s2/debug/tree")).json()
            head = next(n for n in tree["data"] if n["id"] == tree["head"])
            assert head["status"] == "paused"
            assert tree["status"] == "paused"
            ended = await run_ends(app, "s2", lambda: http.post(url, json={}))
            assert ended["status"] == "idle"
            cp = await http.get(f"/ui/api/sessions/s2/debug/checkpoints/{ended['checkpoint_id']}")
            assert cp.json()["status"] == "idle"
            assert cp.json()["state"] == {"turns": 1}

    asyncio.run(main())


def test_reset_and_cancel() -> None:
    async def main() -> None:
        async with debugger() as (_, http, store):
            await two_turns(store)
            r = await http.post("/ui/api/sessions/s1/debug/reset", json={})
            assert r.status_code == 200, r.text
            cp = (
                await http.get(f"/ui/api/sessions/s1/debug/checkpoints/{r.json()['head']}")
            ).json()
            assert cp["state"] == {}
            assert cp["parent_id"] is None
            r = await http.post("/ui/api/sessions/s1/debug/cancel")
            assert r.status_code == 409
            assert "no run" in r.json()["error"]["message"]

    asyncio.run(main())


def test_edits_are_refused_while_a_run_holds_the_session() -> None:
    async def main() -> None:
        async with debugger() as (app, http, store):
            first, _ = await two_turns(store)
            host = app.state.host
            host.claim("s1", "session")  # what a running request holds
            try:
                url = f"/ui/api/sessions/s1/debug/checkpoints/{first}/fork"
                r = await http.post(url, json={"values": {"turns": 3}})
                assert r.status_code == 409, r.text
                r = await http.post("/ui/api/sessions/s1/debug/reset", json={})
                assert r.status_code == 409
                r = await http.post("/ui/api/sessions/s1/debug/resume", json={})
                assert r.status_code == 409
                r = await http.get("/ui/api/sessions/s1/debug/tree")
                assert r.status_code == 200
                assert r.json()["busy"]
            finally:
                await host.release("s1")

    asyncio.run(main())


BAD: list[tuple[str, str, Any, int, str]] = [
    ("GET", "/ui/api/sessions/nope/debug/tree", None, 404, "no session"),
    ("GET", "/ui/api/sessions/s1/debug/checkpoints/nope", None, 404, "no checkpoint"),
    ("POST", "/ui/api/sessions/s1/debug/checkpoints/nope/fork", {"values": {"a": 1}}, 404, ""),
    ("POST", "/ui/api/sessions/s1/debug/checkpoints/{cp}/fork", {}, 400, "nothing to change"),
    ("POST", "/ui/api/sessions/s1/debug/checkpoints/{cp}/fork", [1], 400, "JSON object"),
    ("POST", "/ui/api/sessions/s1/debug/checkpoints/{cp}/fork", {"values": 3}, 400, "values"),
    ("POST", "/ui/api/sessions/s1/debug/checkpoints/{cp}/fork", {"delete": "a"}, 400, "delete"),
    (
        "POST",
        "/ui/api/sessions/s1/debug/checkpoints/{cp}/fork",
        {"values": {"a": 1}, "delete": ["a"]},
        400,
        "both written and deleted",
    ),
    ("POST", "/ui/api/sessions/s1/debug/checkpoints/{cp}/fork", {"values": {"": 1}}, 400, "keys"),
    ("POST", "/ui/api/sessions/s1/debug/resume", {"interrupt_before": "chat"}, 400, "array"),
    ("POST", "/ui/api/sessions/s1/debug/resume", {"interrupt_after": ["nobody"]}, 400, "nobody"),
    ("POST", "/ui/api/sessions/s1/debug/resume", {"checkpoint_id": 7}, 400, "checkpoint_id"),
    ("POST", "/ui/api/sessions/s1/debug/resume", {"checkpoint_id": "x"}, 404, "no checkpoint"),
]


def test_bad_requests_get_clear_json_errors() -> None:
    async def main() -> None:
        async with debugger() as (_, http, store):
            first, _ = await two_turns(store)
            for method, path, body, status, expected in BAD:
                url = path.replace("{cp}", first)
                r = await http.request(method, url, json=body)
                assert r.status_code == status, (url, body, r.text)
                message = r.json()["error"]["message"]
                assert expected in message, (url, body, message)
            r = await http.get("/ui/api/sessions/s1/debug/tree")
            assert r.json()["head"] is not None  # nothing above changed the session

    asyncio.run(main())
