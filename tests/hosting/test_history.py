"""The dev UI's view of the store: every session (`GET /ui/api/sessions`) and every run
replayed from checkpoint traces (`GET /ui/api/sessions/{id}/debug/runs`), in process.

Sessions written by a script straight to the store, never through the server,
are listed for admins and replayed after a restart; other identities see only
their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx2
from tests.hosting import apps, authhook
from tests.hosting.support import serving, wait_until

from stepgraph.hosting import create_app
from stepgraph.stores import FAILED_RECORD, SqliteCheckpointStore


async def by_script(db: Path) -> None:
    """Two sessions of `apps.chat` run from Python on the store, not through a server."""
    store = SqliteCheckpointStore(db)
    try:
        first = apps.chat.session("script-1", store=store)
        await first.run("hello")
        await first.run("json two words")
        second = apps.chat.session("script-2", store=store)
        await second.run("approve deploy")
    finally:
        await store.aclose()


def test_store_sessions_are_listed_and_their_runs_replayed(tmp_path: Path) -> None:
    async def main() -> None:
        db = tmp_path / "runs.db"
        await by_script(db)
        app = create_app(apps.chat, store=SqliteCheckpointStore(db))
        async with serving(app) as http:
            r = await http.post("/ui/api/sessions", json={"input": "from the ui"})
            sid = r.json()["session_id"]

            async def listed() -> bool:
                data = (await http.get("/ui/api/sessions")).json()["data"]
                return [s["id"] for s in data][:1] == [sid] and not data[0]["busy"]

            await wait_until(listed, "the UI's session to be listed and idle")
            data = (await http.get("/ui/api/sessions")).json()["data"]
            ids = [s["id"] for s in data]
            assert ids == [sid, "script-2", "script-1"]  # newest save first
            by_id = {s["id"]: s for s in data}
            assert by_id["script-1"]["origin"] == "store"
            assert by_id[sid]["origin"] != "store"
            assert by_id["script-2"]["superstep"] == 1

            runs = (await http.get("/ui/api/sessions/script-1/debug/runs")).json()
            assert [r["status"] for r in runs["data"]] == ["idle", "idle"]
            one, two = runs["data"]
            assert one["run"] != two["run"]
            assert [c["kind"] for c in one["checkpoints"]] == ["input", "superstep", "superstep"]
            step = one["checkpoints"][1]
            assert [h["executor_id"] for h in step["handlers"]] == ["chat"]
            assert step["us"] >= step["handlers"][0]["us"] >= 0
            assert one["events"] == [
                {"type": "output", "executor_id": "reply", "value": "turn 1: hello"}
            ]
            assert two["events"] == [
                {
                    "type": "output",
                    "executor_id": "chat",
                    "value": {"text": "two words", "words": 2},
                }
            ]
            waiting = (await http.get("/ui/api/sessions/script-2/debug/runs")).json()["data"]
            (issued,) = waiting[0]["events"]
            assert issued["type"] == "request_issued"
            assert issued["request"]["payload"] == {"text": "deploy"}
            assert waiting[0]["status"] == "waiting"

            detail = (
                await http.get(
                    f"/ui/api/sessions/script-1/debug/checkpoints/{step['checkpoint_id']}"
                )
            ).json()
            assert detail["trace"]["handlers"][0][0] == "chat"

    asyncio.run(main())


def test_a_failed_run_ends_failed_and_a_resume_is_its_own_run(tmp_path: Path) -> None:
    async def main() -> None:
        db = tmp_path / "runs.db"
        store = SqliteCheckpointStore(db)
        session = apps.chat.session("f", store=store)
        with contextlib.suppress(Exception):
            await session.run("boom")
        await store.aclose()
        app = create_app(apps.chat, store=SqliteCheckpointStore(db))
        async with serving(app) as http:
            runs: list[dict[str, Any]] = (await http.get("/ui/api/sessions/f/debug/runs")).json()[
                "data"
            ]
            assert [r["status"] for r in runs] == ["failed"]
            assert [c["kind"] for c in runs[0]["checkpoints"]] == ["input"]

    asyncio.run(main())


def test_others_see_only_their_own_and_store_sessions_stay_hidden(tmp_path: Path) -> None:
    async def main() -> None:
        db = tmp_path / "runs.db"
        await by_script(db)
        app = create_app(apps.chat, store=SqliteCheckpointStore(db), auth=authhook.authenticate)
        alice, admin = authhook.token("alice"), authhook.token("root", "admin")
        async with serving(app, alice) as as_alice:
            r = await as_alice.post("/ui/api/sessions", json={"input": "mine"})
            mine = r.json()["session_id"]
            data = (await as_alice.get("/ui/api/sessions")).json()["data"]
            assert [s["id"] for s in data] == [mine]
            hidden = await as_alice.get("/ui/api/sessions/script-1/debug/runs")
            unknown = await as_alice.get("/ui/api/sessions/nosuch/debug/runs")
            assert hidden.status_code == unknown.status_code == 404
            assert hidden.json()["error"]["message"].replace("script-1", "X") == unknown.json()[
                "error"
            ]["message"].replace("nosuch", "X")
            async with httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app),
                base_url="http://app",
                headers={"authorization": f"Bearer {admin}"},
            ) as as_admin:
                ids = {s["id"] for s in (await as_admin.get("/ui/api/sessions")).json()["data"]}
                assert {"script-1", "script-2", mine} <= ids
                r = await as_admin.get("/ui/api/sessions/script-1/debug/runs")
                assert r.status_code == 200
                assert len(r.json()["data"]) == 2

    asyncio.run(main())


def test_edits_restores_and_resets_are_entries_of_their_own(tmp_path: Path) -> None:
    async def main() -> None:
        db = tmp_path / "runs.db"
        store = SqliteCheckpointStore(db)
        session = apps.chat.session("e", store=store)
        await session.run("hello")
        first = session.head
        assert first is not None
        await session.update_state({"turns": 5})
        await session.restore(first)
        await session.reset()
        await store.aclose()
        app = create_app(apps.chat, store=SqliteCheckpointStore(db))
        async with serving(app) as http:
            data = (await http.get("/ui/api/sessions/e/debug/runs")).json()["data"]
            assert [r["kind"] for r in data] == ["run", "edit", "restore", "reset"]
            edit = data[1]["checkpoints"][0]
            assert edit["kind"] == "edit"
            r = await http.get(f"/ui/api/sessions/e/debug/checkpoints/{edit['checkpoint_id']}")
            assert r.json()["trace"] == {"kind": "edit", "written": ["turns"], "deleted": []}
            assert data[2]["checkpoints"][0]["checkpoint_id"] != first

    asyncio.run(main())


def test_digests_load_a_checkpoint_once_and_still_see_a_later_failure(tmp_path: Path) -> None:
    from stepgraph.hosting._digests import Digests

    class Counting(SqliteCheckpointStore):
        loads = 0

        async def load(self, checkpoint_id: str) -> Any:
            Counting.loads += 1
            return await super().load(checkpoint_id)

    async def main() -> None:
        store = Counting(tmp_path / "runs.db")
        session = apps.chat.session("d", store=store)
        await session.run("hello")
        digests = Digests()
        infos = await store.list("d")
        before = Counting.loads
        first = [(await digests.of(store, i)).status for i in infos]
        again = [(await digests.of(store, i)).status for i in infos]
        assert first == again == ["idle", "mid-run", "mid-run"]
        assert Counting.loads - before == len(infos)  # each loaded once
        # a run failing on a cached mid-run checkpoint leaves its record under it later
        await store.save_record("d", infos[1].id, FAILED_RECORD, b"ValueError: boom")
        assert (await digests.of(store, infos[1])).status == "failed"
        assert (await digests.of(store, infos[2])).status == "mid-run"
        assert Counting.loads - before == len(infos)  # still from the cache
        await store.aclose()

    asyncio.run(main())
