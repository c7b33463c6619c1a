"""The ownership scenario of issue #23, run in process, after a restart and across replicas.

Alice and Bob (two identities) and an admin call one server (or two replicas)
with the official `openai` client and plain HTTP for the dev UI, each with a
token the hook in `authhook` maps to them. `make` has Alice and Bob create
records; `check` proves that every route answers Bob a 404 for Alice's records,
exactly as for an id that does not exist, that lists are filtered, and that the
admin sees everything. Not a test module: `test_ownership` runs it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from tests.hosting.support import wait_until

ANSWER = '{"approved": true}'


@dataclass
class Callers:
    """The clients of each caller (`alice`, `bob`, `admin`) on one server."""

    ai: dict[str, openai.AsyncOpenAI]
    http: dict[str, httpx2.AsyncClient]


@dataclass
class Made:
    """What Alice (and Bob) created."""

    conv: str  # Alice's conversation (its session id too), waiting for an answer
    call_id: str  # the call pending in it
    ask: str  # the response that asked
    plain: str  # a response without conversation (its own session)
    plain_session: str
    background: str  # a background response
    ui_session: str  # a session Alice started in the dev UI, waiting for an answer
    ui_run: str
    ui_request: str
    checkpoint: str  # a checkpoint of Alice's conversation
    bob_conv: str
    bob_response: str


async def _ui_settled(http: httpx2.AsyncClient, sid: str) -> bool:
    r = await http.get(f"/ui/api/sessions/{sid}")
    return r.status_code == 200 and not r.json()["busy"] and bool(r.json()["pending_requests"])


async def make(c: Callers) -> Made:
    """Alice's and Bob's records (every kind the server creates)."""
    alice, bob = c.ai["alice"], c.ai["bob"]
    conv = await alice.conversations.create()
    ask = await alice.responses.create(model="chat", input="approve plan", conversation=conv.id)
    call = next(i for i in ask.output if i.type == "function_call")
    plain = await alice.responses.create(model="chat", input="hello")
    assert plain.output_text == "turn 1: hello"
    background = await alice.responses.create(model="chat", input="later", background=True)
    r = await c.http["alice"].post("/ui/api/sessions", json={"input": "approve ui"})
    assert r.status_code == 202, r.text
    ui_session, ui_run = r.json()["session_id"], r.json()["run_id"]
    await wait_until(lambda: _ui_settled(c.http["alice"], ui_session), "the UI run to settle")
    detail = (await c.http["alice"].get(f"/ui/api/sessions/{ui_session}")).json()
    cps = (await c.http["alice"].get(f"/ui/api/sessions/{conv.id}/checkpoints")).json()
    bob_conv = await bob.conversations.create()
    mine = await bob.responses.create(model="chat", input="bob here", conversation=bob_conv.id)
    assert mine.output_text == "turn 1: bob here"
    return Made(
        conv=conv.id,
        call_id=call.call_id,  # pyright: ignore[reportAttributeAccessIssue]
        ask=ask.id,
        plain=plain.id,
        plain_session=await _session_of(c.http["alice"], plain.id),
        background=background.id,
        ui_session=ui_session,
        ui_run=ui_run,
        ui_request=detail["pending_requests"][0]["id"],
        checkpoint=cps["data"][0]["id"],
        bob_conv=bob_conv.id,
        bob_response=mine.id,
    )


async def _session_of(http: httpx2.AsyncClient, response_id: str) -> str:
    body = (await http.get(f"/v1/responses/{response_id}")).json()
    sid: str = body["stepgraph"]["session_id"]
    return sid


async def _refused(call: Callable[[], Awaitable[Any]]) -> tuple[int, str | None, str]:
    try:
        await call()
    except openai.APIStatusError as exc:
        error = exc.body if isinstance(exc.body, dict) else {}
        return exc.status_code, exc.code, str(error.get("message", ""))  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    raise AssertionError("the call succeeded")


async def hidden(
    real: Callable[[], Awaitable[Any]],
    fake: Callable[[], Awaitable[Any]],
    real_id: str,
    fake_id: str,
) -> None:
    """`real` (another's id) fails exactly as `fake` (an id that does not exist): 404."""
    got, expected = await _refused(real), await _refused(fake)
    assert got[0] == 404, got
    assert got[:2] == expected[:2]
    assert got[2].replace(real_id, "X") == expected[2].replace(fake_id, "X")


async def _http_hidden(
    http: httpx2.AsyncClient, method: str, path: str, real_id: str, fake_id: str, **kw: Any
) -> None:
    real = await http.request(method, path.format(real_id), **kw)
    fake = await http.request(method, path.format(fake_id), **kw)
    assert real.status_code == 404, (path, real.text)
    assert fake.status_code == 404, (path, fake.text)
    assert real.text.replace(real_id, "X") == fake.text.replace(fake_id, "X"), path


async def check(c: Callers, m: Made, *, same_process: bool = True) -> None:
    """Every denial a 404 like an unknown id, lists filtered, the admin sees all."""
    await _check_responses(c, m)
    await _check_conversations(c, m)
    await _check_devui(c, m, same_process=same_process)
    await _check_admin(c, m, same_process=same_process)


async def _check_responses(c: Callers, m: Made) -> None:
    bob = c.ai["bob"]
    fake = "resp_doesnotexist0000000000000000"
    for rid in (m.ask, m.plain, m.background):
        await hidden(
            lambda r=rid: bob.responses.retrieve(r), lambda: bob.responses.retrieve(fake), rid, fake
        )
        await hidden(
            lambda r=rid: bob.responses.input_items.list(r),
            lambda: bob.responses.input_items.list(fake),
            rid,
            fake,
        )
        await hidden(
            lambda r=rid: bob.responses.create(model="chat", input="x", previous_response_id=r),
            lambda: bob.responses.create(model="chat", input="x", previous_response_id=fake),
            rid,
            fake,
        )
    answer = [{"type": "function_call_output", "call_id": m.call_id, "output": ANSWER}]
    await hidden(
        lambda: bob.responses.create(model="chat", input=answer, previous_response_id=m.ask),  # pyright: ignore[reportArgumentType]
        lambda: bob.responses.create(model="chat", input=answer, previous_response_id=fake),  # pyright: ignore[reportArgumentType]
        m.ask,
        fake,
    )
    await hidden(
        lambda: bob.responses.cancel(m.background),
        lambda: bob.responses.cancel(fake),
        m.background,
        fake,
    )
    await hidden(
        lambda: bob.responses.delete(m.plain), lambda: bob.responses.delete(fake), m.plain, fake
    )
    # Bob's own records work; Alice's are all still there for her.
    assert (await bob.responses.retrieve(m.bob_response)).output_text == "turn 1: bob here"
    assert (await c.ai["alice"].responses.retrieve(m.plain)).output_text == "turn 1: hello"


async def _check_conversations(c: Callers, m: Made) -> None:
    bob = c.ai["bob"]
    fake = "conv_doesnotexist0000000000000000"
    cid = m.conv
    await hidden(
        lambda: bob.conversations.retrieve(cid), lambda: bob.conversations.retrieve(fake), cid, fake
    )
    await hidden(
        lambda: bob.conversations.update(cid, metadata={"a": "b"}),
        lambda: bob.conversations.update(fake, metadata={"a": "b"}),
        cid,
        fake,
    )
    await hidden(
        lambda: bob.conversations.items.list(cid),
        lambda: bob.conversations.items.list(fake),
        cid,
        fake,
    )
    await hidden(
        lambda: bob.conversations.delete(cid), lambda: bob.conversations.delete(fake), cid, fake
    )
    await hidden(
        lambda: bob.responses.create(model="chat", input="x", conversation=cid),
        lambda: bob.responses.create(model="chat", input="x", conversation=fake),
        cid,
        fake,
    )
    answer = [{"type": "function_call_output", "call_id": m.call_id, "output": ANSWER}]
    await hidden(
        lambda: bob.responses.create(model="chat", input=answer, conversation=cid),  # pyright: ignore[reportArgumentType]
        lambda: bob.responses.create(model="chat", input=answer, conversation=fake),  # pyright: ignore[reportArgumentType]
        cid,
        fake,
    )
    items = await c.ai["alice"].conversations.items.list(cid, order="asc")
    assert len(items.data) >= 2  # Alice's own conversation is intact


_DEBUGGER_ROUTES = (
    ("GET", "/ui/api/sessions/{}/debug/tree"),
    ("POST", "/ui/api/sessions/{}/debug/resume"),
    ("POST", "/ui/api/sessions/{}/debug/cancel"),
    ("POST", "/ui/api/sessions/{}/debug/reset"),
)


async def _check_devui(c: Callers, m: Made, *, same_process: bool) -> None:
    http = c.http["bob"]
    fake = "ui_doesnotexist"
    for sid in (m.ui_session, m.conv, m.plain_session):
        await _http_hidden(http, "GET", "/ui/api/sessions/{}", sid, fake)
        await _http_hidden(http, "GET", "/ui/api/sessions/{}/checkpoints", sid, fake)
        await _http_hidden(http, "GET", "/ui/api/sessions/{}/chat", sid, fake)
        await _http_hidden(http, "POST", "/ui/api/sessions/{}/runs", sid, fake, json={"input": "x"})
        await _http_hidden(http, "GET", "/ui/api/events?session={}", sid, fake)
        for method, route in _DEBUGGER_ROUTES:  # the time-travel debugger's routes too
            await _http_hidden(http, method, route, sid, fake, json={})
    answers = {"answers": {m.ui_request: {"approved": True}}}
    await _http_hidden(
        http, "POST", "/ui/api/sessions/{}/respond", m.ui_session, fake, json=answers
    )
    resume = {"checkpoint_id": m.checkpoint}
    await _http_hidden(http, "POST", "/ui/api/sessions/{}/resume", m.conv, fake, json=resume)
    await _http_hidden(http, "POST", "/ui/api/sessions/{}/resume", m.conv, fake, json={})
    if same_process:  # run records live in the process that ran them
        await _http_hidden(http, "GET", "/ui/api/runs/{}", m.ui_run, "run_doesnotexist")
    mine = {s["id"] for s in (await http.get("/ui/api/sessions")).json()["data"]}
    assert mine == {m.bob_conv}
    hers = {s["id"] for s in (await c.http["alice"].get("/ui/api/sessions")).json()["data"]}
    assert {m.ui_session, m.conv, m.plain_session} <= hers
    assert m.bob_conv not in hers


async def _check_admin(c: Callers, m: Made, *, same_process: bool) -> None:
    admin, http = c.ai["admin"], c.http["admin"]
    assert (await admin.responses.retrieve(m.plain)).output_text == "turn 1: hello"
    assert (await admin.responses.retrieve(m.bob_response)).output_text == "turn 1: bob here"
    assert (await admin.conversations.retrieve(m.conv)).id == m.conv
    assert len((await admin.conversations.items.list(m.bob_conv)).data) == 2
    every = {s["id"] for s in (await http.get("/ui/api/sessions")).json()["data"]}
    assert {m.ui_session, m.conv, m.plain_session, m.bob_conv} <= every
    for path in (f"/ui/api/sessions/{m.ui_session}", f"/ui/api/sessions/{m.conv}/checkpoints"):
        assert (await http.get(path)).status_code == 200, path
    if same_process:
        assert (await http.get(f"/ui/api/runs/{m.ui_run}")).status_code == 200
