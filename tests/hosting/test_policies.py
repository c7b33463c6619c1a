"""Several workflows per server, double-texting policies and background responses.

Runs are held by a gate: the `held` workflow's executor, given `hold NAME`, sets
the event `NAME` started and waits until the test opens `NAME`; no sleeps
decide an order.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from starlette.applications import Starlette
from tests.hosting import apps
from tests.hosting.support import APPS, ROOT, in_process, wait_until

import stepgraph as sg


class Gates:
    """Per-name `started` and `go` events, made on first use inside the running loop."""

    def __init__(self) -> None:
        self._events: dict[str, tuple[asyncio.Event, asyncio.Event]] = {}

    def _pair(self, name: str) -> tuple[asyncio.Event, asyncio.Event]:
        if name not in self._events:
            self._events[name] = (asyncio.Event(), asyncio.Event())
        return self._events[name]

    async def started(self, name: str) -> None:
        await asyncio.wait_for(self._pair(name)[0].wait(), 10)

    def open(self, name: str) -> None:
        self._pair(name)[1].set()

    async def hold(self, name: str) -> None:
        started, go = self._pair(name)
        started.set()
        await go.wait()


class Held(sg.Executor):
    """Counts turns; `hold NAME` waits at the gate `NAME` before answering."""

    def __init__(self, id: str, gates: Gates) -> None:
        super().__init__(id=id)
        self.gates = gates

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        turns = int(ctx.state.get("turns", 0)) + 1
        ctx.state.set("turns", turns)
        if text.startswith("hold "):
            await self.gates.hold(text[5:])
        await ctx.yield_output(f"turn {turns}: {text}")


def held(gates: Gates) -> sg.Workflow[Any]:
    return sg.WorkflowBuilder[str](start=Held("held", gates)).build(name="held")


@contextlib.asynccontextmanager
async def served(gates: Gates, **kw: Any) -> AsyncIterator[tuple[Starlette, openai.AsyncOpenAI]]:
    async with in_process({"held": held(gates), "three": apps.three}, **kw) as (app, client):
        yield app, client


# -- several workflows ------------------------------------------------------------------


def test_model_picks_the_workflow_and_models_are_listed() -> None:
    async def main() -> None:
        async with in_process([apps.chat, apps.three]) as (_, client):
            models = await client.models.list()
            assert [m.id for m in models.data] == ["chat", "three"]
            assert all(m.object == "model" and m.owned_by == "stepgraph" for m in models.data)
            assert (await client.models.retrieve("three")).id == "three"
            r1 = await client.responses.create(model="three", input="hi")
            assert r1.output_text == "echo HI"
            assert r1.model == "three"
            r2 = await client.responses.create(model="chat", input="hi")
            assert r2.output_text == "turn 1: hi"
            # A continuation without a model runs the model it continues.
            r3 = await client.responses.create(input="again", previous_response_id=r2.id)
            assert r3.output_text == "turn 2: again"
            with pytest.raises(openai.BadRequestError) as mismatch:
                await client.responses.create(model="three", input="x", previous_response_id=r2.id)
            assert mismatch.value.code == "model_mismatch"
            with pytest.raises(openai.NotFoundError) as unknown:
                await client.responses.create(model="gpt-5", input="x")
            assert unknown.value.code == "model_not_found"
            assert "chat, three" in unknown.value.message
            with pytest.raises(openai.NotFoundError):
                await client.models.retrieve("gpt-5")
            with pytest.raises(openai.BadRequestError) as missing:
                await client.responses.create(input="x")
            assert "model is required" in missing.value.message
            conv = await client.conversations.create()
            c1 = await client.responses.create(model="three", input="a", conversation=conv.id)
            c2 = await client.responses.create(input="b", conversation=conv.id)
            assert (c1.output_text, c2.output_text) == ("echo A", "echo B")

    asyncio.run(main())


def test_one_workflow_takes_any_model_and_lists_itself() -> None:
    async def main() -> None:
        async with in_process(apps.chat) as (_, client):
            assert [m.id for m in (await client.models.list()).data] == ["chat"]
            r = await client.responses.create(model="whatever", input="hi")
            assert (r.output_text, r.model) == ("turn 1: hi", "whatever")

    asyncio.run(main())


def test_workflows_with_one_name_need_model_names() -> None:
    from stepgraph.hosting import create_app

    with pytest.raises(ValueError, match="two workflows are named 'chat'"):
        create_app([apps.chat, apps.chat])
    assert create_app({"a": apps.chat, "b": apps.chat}).state.host.models.keys() == {"a", "b"}
    with pytest.raises(ValueError, match="double_texting"):
        create_app(apps.chat, double_texting="later")  # type: ignore[arg-type]


# -- double texting ---------------------------------------------------------------------


def test_enqueue_runs_requests_one_after_another_in_order() -> None:
    async def main() -> None:
        gates = Gates()
        async with served(gates) as (app, client):
            conv = await client.conversations.create()

            def send(text: str, **kw: Any) -> asyncio.Task[Any]:
                return asyncio.create_task(
                    client.responses.create(model="held", input=text, conversation=conv.id, **kw)
                )

            first = send("hold a")
            await gates.started("a")
            enqueue = {"extra_body": {"double_texting": "enqueue"}}
            second = send("b", **enqueue)
            await wait_until(lambda: app.state.host.waiting(conv.id) == 1, "b in line")
            third = send("c", **enqueue)
            await wait_until(lambda: app.state.host.waiting(conv.id) == 2, "c in line")
            with pytest.raises(openai.ConflictError):  # the default is still reject
                await client.responses.create(model="held", input="d", conversation=conv.id)
            gates.open("a")
            r1, r2, r3 = await asyncio.gather(first, second, third)
            assert [r.output_text for r in (r1, r2, r3)] == [
                "turn 1: hold a",
                "turn 2: b",
                "turn 3: c",
            ]
            items = await client.conversations.items.list(conv.id, order="asc")
            assert len(items.data) == 6
            assert not app.state.host.is_busy(conv.id)

    asyncio.run(main())


def test_interrupt_cancels_the_running_response_and_runs_the_new_one() -> None:
    async def main() -> None:
        gates = Gates()
        async with served(gates, double_texting="interrupt") as (_, client):
            conv = await client.conversations.create()
            r0 = await client.responses.create(model="held", input="zero", conversation=conv.id)
            first = asyncio.create_task(
                client.responses.create(model="held", input="hold a", conversation=conv.id)
            )
            await gates.started("a")
            r2 = await client.responses.create(model="held", input="b", conversation=conv.id)
            r1 = await first
            assert r1.status == "cancelled"
            assert r1.output == []
            # The cancelled turn committed nothing: b is the second turn.
            assert (r0.output_text, r2.output_text) == ("turn 1: zero", "turn 2: b")
            assert (await client.responses.retrieve(r1.id)).status == "cancelled"
            # A request may still ask to be rejected.
            held_c = asyncio.create_task(
                client.responses.create(model="held", input="hold c", conversation=conv.id)
            )
            await gates.started("c")
            with pytest.raises(openai.ConflictError):
                await client.responses.create(
                    model="held",
                    input="d",
                    conversation=conv.id,
                    extra_body={"double_texting": "reject"},
                )
            gates.open("c")
            assert (await held_c).output_text == "turn 3: hold c"

    asyncio.run(main())


def test_interrupt_of_a_streamed_response_ends_its_stream_cancelled() -> None:
    async def main() -> None:
        gates = Gates()
        async with served(gates) as (_, client):
            conv = await client.conversations.create()

            async def streamed() -> list[str]:
                stream = await client.responses.create(
                    model="held", input="hold s", conversation=conv.id, stream=True
                )
                return [e.type async for e in stream]

            task = asyncio.create_task(streamed())
            await gates.started("s")
            r = await client.responses.create(
                model="held",
                input="next",
                conversation=conv.id,
                extra_body={"double_texting": "interrupt"},
            )
            assert r.output_text == "turn 1: next"
            kinds = await task
            assert kinds[0] == "response.created"
            assert "response.completed" not in kinds
            interrupted = await client.conversations.items.list(conv.id, order="asc")
            assert len(interrupted.data) == 3  # hold s (cancelled, no output), next, its reply

    asyncio.run(main())


# -- background responses ----------------------------------------------------------------


def test_background_response_is_polled_until_completed() -> None:
    async def main() -> None:
        gates = Gates()
        async with served(gates) as (_, client):
            r = await client.responses.create(model="held", input="hold bg", background=True)
            assert r.status == "queued"
            assert r.background is True
            await gates.started("bg")
            assert (await client.responses.retrieve(r.id)).status == "in_progress"
            with pytest.raises(openai.ConflictError) as early:
                await client.responses.create(model="held", input="x", previous_response_id=r.id)
            assert early.value.code == "response_in_progress"
            gates.open("bg")

            async def completed() -> bool:
                return (await client.responses.retrieve(r.id)).status == "completed"

            await wait_until(completed, "the background response completed")
            done = await client.responses.retrieve(r.id)
            assert done.output_text == "turn 1: hold bg"
            nxt = await client.responses.create(
                model="held", input="more", previous_response_id=r.id
            )
            assert nxt.output_text == "turn 2: more"
            # Cancelling a finished response gives it as it is.
            assert (await client.responses.cancel(r.id)).status == "completed"
            with pytest.raises(openai.BadRequestError):
                await client.responses.cancel(nxt.id)  # not a background response

    asyncio.run(main())


def test_cancel_a_running_background_response() -> None:
    async def main() -> None:
        gates = Gates()
        async with served(gates) as (_, client):
            conv = await client.conversations.create()
            r0 = await client.responses.create(model="held", input="zero", conversation=conv.id)
            r = await client.responses.create(
                model="held", input="hold long", conversation=conv.id, background=True
            )
            await gates.started("long")
            cancelled = await client.responses.cancel(r.id)
            assert cancelled.status == "cancelled"
            assert (await client.responses.retrieve(r.id)).status == "cancelled"
            nxt = await client.responses.create(model="held", input="one", conversation=conv.id)
            assert (r0.output_text, nxt.output_text) == ("turn 1: zero", "turn 2: one")

    asyncio.run(main())


def test_background_requests_wait_in_line_and_a_queued_one_can_be_cancelled() -> None:
    async def main() -> None:
        gates = Gates()
        async with served(gates, double_texting="enqueue") as (app, client):
            conv = await client.conversations.create()

            async def bg(text: str) -> Any:
                return await client.responses.create(
                    model="held", input=text, conversation=conv.id, background=True
                )

            a = await bg("hold a")
            await gates.started("a")
            b = await bg("b")
            c = await bg("c")
            assert app.state.host.waiting(conv.id) == 2
            assert (await client.responses.retrieve(b.id)).status == "queued"
            assert (await client.responses.cancel(b.id)).status == "cancelled"
            assert app.state.host.waiting(conv.id) == 1
            gates.open("a")

            async def finished() -> bool:
                return (await client.responses.retrieve(c.id)).status == "completed"

            await wait_until(finished, "c completed")
            outputs = [(await client.responses.retrieve(x.id)).output_text for x in (a, b, c)]
            assert outputs == ["turn 1: hold a", "", "turn 2: c"]
            items = await client.conversations.items.list(conv.id, order="asc")
            assert len(items.data) == 4  # b never ran: not one of the conversation's

    asyncio.run(main())


def test_background_request_on_a_busy_conversation_is_rejected_by_default() -> None:
    async def main() -> None:
        gates = Gates()
        async with served(gates) as (_, client):
            conv = await client.conversations.create()
            a = await client.responses.create(
                model="held", input="hold a", conversation=conv.id, background=True
            )
            await gates.started("a")
            with pytest.raises(openai.ConflictError) as busy:
                await client.responses.create(
                    model="held", input="b", conversation=conv.id, background=True
                )
            assert busy.value.code == "conversation_busy"
            gates.open("a")

            async def completed() -> bool:
                return (await client.responses.retrieve(a.id)).status == "completed"

            await wait_until(completed, "a completed")

    asyncio.run(main())


def test_shutdown_cancels_running_and_fails_queued_background_responses(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        gates = Gates()
        store = sg.SqliteCheckpointStore(str(tmp_path / "runs.db"))
        try:
            kw: Any = {"store": store, "double_texting": "enqueue", "shutdown_grace": 0}
            async with served(gates, **kw) as (app, client):
                conv = await client.conversations.create()
                a = await client.responses.create(
                    model="held", input="hold a", conversation=conv.id, background=True
                )
                await gates.started("a")
                b = await client.responses.create(
                    model="held", input="b", conversation=conv.id, background=True
                )
            log = app.state.host.log  # closed with the app; reopens its file on use
            assert log.get_response(a.id).body["status"] == "cancelled"
            failed = log.get_response(b.id).body
            assert failed["status"] == "failed"
            assert "shut down" in failed["error"]["message"]
            log.close()
        finally:
            await store.aclose()

    asyncio.run(main())


# -- the CLI ------------------------------------------------------------------------------


def test_cli_serves_several_workflows_and_prints_the_models(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "stepgraph.cli", "serve", f"{APPS}:chat", f"echo={APPS}:three"]
    cmd += ["--store", f"sqlite:///{tmp_path}/runs.db", "--port", "0"]
    cmd += ["--double-texting", "enqueue"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.findall(r"running on http://127\.0\.0\.1:(\d+)", log.read_text())):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert "/v1/responses - models: chat, echo" in log.read_text()

        async def main() -> None:
            base = f"http://127.0.0.1:{found[-1]}/v1"
            async with openai.AsyncOpenAI(base_url=base, api_key="x", max_retries=0) as client:
                assert [m.id for m in (await client.models.list()).data] == ["chat", "echo"]
                r = await client.responses.create(model="echo", input="hi")
                assert r.output_text == "echo HI"

        asyncio.run(main())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_cli_refuses_two_workflows_of_one_name(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "stepgraph.cli", "serve", f"{APPS}:chat", f"{APPS}:chat"]
    done = subprocess.run(
        [*cmd, "--store", "memory:", "--port", "0"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "two workflows are named 'chat'" in done.stderr
