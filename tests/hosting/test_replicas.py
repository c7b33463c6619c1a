"""Two `stepgraph serve` replicas over one PostgreSQL schema, driven by the official client.

Each replica is a `stepgraph serve path.py:desk --store postgresql://...?schema=...`
process (the CLI, which hands over to `stepgraph.hosting.serve`); `desk` is
defined below and imported by path in the server processes.
PostgreSQL as in `tests/stores/pg_support.py`: skipped when unreachable,
failed under `CI=true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.hosting.support import ServerProcess
from tests.stores.pg_support import RUN, drop_schemas, require_dsn

import stepgraph as sg

HERE = Path(__file__).resolve()


# -- the workflow the replicas serve ------------------------------------------------------


@dataclass(frozen=True)
class Question:
    text: str


class Desk(sg.Executor):
    """Counts turns in the session's state and answers `turn N: text`; `ask X` asks a
    question (answered with a string); `hold /path` touches `/path.started` and waits
    (at most 30 s) until `/path.go` exists."""

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        turns = int(ctx.state.get("turns", 0)) + 1
        ctx.state.set("turns", turns)
        if text.startswith("ask "):
            await ctx.request(Question(text[4:]), response_type=str)
            return
        if text.startswith("hold "):
            flag = Path(text[5:])
            Path(f"{flag}.started").touch()
            deadline = time.monotonic() + 30
            while not Path(f"{flag}.go").exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        await ctx.yield_output(f"turn {turns}: {text}")

    @sg.response_handler
    async def on_answer(self, q: Question, answer: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"{q.text}: {answer}")


desk = sg.WorkflowBuilder[str](start=Desk(id="desk")).build(name="desk")


# -- replicas -----------------------------------------------------------------------------


class CliReplica(ServerProcess):
    """`stepgraph serve path.py:desk --store URL --port 0` in a subprocess."""

    def argv(self) -> list[str]:
        cli = [sys.executable, "-m", "stepgraph.cli", "serve", self.target]
        return [*cli, "--store", self.store_url, "--port", "0"]


def _url(dsn: str, schema: str) -> str:
    from tests.stores.pg_support import store_url

    return store_url(dsn, schema)


@dataclass
class Pair:
    a: ServerProcess
    b: ServerProcess
    dsn: str
    schema: str
    flags: Path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    dsn = require_dsn()
    schema = f"{RUN}_replicas"
    tmp = tmp_path_factory.mktemp("replicas")
    url = _url(dsn, schema)
    a = CliReplica(f"{HERE}:desk", url, tmp / "a.log")
    b = CliReplica(f"{HERE}:desk", url, tmp / "b.log")
    try:
        a.start()
        b.start()
        yield Pair(a, b, dsn, schema, tmp)
    finally:
        for server in (a, b):
            with contextlib.suppress(Exception):
                server.stop()
        drop_schemas(dsn, schema)


@contextlib.asynccontextmanager
async def clients(p: Pair) -> AsyncIterator[tuple[openai.AsyncOpenAI, openai.AsyncOpenAI]]:
    async with p.a.client() as a, p.b.client() as b:
        yield a, b


async def _flag(path: Path, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _checkpoints(server: ServerProcess, session_id: str) -> list[dict[str, Any]]:
    async with server.http() as http:
        r = await http.get(f"/ui/api/sessions/{session_id}/checkpoints")
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data


def _busy(exc: openai.ConflictError) -> None:
    assert exc.response.headers.get("x-should-retry") == "false"
    assert exc.code == "conversation_busy"


async def _streamed(client: openai.AsyncOpenAI, **kw: Any) -> str:
    stream = await client.responses.create(model="desk", stream=True, **kw)
    async for event in stream:
        if event.type == "response.completed":
            return event.response.output_text
    raise AssertionError("no response.completed")


# -- the tests ----------------------------------------------------------------------------


def test_open_store_takes_postgresql_urls() -> None:
    # How the URL becomes a DSN and a schema: tests/stores/test_urls.py.
    from stepgraph.hosting import open_store
    from stepgraph.stores.postgres import PostgresCheckpointStore

    store = open_store("postgres://db/app?schema=x")
    assert isinstance(store, PostgresCheckpointStore)
    assert store.schema == "x"
    with pytest.raises(ValueError, match="schema"):
        open_store("postgresql://db/app?schema=")


def test_conversation_continues_on_either_replica(pair: Pair) -> None:
    async def main() -> None:
        async with clients(pair) as (a, b):
            conv = await a.conversations.create()
            r1 = await a.responses.create(model="desk", input="one", conversation=conv.id)
            r2 = await b.responses.create(model="desk", input="two", conversation=conv.id)
            r3 = await a.responses.create(model="desk", input="three", conversation=conv.id)
            assert [r.output_text for r in (r1, r2, r3)] == [
                "turn 1: one",
                "turn 2: two",
                "turn 3: three",
            ]
            assert (await b.responses.retrieve(r1.id)).output_text == "turn 1: one"
            items = await b.conversations.items.list(conv.id, order="asc")
            assert len(items.data) == 6
            # B's cached session stands where r2 ended, A moved on: a branch from r2
            # on B continues from r2's checkpoint, not from A's newer one.
            branch = await b.responses.create(model="desk", input="alt", previous_response_id=r2.id)
            assert branch.output_text == "turn 3: alt"
            # A question asked on one replica is answered on the other.
            ask = await b.responses.create(model="desk", input="ask colour?", conversation=conv.id)
            call = ask.output[0]
            assert call.type == "function_call"
            answer = {"type": "function_call_output", "call_id": call.call_id, "output": "blue"}
            done = await a.responses.create(model="desk", input=[answer], conversation=conv.id)
            assert done.output_text == "colour?: blue"
            nxt = await b.responses.create(model="desk", input="five", conversation=conv.id)
            assert nxt.output_text == "turn 5: five"

    asyncio.run(main())


def test_concurrent_requests_on_two_replicas_one_run_one_409(pair: Pair) -> None:
    async def main() -> None:
        async with clients(pair) as (a, b):
            conv = await a.conversations.create()
            await b.responses.create(model="desk", input="one", conversation=conv.id)
            before = {c["id"] for c in await _checkpoints(pair.b, conv.id)}
            flag = pair.flags / "race"
            hold = f"hold {flag}"
            on_a = asyncio.ensure_future(
                a.responses.create(model="desk", input=hold, conversation=conv.id)
            )
            on_b = asyncio.ensure_future(_streamed(b, input=hold, conversation=conv.id))
            done, _ = await asyncio.wait([on_a, on_b], return_when=asyncio.FIRST_COMPLETED)
            loser = done.pop()
            winner = on_b if loser is on_a else on_a
            with pytest.raises(openai.ConflictError) as refused:
                await loser
            _busy(refused.value)
            await _flag(Path(f"{flag}.started"), "the winner's run")
            Path(f"{flag}.go").touch()
            result = await winner
            text = result if isinstance(result, str) else result.output_text
            assert text == f"turn 2: {hold}"

            items = await a.conversations.items.list(conv.id, order="asc")
            inputs = [i for i in items.data if i.type == "message" and i.role == "user"]
            assert len(inputs) == 2
            assert len(items.data) == 4
            # Every checkpoint written since is one chain: one run, nothing from the loser.
            new = [c for c in await _checkpoints(pair.a, conv.id) if c["id"] not in before]
            assert new
            for newer, older in itertools.pairwise(new):
                assert newer["parent_id"] == older["id"]
            assert new[-1]["parent_id"] in before

            # While B runs a turn, A refuses at once: plain, streamed, and deleting.
            flag = pair.flags / "busy"
            slow = asyncio.ensure_future(
                b.responses.create(model="desk", input=f"hold {flag}", conversation=conv.id)
            )
            await _flag(Path(f"{flag}.started"), "B's run")
            for create in (
                a.responses.create(model="desk", input="x", conversation=conv.id),
                _streamed(a, input="x", conversation=conv.id),
                a.conversations.delete(conv.id),
            ):
                with pytest.raises(openai.ConflictError) as refused:
                    await create
                assert refused.value.response.headers.get("x-should-retry") == "false"
            Path(f"{flag}.go").touch()
            assert (await slow).output_text == f"turn 3: hold {flag}"

    asyncio.run(main())


def test_background_response_is_polled_on_either_replica(pair: Pair) -> None:
    """A background response runs on the replica that took it; any replica answers its
    polls; a cancel must reach the replica running it (409 elsewhere)."""

    async def main() -> None:
        async with clients(pair) as (a, b):
            conv = await a.conversations.create()
            flag = pair.flags / "background"
            hold = f"hold {flag}"
            r = await a.responses.create(
                model="desk", input=hold, conversation=conv.id, background=True
            )
            assert r.status == "queued"
            await _flag(Path(f"{flag}.started"), "the background run")
            assert (await b.responses.retrieve(r.id)).status == "in_progress"
            with pytest.raises(openai.ConflictError) as elsewhere:
                await b.responses.cancel(r.id)
            assert elsewhere.value.code == "response_on_another_replica"
            Path(f"{flag}.go").touch()

            async def completed() -> bool:
                return (await b.responses.retrieve(r.id)).status == "completed"

            deadline = time.monotonic() + 15
            while not await completed():
                assert time.monotonic() < deadline, "the background response never completed"
                await asyncio.sleep(0.02)
            assert (await b.responses.retrieve(r.id)).output_text == f"turn 1: {hold}"
            nxt = await b.responses.create(model="desk", input="two", conversation=conv.id)
            assert nxt.output_text == "turn 2: two"
            # A running background response is cancelled by the replica running it.
            flag = pair.flags / "background-cancel"
            r2 = await b.responses.create(
                model="desk", input=f"hold {flag}", conversation=conv.id, background=True
            )
            await _flag(Path(f"{flag}.started"), "the second background run")
            assert (await b.responses.cancel(r2.id)).status == "cancelled"
            assert (await a.responses.retrieve(r2.id)).status == "cancelled"
            Path(f"{flag}.go").touch()
            r3 = await a.responses.create(model="desk", input="three", conversation=conv.id)
            assert r3.output_text == "turn 3: three"

    asyncio.run(main())


def test_run_refused_at_its_start_is_a_409(pair: Pair) -> None:
    """Another program holds the session's lease: the run fails as it starts, and the
    request (streamed ones before any byte) gets 409."""
    from stepgraph.stores.postgres import PostgresCheckpointStore

    async def main() -> None:
        async with (
            clients(pair) as (a, _),
            PostgresCheckpointStore(pair.dsn, schema=pair.schema) as store,
        ):
            conv = await a.conversations.create()
            await a.responses.create(model="desk", input="one", conversation=conv.id)
            lease = await store.acquire(conv.id, "elsewhere:1:tool", 30.0)
            for create in (
                a.responses.create(model="desk", input="x", conversation=conv.id),
                _streamed(a, input="x", conversation=conv.id),
            ):
                with pytest.raises(openai.ConflictError) as refused:
                    await create
                _busy(refused.value)
            await store.release(lease)
            r = await a.responses.create(model="desk", input="two", conversation=conv.id)
            assert r.output_text == "turn 2: two"

    asyncio.run(main())


def test_request_lock_is_renewed_while_held(pair: Pair) -> None:
    from stepgraph.hosting._replicas import RequestLocks, lock_key
    from stepgraph.stores.postgres import PostgresCheckpointStore

    async def main() -> None:
        async with PostgresCheckpointStore(pair.dsn, schema=pair.schema) as store:
            locks = RequestLocks(store, ttl=0.3)
            async with asyncio.TaskGroup() as tg:
                renewer = tg.create_task(locks.keep_alive())
                await locks.acquire("renewed", "conversation")
                await asyncio.sleep(1.0)  # over three ttls
                with pytest.raises(sg.ConcurrentRunError):
                    await store.acquire(lock_key("renewed"), "elsewhere:1:tool", 1.0)
                await locks.release("renewed")
                lease = await store.acquire(lock_key("renewed"), "elsewhere:1:tool", 1.0)
                await store.release(lease)
                renewer.cancel()

    asyncio.run(main())


def test_killed_replica_leaves_the_conversation_to_the_other(pair: Pair) -> None:
    async def main() -> None:
        async with clients(pair) as (a, b):
            conv = await b.conversations.create()
            await b.responses.create(model="desk", input="one", conversation=conv.id)
            flag = pair.flags / "killed"
            doomed = asyncio.ensure_future(
                a.responses.create(model="desk", input=f"hold {flag}", conversation=conv.id)
            )
            await _flag(Path(f"{flag}.started"), "A's run")
            proc = pair.a.proc
            assert proc is not None
            proc.kill()  # SIGKILL mid-run: A's request lock and session lease stay behind
            proc.wait()
            with pytest.raises(openai.APIConnectionError):
                await doomed
            started = time.monotonic()
            r = await b.responses.create(model="desk", input="two", conversation=conv.id)
            assert time.monotonic() - started < 5  # not the leases' 30 s ttl
            assert r.output_text == "turn 2: two"  # A's turn was never committed
            items = await b.conversations.items.list(conv.id, order="asc")
            assert [i.type for i in items.data] == ["message"] * 4

    try:
        asyncio.run(main())
    finally:
        pair.a.stop()
        pair.a.start()  # the module's pair stays whole for whatever runs next


def test_a_replica_paused_past_its_lease_cannot_move_the_conversation_back(
    tmp_path: Path,
) -> None:
    """Three replicas with 1 s leases. A runs a turn and is stopped (SIGSTOP) past its
    leases; B and C answer turns 2 and 3; A resumes, its write is refused and its turn
    fails, but the conversation stays at turn 3 (issue 18, item 5)."""
    dsn = require_dsn()
    schema = f"{RUN}_paused"
    url = _url(dsn, schema)
    a, b, c = (
        ServerProcess(f"{HERE}:desk", url, tmp_path / f"{n}.log", options="lease_ttl=1.0")
        for n in "abc"
    )
    flag = tmp_path / "paused"

    async def retry_busy(client: openai.AsyncOpenAI, text: str, conv: str) -> str:
        for _ in range(400):  # A's locks expire 1 s after it stopped renewing them
            try:
                r = await client.responses.create(model="desk", input=text, conversation=conv)
            except openai.ConflictError:
                await asyncio.sleep(0.05)
                continue
            return r.output_text
        raise AssertionError("the paused replica's leases never expired")

    async def main() -> None:
        async with a.client() as ca, b.client() as cb, c.client() as cc:
            conv = (await cb.conversations.create()).id
            one = await cb.responses.create(model="desk", input="one", conversation=conv)
            assert one.output_text == "turn 1: one"
            doomed = asyncio.ensure_future(
                ca.responses.create(model="desk", input=f"hold {flag}", conversation=conv)
            )
            await _flag(Path(f"{flag}.started"), "A's run")
            assert a.proc is not None
            os.kill(a.proc.pid, signal.SIGSTOP)  # a VM pause, a long synchronous call
            try:
                assert await retry_busy(cb, "two", conv) == "turn 2: two"
                assert await retry_busy(cc, "three", conv) == "turn 3: three"
            finally:
                Path(f"{flag}.go").touch()
                os.kill(a.proc.pid, signal.SIGCONT)
            stale = await doomed  # A ends its turn and records it
            assert stale.status == "failed"
            four = await ca.responses.create(model="desk", input="four", conversation=conv)
            assert four.output_text == "turn 4: four"
            items = await cc.conversations.items.list(conv, order="asc", limit=100)
            texts = [
                part.text
                for item in items.data
                if item.type == "message"
                for part in item.content
                if hasattr(part, "text")
            ]
            assert texts == [
                "one", "turn 1: one", "two", "turn 2: two",
                "three", "turn 3: three", "four", "turn 4: four",
            ]  # fmt: skip
            assert (await cb.responses.retrieve(stale.id)).status == "failed"

    try:
        for server in (a, b, c):
            server.start()
        asyncio.run(main())
    finally:
        for server in (a, b, c):
            if server.proc is not None and server.proc.poll() is None:
                os.kill(server.proc.pid, signal.SIGCONT)
            with contextlib.suppress(Exception):
                server.stop()
        drop_schemas(dsn, schema)
