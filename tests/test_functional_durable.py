"""The functional API over stores: reopen, SIGKILL, time travel, reset, the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import killed_after

import stepgraph as sg
from stepgraph.stores import SqliteCheckpointStore

CLI_FIXTURES = Path(__file__).parent / "cli" / "fixtures"


def _approval(ran: list[str]) -> sg.Workflow[int]:
    @sg.step
    async def quote(n: int) -> int:
        ran.append(f"quote {n}")
        return n * 100

    @sg.step
    async def pay(amount: int) -> str:
        ran.append(f"pay {amount}")
        return f"paid {amount}"

    @sg.workflow
    async def purchase(n: int) -> str:
        amount = await quote(n)
        sg.context().state.set("amount", amount)
        if not await sg.request(f"pay {amount}?", response_type=bool):
            return "refused"
        return await pay(amount)

    return purchase


def test_a_paused_workflow_reopens_from_sqlite_and_finishes(tmp_path: Path) -> None:
    ran: list[str] = []

    async def first() -> str:
        store = SqliteCheckpointStore(tmp_path / "runs.db")
        try:
            result = await _approval(ran).session("p", store=store).run(3)
            assert result.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
            return result.pending_requests[0].id
        finally:
            await store.aclose()

    async def second(request_id: str) -> None:
        store = SqliteCheckpointStore(tmp_path / "runs.db")  # as a new process would
        try:
            session = _approval(ran).session("p", store=store)
            await session.load()
            assert session.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS
            assert session.state["amount"] == 300
            assert [r.payload for r in session.pending_requests] == ["pay 300?"]
            result = await session.respond({request_id: True})
            assert result.outputs == ["paid 300"]
            assert session.status is sg.RunStatus.IDLE
        finally:
            await store.aclose()

    request_id = asyncio.run(first())
    asyncio.run(second(request_id))
    assert ran == ["quote 3", "pay 300"]


def test_time_travel_and_reset(tmp_path: Path) -> None:
    ran: list[str] = []

    async def main() -> None:
        store = SqliteCheckpointStore(tmp_path / "runs.db")
        try:
            session = _approval(ran).session("t", store=store)
            (req,) = (await session.run(2)).pending_requests
            paused = session.head
            assert (await session.respond({req.id: False})).outputs == ["refused"]
            await session.restore(paused)  # back to the question: answer it again
            (again,) = session.pending_requests
            assert (await session.respond({again.id: True})).outputs == ["paid 200"]
            assert ran == ["quote 2", "pay 200"]
            await session.reset()
            assert session.pending_requests == ()
            assert dict(session.state) == {}
            assert (await session.run(1)).pending_requests[0].payload == "pay 100?"
            assert ran == ["quote 2", "pay 200", "quote 1"]
        finally:
            await store.aclose()

    asyncio.run(main())


def test_a_killed_workflow_resumes_without_rerunning_finished_steps(tmp_path: Path) -> None:
    child = Path(__file__).with_name("functional_child.py")
    db, effects, blocker = tmp_path / "runs.db", tmp_path / "effects", tmp_path / "block"
    blocker.touch()
    argv = [sys.executable, str(child), str(db), str(effects), str(blocker)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with killed_after(proc):
        assert proc.stdout is not None
        # `slow` starts only after fetch, mail and bill returned and their results were
        # saved (a step's record is written before the step returns).
        assert proc.stdout.readline() == b"blocking\n"
    blocker.unlink()
    done = subprocess.run(argv, capture_output=True, timeout=60, check=True)
    lines = done.stdout.decode().splitlines()
    assert lines[0] == "reopened INTERRUPTED"
    assert json.loads(lines[-1]) == [["mailed HELLO", 5, "slow HELLO"]]
    ran = [line.split()[0] for line in effects.read_text().splitlines()]
    assert sorted(ran) == ["bill", "fetch", "mail", "slow", "slow"]  # only slow ran twice
    pids = {line.split()[1] for line in effects.read_text().splitlines()}
    assert len(pids) == 2


def test_the_cli_runs_and_answers_a_functional_workflow(tmp_path: Path) -> None:
    store = f"sqlite://{tmp_path}/runs.db"
    base = [sys.executable, "-m", "stepgraph.cli"]
    target = str(CLI_FIXTURES / "functional_hello.py") + ":workflow"
    waiting = subprocess.run(
        [*base, "run", target, "--text", "hi", "--session", "f", "--store", store],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert waiting.returncode == 4, waiting.stderr
    issued = next(x for x in waiting.stdout.splitlines() if x.startswith("RequestIssued"))
    assert "publish HI?" in issued
    request_id = issued.split("id=", 1)[1].split()[0]
    done = subprocess.run(
        [*base, "respond", "--session", "f", "--answer", f"{request_id}=true", "--store", store],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'Output executor_id=workflow value="HI!"' in done.stdout
