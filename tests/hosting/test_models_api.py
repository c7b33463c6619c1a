"""The dev UI's API with several workflows: `model` picks the workflow of a new session,
and a session's detail names its workflow (in process).
"""

from __future__ import annotations

import asyncio

from tests.hosting import apps
from tests.hosting.support import serving, wait_until

import stepgraph as sg
from stepgraph.hosting import create_app


def test_model_picks_the_workflow_of_a_new_session() -> None:
    async def main() -> None:
        app = create_app({"chat": apps.chat, "three": apps.three}, store=sg.MemoryCheckpointStore())
        async with serving(app) as http:
            wf = (await http.get("/ui/api/workflow")).json()
            assert (wf["model"], wf["models"]) == ("chat", ["chat", "three"])
            assert (await http.get("/ui/api/workflow?model=three")).json()["model"] == "three"

            r = await http.post("/ui/api/sessions", json={"input": "abc", "model": "three"})
            assert r.status_code == 202, r.text
            sid = r.json()["session_id"]
            r = await http.post("/ui/api/sessions", json={"input": "hi"})
            default = r.json()["session_id"]

            async def settled() -> bool:
                for s in (sid, default):
                    if (await http.get(f"/ui/api/sessions/{s}")).json()["busy"]:
                        return False
                return True

            await wait_until(settled, "both sessions to settle")
            assert (await http.get(f"/ui/api/sessions/{sid}")).json()["model"] == "three"
            assert (await http.get(f"/ui/api/sessions/{default}")).json()["model"] == "chat"
            runs = (await http.get(f"/ui/api/sessions/{sid}/debug/runs")).json()["data"]
            steps = [h["executor_id"] for c in runs[0]["checkpoints"] for h in c["handlers"]]
            assert steps == ["parse", "enrich", "answer"]

            bad = await http.post("/ui/api/sessions", json={"input": "x", "model": "nope"})
            assert bad.status_code == 400
            assert bad.json()["error"]["code"] == "model_not_found"
            assert "chat, three" in bad.json()["error"]["message"]
            wrong = await http.post("/ui/api/sessions", json={"input": "x", "model": 3})
            assert wrong.status_code == 400

    asyncio.run(main())
