"""The dev UI's time-travel debugger: JSON routes under `/ui/api/sessions/{id}/debug/`.

* `GET  .../debug/tree`: every checkpoint (newest first, at most `_TREE_LIMIT`) with
  its parent, superstep and status, and the head.
* `GET  .../debug/checkpoints/{cid}`: a checkpoint's state (plain JSON), pending
  requests and its diff against its parent.
* `POST .../debug/checkpoints/{cid}/fork` `{values, delete}`: edit-and-fork
  (`Session.update_state(values, checkpoint=cid)`), 201 with the new checkpoint.
* `POST .../debug/resume` `{checkpoint_id, interrupt_before, interrupt_after}`: a run
  from the head or a checkpoint, stopping at breakpoints (202).
* `POST .../debug/cancel`: cancel the session's running runs.
* `POST .../debug/reset`: back to a clean initial state (a new root).

Every route opens its session through `_target`, the one place that decides
whether a request may see a session. Edits are refused (409) while a run holds
the session, here or, through the store's lease, in another process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import stepgraph as sg
from stepgraph.stores import status_at

from ._auth import check_session, principal_of
from ._errors import ApiError
from ._events import request_json
from ._host import Host
from ._http import digests_of, host_of, read_json
from ._launch import spawn_run
from ._plain import to_jsonable
from ._wire import obj

__all__ = ["DEBUG_ROUTES", "state_diff"]

_TREE_LIMIT = 500
_MAX_ID = 200
_MAX_KEYS = 200


def state_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Keys added, removed and changed from `before` to `after` (plain JSON values)."""
    return {
        "added": {k: v for k, v in after.items() if k not in before},
        "removed": {k: v for k, v in before.items() if k not in after},
        "changed": {
            k: {"before": before[k], "after": v}
            for k, v in after.items()
            if k in before and before[k] != v
        },
    }


def _ident(value: Any, what: str, param: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        raise ApiError(
            400, f"{what} must be a non-empty string of at most {_MAX_ID} characters", param=param
        )
    if not value.isprintable():
        raise ApiError(400, f"{what} holds control characters", param=param)
    return value


async def _target(request: Request) -> tuple[Host, str]:
    """The host and the path's session id; 404 when no session has that id.

    The one place the debugger decides whether a request may open a session.
    """
    host = host_of(request)
    sid = str(request.path_params["session_id"])
    if "\x00" in sid or len(sid) > _MAX_ID:
        raise ApiError(404, f"no session with id {sid[:_MAX_ID]!r}", code="session_not_found")
    await check_session(host, sid, principal_of(request))  # another identity's: 404
    return host, sid


async def _fresh(host: Host, sid: str) -> sg.Session[Any]:
    try:
        return await host.fresh(sid)
    except sg.GraphMismatchError as exc:
        raise ApiError(
            409, f"a different workflow saved this session: {exc}", code="graph_mismatch"
        ) from None


async def _view(request: Request) -> tuple[Host, str, sg.Session[Any]]:
    """A read-only look: the session, loaded when no run holds it here."""
    host, sid = await _target(request)
    if host.is_busy(sid):
        return host, sid, host.session(sid)
    try:
        return host, sid, await _fresh(host, sid)
    except sg.ConcurrentRunError:  # a run started meanwhile
        return host, sid, host.session(sid)


@contextlib.asynccontextmanager
async def _held(request: Request) -> AsyncGenerator[tuple[Host, str, sg.Session[Any]]]:
    """The session, held (409 when a run or another request holds it) while the block runs."""
    host, sid = await _target(request)
    host.claim(sid, "session")
    try:
        await host.lock(sid, "session")
        try:
            yield host, sid, await _fresh(host, sid)
        except sg.ConcurrentRunError as exc:
            raise ApiError(
                409, f"a run of this session is active: {exc}", code="session_busy"
            ) from None
    finally:
        await host.release(sid)


async def _checkpoint(session: sg.Session[Any], cid: str) -> sg.Checkpoint:
    try:
        cp = await session.checkpoint(cid)
    except sg.CheckpointNotFoundError:
        cp = None
    if cp is None or cp.info.session_id != session.id:
        raise ApiError(
            404, f"session {session.id!r} has no checkpoint {cid!r}", code="checkpoint_not_found"
        )
    return cp


def _plain_state(cp: sg.Checkpoint) -> dict[str, Any]:
    try:
        return {k: to_jsonable(v) for k, v in cp.state.items()}
    except sg.CheckpointDecodeError as exc:
        raise ApiError(
            409, f"checkpoint {cp.id!r} cannot be decoded: {exc}", code="checkpoint_undecodable"
        ) from None


async def tree(request: Request) -> Response:
    """`GET .../debug/tree`: the checkpoint tree with statuses, newest first."""
    host, sid, session = await _view(request)
    infos = await host.store.list(sid, limit=_TREE_LIMIT + 1)
    digests = digests_of(request)
    data: list[dict[str, Any]] = []
    for info in infos[:_TREE_LIMIT]:
        try:
            status = (await digests.of(host.store, info)).status
        except sg.CheckpointNotFoundError:  # pruned meanwhile
            continue
        data.append(
            {
                "id": info.id,
                "parent_id": info.parent_id,
                "superstep": info.superstep,
                "created_at": info.created_at.isoformat(),
                "status": status,
            }
        )
    busy = host.is_busy(sid)
    return JSONResponse(
        {
            "object": "list",
            "session_id": sid,
            "head": session.head,
            "status": "running" if busy else session.status.value,
            "busy": busy,
            "truncated": len(infos) > _TREE_LIMIT,
            "data": data,
        }
    )


async def checkpoint_detail(request: Request) -> Response:
    """`GET .../debug/checkpoints/{cid}`: state, pending requests, diff with the parent."""
    cid = _ident(request.path_params["checkpoint_id"], "the checkpoint id", "checkpoint_id")
    host, _, session = await _view(request)
    cp = await _checkpoint(session, cid)
    state = _plain_state(cp)
    diff: dict[str, Any] | None = None
    parent = cp.info.parent_id
    if parent is not None:
        with contextlib.suppress(sg.CheckpointNotFoundError):  # pruned: no diff
            diff = state_diff(_plain_state(await session.checkpoint(parent)), state)
    else:
        diff = state_diff({}, state)
    status = await status_at(host.store, cp)
    return JSONResponse(
        {
            "id": cp.id,
            "parent_id": parent,
            "superstep": cp.info.superstep,
            "created_at": cp.info.created_at.isoformat(),
            "status": status,
            "head": cp.id == session.head,
            "state": state,
            "diff": diff,
            "trace": cp.trace,
            "pending_requests": _pending(session, cp),
        }
    )


def _pending(session: sg.Session[Any], cp: sg.Checkpoint) -> list[dict[str, Any]]:
    """The head's pending requests when `cp` is the head (others need a restore to read)."""
    if cp.id != session.head:
        return []
    return [request_json(r) for r in session.pending_requests]


def _edits(body: Any) -> dict[str, Any]:
    b = obj(body)
    if b is None:
        raise ApiError(400, "send a JSON object {values: {key: value}, delete: [key]}")
    values = b.get("values", {})
    deleted = b.get("delete", [])
    if not isinstance(values, dict):
        raise ApiError(400, "values must be an object of state keys", param="values")
    if not isinstance(deleted, list) or not all(
        isinstance(k, str) for k in cast(list[Any], deleted)
    ):
        raise ApiError(400, "delete must be an array of state keys", param="delete")
    edits: dict[str, Any] = dict(cast(dict[str, Any], values))
    for key in cast(list[str], deleted):
        if key in edits:
            raise ApiError(400, f"state key {key!r} is both written and deleted", param="delete")
        edits[key] = sg.DELETE
    if not edits:
        raise ApiError(400, "nothing to change: give values or delete", param="values")
    if len(edits) > _MAX_KEYS:
        raise ApiError(400, f"change at most {_MAX_KEYS} keys at once", param="values")
    for key in edits:
        if not key:
            raise ApiError(400, "state keys must be non-empty strings", param="values")
    return edits


async def fork(request: Request) -> Response:
    """`POST .../debug/checkpoints/{cid}/fork` `{values, delete}`: edit-and-fork."""
    cid = _ident(request.path_params["checkpoint_id"], "the checkpoint id", "checkpoint_id")
    edits = _edits(await read_json(request))
    async with _held(request) as (_, _, session):
        await _checkpoint(session, cid)
        try:
            new = await session.update_state(edits, checkpoint=cid)
        except sg.SerializationError as exc:
            raise ApiError(400, f"a value cannot be stored: {exc}", param="values") from None
        except sg.GraphMismatchError as exc:
            raise ApiError(
                409, f"a different workflow saved that checkpoint: {exc}", code="graph_mismatch"
            ) from None
    return JSONResponse({"checkpoint_id": new, "parent_id": cid}, status_code=201)


def _breakpoints(b: dict[str, Any], name: str) -> list[str] | None:
    value = b.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in cast(list[Any], value)):
        raise ApiError(400, f"{name} must be an array of executor ids", param=name)
    return cast(list[str], value)


async def resume(request: Request) -> Response:
    """`POST .../debug/resume` `{checkpoint_id, interrupt_before, interrupt_after}`."""
    b = obj(await read_json(request))
    if b is None:
        raise ApiError(400, "send a JSON object (every field is optional)")
    cid = b.get("checkpoint_id")
    if cid is not None:
        cid = _ident(cid, "checkpoint_id", "checkpoint_id")
    before, after = _breakpoints(b, "interrupt_before"), _breakpoints(b, "interrupt_after")
    host, sid = await _target(request)
    host.claim(sid, "session")
    try:
        await host.lock(sid, "session")
        session = await _fresh(host, sid)
        if cid is not None:
            await _checkpoint(session, cid)
        try:
            run = session.resume(cid, interrupt_before=before, interrupt_after=after)
        except ValueError as exc:
            raise ApiError(400, str(exc), param="interrupt_before") from None
        except sg.ConcurrentRunError as exc:
            raise ApiError(409, str(exc), code="session_busy") from None
        owner = principal_of(request).identity
        rec = spawn_run(host, sid, session, run, kind="resume", owner=owner)
    except BaseException:
        await host.release(sid)
        raise
    return JSONResponse({"session_id": sid, "run_id": rec.id}, status_code=202)


async def cancel(request: Request) -> Response:
    """`POST .../debug/cancel`: cancel the session's running runs (409 when none runs)."""
    host, sid = await _target(request)
    n = host.cancel_runs(sid)
    if not n:
        raise ApiError(409, f"no run of session {sid!r} is running here", code="not_running")
    return JSONResponse({"session_id": sid, "cancelled": n})


async def reset(request: Request) -> Response:
    """`POST .../debug/reset`: a clean initial state, saved as a new root checkpoint."""
    async with _held(request) as (_, sid, session):
        await session.reset()
        head = session.head
    return JSONResponse({"session_id": sid, "head": head})


_S = "/ui/api/sessions/{session_id}/debug"

DEBUG_ROUTES: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
    (f"{_S}/tree", tree, ["GET"]),
    (f"{_S}/checkpoints/{{checkpoint_id}}", checkpoint_detail, ["GET"]),
    (f"{_S}/checkpoints/{{checkpoint_id}}/fork", fork, ["POST"]),
    (f"{_S}/resume", resume, ["POST"]),
    (f"{_S}/cancel", cancel, ["POST"]),
    (f"{_S}/reset", reset, ["POST"]),
]
