"""The dev UI's JSON/SSE API under `/ui/api/`: graph, sessions, runs, checkpoints, events.

Runs started here execute in the background, owned by the app's lifespan;
the page follows them on the event stream (`/ui/api/events`), which carries
every run the server drives, Responses API runs included.

Each caller sees only their own: sessions they opened (from here or through
the Responses API), runs they started, and those runs' events; anything else
is a 404, word for word as an id that does not exist. Admins see everything.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import stepgraph as sg
from stepgraph.agents import json_schema

from ._auth import Principal, check_session, principal_of
from ._chat import ROUTES as CHAT_ROUTES
from ._chat import chat_inputs, is_chat
from ._debugger import DEBUG_ROUTES
from ._errors import ApiError
from ._events import event_json, request_json
from ._history import HISTORY_ROUTES, session_list
from ._host import Host
from ._http import host_of, read_json
from ._launch import spawn_run
from ._layout import graph_layout
from ._sse import EventStream, frame
from ._turns import start_input
from ._wire import new_id, obj

__all__ = ["ROUTES"]

_PING = 15.0
_SEQ = re.compile(r"[0-9]{1,18}")  # an event sequence number (ASCII digits, fits 64 bits)


def _schema(request: sg.Request) -> dict[str, Any]:
    try:
        return json_schema(request.response_type)
    except Exception:
        return {}


async def workflow(request: Request) -> Response:
    """`GET /ui/api/workflow[?model=name]`: name, signature, description, layout and
    Mermaid text of a workflow served (default: the first), the model names served, and
    whether the page shows it as a chat (`_chat.is_chat`).
    """
    host = host_of(request)
    model = request.query_params.get("model")
    if model is not None and model not in host.models:
        raise ApiError(404, f"no model {model!r}", code="model_not_found", param="model")
    if model is None:
        model = next(iter(host.models))
    wf = host.models[model]
    desc = wf.describe()
    return JSONResponse(
        {
            "name": wf.name,
            "model": model,
            "models": list(host.models),
            "signature": wf.signature,
            "description": desc,
            "layout": graph_layout(desc),
            "mermaid": wf.to_mermaid(),
            "chat": is_chat(wf),
        }
    )


async def sessions(request: Request) -> Response:
    """`GET /ui/api/sessions`: sessions the caller may see, newest first (an admin: every
    session of the store too, see `_history.session_list`).
    """
    data = await session_list(host_of(request), principal_of(request))
    return JSONResponse({"object": "list", "data": data})


def _session_id(request: Request) -> str:
    """The `{session_id}` of the path; 404 for one no store can hold (a NUL character)."""
    sid = str(request.path_params["session_id"])
    if "\x00" in sid:
        raise ApiError(404, f"no session with id {sid!r}", code="session_not_found")
    return sid


async def _known(
    host: Host, session_id: str, viewer: Principal, *, claimed: bool = False
) -> sg.Session[Any]:
    """The session (404 when unknown or not `viewer`'s); loaded and fresh unless a
    request here holds it.
    """
    await check_session(host, session_id, viewer)
    if claimed or not host.is_busy(session_id):
        try:
            return await host.fresh(session_id)
        except sg.ConcurrentRunError:  # a request here started a run meanwhile
            pass
    return host.session(session_id)


async def session_detail(request: Request) -> Response:
    """`GET /ui/api/sessions/{session_id}`: status, pending requests (with schemas), runs."""
    host = host_of(request)
    sid = _session_id(request)
    viewer = principal_of(request)
    session = await _known(host, sid, viewer)
    pending = [{**request_json(r), "schema": _schema(r)} for r in session.pending_requests]
    return JSONResponse(
        {
            "id": sid,
            "status": session.status.value,
            "busy": host.is_busy(sid),
            "head": session.head,
            "model": host.model_name(session),
            "pending_requests": pending,
            "runs": [r.summary() for r in host.runs_of(sid) if viewer.may_see(r.owner)],
        }
    )


async def checkpoints(request: Request) -> Response:
    """`GET /ui/api/sessions/{session_id}/checkpoints`: every checkpoint, newest first."""
    host = host_of(request)
    sid = _session_id(request)
    session = await _known(host, sid, principal_of(request))
    infos = await session.history()
    data = [
        {
            "id": i.id,
            "parent_id": i.parent_id,
            "superstep": i.superstep,
            "created_at": i.created_at.isoformat(),
        }
        for i in infos
    ]
    return JSONResponse({"object": "list", "head": session.head, "data": data})


async def _launch(
    host: Host,
    viewer: Principal,
    session_id: str,
    kind: str,
    start: Callable[[sg.Session[Any]], sg.Run],
    *,
    label: str,
    known: bool = True,
    model: str | None = None,
) -> Response:
    if known:
        await check_session(host, session_id, viewer)  # first: a busy session's 409 would tell
    host.claim(session_id, "session")
    try:
        await host.lock(session_id, "session")
        if known:
            session = await _known(host, session_id, viewer, claimed=True)
        else:
            session = host.session(session_id, model)
        run = start(session)
        rec = spawn_run(
            host, session_id, session, run, kind=kind, owner=viewer.identity, label=label
        )
    except BaseException:
        await host.release(session_id)
        raise
    return JSONResponse({"session_id": session_id, "run_id": rec.id}, status_code=202)


def _input_of(body: Any) -> Any:
    b = obj(body)
    if b is None or "input" not in b:
        raise ApiError(400, "send a JSON object with input", param="input")
    return b["input"]


def _candidates(value: Any) -> list[Any]:
    return chat_inputs(value) if isinstance(value, str) else [value]


async def new_session(request: Request) -> Response:
    """`POST /ui/api/sessions` `{input, model?}`: a new session of a workflow served (by
    model name; default: the first) and its first run.
    """
    body = await read_json(request)
    value = _input_of(body)
    host = host_of(request)
    model: Any = (obj(body) or {}).get("model")
    if model is not None and (not isinstance(model, str) or model not in host.models):
        raise ApiError(
            400,
            f"no model {model!r}; served: {', '.join(host.models)}",
            code="model_not_found",
            param="model",
        )
    return await _launch(
        host_of(request),
        principal_of(request),
        new_id("ui"),
        "run",
        lambda s: start_input(s, _candidates(value)),
        label=str(value)[:200],
        known=False,
        model=model,
    )


async def start_run(request: Request) -> Response:
    """`POST /ui/api/sessions/{session_id}/runs` `{input}`: a run with new input."""
    value = _input_of(await read_json(request))
    sid = _session_id(request)
    return await _launch(
        host_of(request),
        principal_of(request),
        sid,
        "run",
        lambda s: start_input(s, _candidates(value)),
        label="",
    )


async def respond(request: Request) -> Response:
    """`POST /ui/api/sessions/{session_id}/respond` `{answers: {request_id: value}}`."""
    body = await read_json(request)
    b = obj(body) or {}
    given = obj(b.get("answers"))
    if not given:
        raise ApiError(400, "send {answers: {request_id: value}} with at least one answer")

    def start(s: sg.Session[Any]) -> sg.Run:
        try:
            return s.respond(given)
        except sg.RequestError as exc:
            raise ApiError(400, str(exc), code="invalid_answer") from None
        except sg.NotIdleError as exc:
            raise ApiError(409, str(exc), code="session_not_idle") from None

    sid = _session_id(request)
    return await _launch(host_of(request), principal_of(request), sid, "respond", start, label="")


async def resume(request: Request) -> Response:
    """`POST /ui/api/sessions/{session_id}/resume` `{checkpoint_id}`: branch from a checkpoint."""
    body = await read_json(request)
    cid: Any = (obj(body) or {}).get("checkpoint_id")
    if cid is not None and (not isinstance(cid, str) or not cid):
        raise ApiError(400, "checkpoint_id must be a checkpoint id string", param="checkpoint_id")
    sid = _session_id(request)
    host = host_of(request)
    viewer = principal_of(request)
    await check_session(
        host, sid, viewer
    )  # before the checkpoint: its 404 would tell the session exists
    if cid is not None:
        infos = await host.store.list(sid)
        if not any(i.id == cid for i in infos):
            raise ApiError(404, f"session {sid!r} has no checkpoint {cid!r}", code="not_found")
    return await _launch(host, viewer, sid, "resume", lambda s: s.resume(cid), label="")


async def run_detail(request: Request) -> Response:
    """`GET /ui/api/runs/{run_id}`: a recent run with its events."""
    rid = str(request.path_params["run_id"])
    rec = host_of(request).run_record(rid)
    if rec is None or not principal_of(request).may_see(rec.owner):
        raise ApiError(404, f"no recent run with id {rid!r}", code="run_not_found")
    return JSONResponse({**rec.summary(), "events": [event_json(e) for e in rec.events]})


async def events(request: Request) -> Response:
    """`GET /ui/api/events[?session=id]`: live records of every run the caller may see
    (SSE, replay after `Last-Event-ID`); a session not theirs is a 404.
    """
    host = host_of(request)
    viewer = principal_of(request)
    sid = request.query_params.get("session") or None
    if sid is not None and not viewer.is_admin:
        await check_session(host, sid, viewer)
    last = request.headers.get("last-event-id") or request.query_params.get("after")
    after = int(last) if last is not None and _SEQ.fullmatch(last) else None
    sub = host.hub.subscribe(sid, after, viewer)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 1000\n: connected\n\n"
            while True:
                try:
                    async with asyncio.timeout(_PING):
                        rec = await sub.queue.get()
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if rec is None:
                    return
                yield frame(rec["type"], rec, rec["seq"])
        finally:
            host.hub.unsubscribe(sub)

    return EventStream(body())


ROUTES: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
    ("/ui/api/workflow", workflow, ["GET"]),
    ("/ui/api/sessions", sessions, ["GET"]),
    ("/ui/api/sessions", new_session, ["POST"]),
    ("/ui/api/sessions/{session_id}", session_detail, ["GET"]),
    ("/ui/api/sessions/{session_id}/checkpoints", checkpoints, ["GET"]),
    ("/ui/api/sessions/{session_id}/runs", start_run, ["POST"]),
    ("/ui/api/sessions/{session_id}/respond", respond, ["POST"]),
    ("/ui/api/sessions/{session_id}/resume", resume, ["POST"]),
    ("/ui/api/runs/{run_id}", run_detail, ["GET"]),
    ("/ui/api/events", events, ["GET"]),
    *CHAT_ROUTES,
    *DEBUG_ROUTES,
    *HISTORY_ROUTES,
]
