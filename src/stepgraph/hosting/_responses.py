"""`/v1/responses`: create (plain or streamed), retrieve, delete, input items.

A request with `previous_response_id` continues that response's session from
the checkpoint the response ended on (an older response id branches); one
with `conversation` continues the conversation's head; one with neither gets
a new, clean session. The session is marked busy before any await, so a
concurrent request for it gets 409 with `x-should-retry: false`; with several
replicas the request then takes the session's request lock (409 when another
replica serves it) and reads the conversation's head under it; recording the
response moves the head only while it is still the one read (a replica that
lost its lock while paused never moves it back). A streamed
request starts its run before the first SSE byte, so a run refused at its
start (another process holds the session) is a plain 409 too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import stepgraph as sg

from ._auth import Principal, principal_of
from ._background import submit
from ._errors import ApiError
from ._guard import Withdrawn, closing_error
from ._host import Host
from ._http import host_of, int_query, read_json
from ._log import ResponseRecord
from ._replies import ReplyFrames
from ._sse import EventStream, ResponseEvents
from ._turns import STATUS as _STATUS
from ._turns import Turn as _Turn
from ._turns import begin, open_turn, plain_body, refresh
from ._wire import TurnRequest, parse_turn

__all__ = [
    "create_response",
    "delete_response",
    "get_response",
    "list_input_items",
    "page",
]

logger = logging.getLogger("stepgraph.hosting")


async def create_response(request: Request) -> Response:
    """`POST /v1/responses`."""
    host = host_of(request)
    req = parse_turn(await read_json(request))
    ticket = await begin(host, req, principal_of(request))
    policy = req.double_texting or host.double_texting
    if req.background:
        return await submit(host, ticket, policy)
    session_id = ticket.session_id
    waiting = host.enter(session_id, policy=policy)
    if waiting is not None:
        try:
            await host.wait_turn(session_id, waiting)
        except Withdrawn:
            raise closing_error() from None
    release = True
    try:
        await host.lock(session_id)
        if host.shared or waiting is not None:
            await refresh(host, ticket)  # the conversation's head, as of now
        if (earlier := _repeat_of(host, req, session_id, ticket.principal)) is not None:
            return _replay(req, earlier)
        turn = await open_turn(host, ticket)
        session, run, rec = turn.session, turn.run, turn.rec
        if req.stream:
            driven = host.drive(session, run, rec, live=True)
            first = await anext(driven, None)  # the run starts: 409 while no byte is sent
            held = [True]

            async def let_go() -> None:  # once: a second release could free the next holder's
                if held:
                    held.clear()
                    await host.release(session_id)

            async def close() -> None:
                try:
                    await driven.aclose()  # the stream never started: stop the run
                finally:
                    await let_go()

            release = False
            return EventStream(_stream(turn, driven, first, let_go), on_close=close)
        async for _ in host.drive(session, run, rec):
            pass
        body = plain_body(turn)
        turn.record(body)
        return JSONResponse(body)
    finally:
        if release:
            await host.release(session_id)


def _repeat_of(
    host: Host, req: TurnRequest, session_id: str, principal: Principal
) -> ResponseRecord | None:
    """The completed response that already gave these very answers from the same place
    (the same `previous_response_id`, or the same conversation), or None.

    A client retrying an answer gets that response again instead of running the
    handlers twice. In a conversation a call answered already with another output is
    a 409; from a `previous_response_id`, another output is a branch, as any older
    response id is. Responses `principal` may not see are not theirs to replay.
    """
    if not req.answers:
        return None
    given = sorted(req.answers)
    for rec in reversed(host.log.answers_to(session_id, given[0][0])):
        if rec.body.get("status") != "completed" or not principal.may_see(rec.owner):
            continue  # a failed or cancelled answer: running it again is the retry
        if req.conversation_id is not None:
            if rec.conversation_id != req.conversation_id:
                continue
        elif rec.conversation_id is not None or (
            rec.body.get("previous_response_id") != req.previous_response_id
        ):
            continue
        if sorted(_answers(rec)) == given:
            return rec
        if req.conversation_id is not None:
            raise ApiError(
                409,
                f"call_id {given[0][0]!r} of this conversation was answered already, by "
                f"response {rec.id!r} (GET /v1/responses/{rec.id}); a call is answered once",
                code="call_already_answered",
            )
    return None


def _answers(rec: ResponseRecord) -> list[tuple[str, str]]:
    return [
        (str(i.get("call_id")), str(i.get("output")))
        for i in rec.input_items
        if i.get("type") == "function_call_output"
    ]


def _replay(req: TurnRequest, earlier: ResponseRecord) -> Response:
    """The earlier response again: its body, or (streamed) every event of it."""
    if not req.stream:
        return JSONResponse(earlier.body)
    body = earlier.body
    events = ResponseEvents(lambda status: {**body, "status": status, "output": events.output})

    async def frames() -> AsyncIterator[bytes]:
        for f in events.replay(body):
            yield f

    return EventStream(frames())


async def _stream(
    turn: _Turn,
    driven: AsyncGenerator[sg.Event],
    first: sg.Event | None,
    release: Callable[[], Awaitable[None]],
) -> AsyncIterator[bytes]:
    """The SSE body; `driven` was started already and gave `first` (None: it ended).

    The session is released (`release`) before the last event is sent: a client
    that sends its next turn the moment it reads `response.completed` finds the
    conversation free, not busy (409).
    """
    events = ResponseEvents(lambda status: turn.body(status, list(events.output)))
    replies = ReplyFrames(events, stepgraph_events=turn.req.stepgraph_events)
    finished = False
    try:
        for f in events.started():
            yield f
        if first is not None:
            for f in replies.frames(first):
                yield f
        async for ev in driven:  # an ended generator yields nothing
            for f in replies.frames(ev):
                yield f
        for f in replies.close():
            yield f
        body = turn.body(_STATUS.get(turn.rec.status, "incomplete"), events.output)
        turn.record(body)
        finished = True
        await driven.aclose()
        await release()
        yield events.finished(body)
    finally:
        await driven.aclose()  # the client went away: stop the run, release the session
        if not finished:
            replies.close()  # the items streamed so far, done, in the recorded body
            turn.record(turn.body(_STATUS.get(turn.rec.status, "incomplete"), events.output))


async def get_response(request: Request) -> Response:
    """`GET /v1/responses/{response_id}`."""
    rec = _lookup(request)
    return JSONResponse(rec.body)


async def delete_response(request: Request) -> Response:
    """`DELETE /v1/responses/{response_id}`: forget it (its checkpoints stay)."""
    rec = _lookup(request)
    host_of(request).log.delete_response(rec.id)
    return JSONResponse({"id": rec.id, "object": "response.deleted", "deleted": True})


async def list_input_items(request: Request) -> Response:
    """`GET /v1/responses/{response_id}/input_items`."""
    rec = _lookup(request)
    return JSONResponse(page(request, rec.input_items, default_order="asc"))


def _lookup(request: Request) -> ResponseRecord:
    rid = str(request.path_params["response_id"])
    rec = host_of(request).log.get_response(rid)
    if rec is None or not principal_of(request).may_see(rec.owner):
        raise ApiError(404, f"no response with id {rid!r}", code="response_not_found")
    return rec


def page(request: Request, items: list[dict[str, Any]], *, default_order: str) -> dict[str, Any]:
    """A list object of `items` by the `limit`, `order` and `after` query parameters."""
    limit = int_query(request, "limit", 20, 1, 100)
    order = request.query_params.get("order", default_order)
    if order not in ("asc", "desc"):
        raise ApiError(400, "order must be asc or desc", param="order")
    seq = items if order == "asc" else list(reversed(items))
    after = request.query_params.get("after")
    if after is not None:
        ids = [str(i.get("id")) for i in seq]
        if after not in ids:
            raise ApiError(404, f"no item with id {after!r}", param="after")
        seq = seq[ids.index(after) + 1 :]
    data = seq[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(seq) > limit,
    }
