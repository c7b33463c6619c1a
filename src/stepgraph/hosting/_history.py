"""The dev UI's view of what the store holds: every session, and every run replayed
from its checkpoints' traces (`Checkpoint.trace`) when the live stream is gone.

* `session_list(host, viewer)`: the sessions of `GET /ui/api/sessions`. Those the
  server opened come from its log; an admin also sees every session of the store
  (`stepgraph.stores.SessionLister`), scripts' and other processes' included.
* `GET /ui/api/sessions/{id}/debug/runs`: the session's runs, oldest first, each
  with its checkpoints (one per save: its kind, superstep, wall time, handler
  timings) and the events they recorded (outputs, requests, custom events, data
  included). A save outside runs (`update_state`'s `edit`, `restore`, `reset`,
  `create_checkpoint`) is an entry of its own with that `kind`; one saved without
  a trace (an older stepgraph) is `kind: "unknown"`, `traced: false`.
"""

from __future__ import annotations

import contextlib
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import stepgraph as sg
from stepgraph.stores import session_lister

from ._auth import Principal, check_session, principal_of
from ._digests import Digest
from ._errors import ApiError
from ._host import Host
from ._http import digests_of, host_of

__all__ = ["HISTORY_ROUTES", "session_list"]

_SESSIONS = 200
_CHECKPOINTS = 500


async def session_list(host: Host, viewer: Principal) -> list[dict[str, Any]]:
    """Sessions `viewer` may see, newest activity first (see the module docstring)."""
    logged = host.log.sessions(owner=None if viewer.is_admin else viewer.identity)
    lister = session_lister(host.store) if viewer.is_admin else None
    if lister is None:
        return [{**s, "busy": host.is_busy(s["id"])} for s in logged]
    by_id = {s["id"]: s for s in logged}
    out: list[dict[str, Any]] = []
    for info in await lister.list_sessions(limit=_SESSIONS):
        known = by_id.pop(info.session_id, None)
        entry = known or {"id": info.session_id, "origin": "store", "label": ""}
        out.append(
            {
                **entry,
                "updated_at": info.created_at.isoformat(),
                "head": info.id,
                "superstep": info.superstep,
            }
        )
    out.extend(by_id.values())  # opened here, nothing saved yet
    for s in out:
        s["busy"] = host.is_busy(s["id"])
    return out


def _handlers(trace: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    given: Any = trace.get("handlers")
    for row in cast(list[Any], given) if isinstance(given, list) else []:
        if isinstance(row, list) and len(cast(list[Any], row)) >= 3:
            r = cast(list[Any], row)
            item = r[3] if len(r) > 3 else None
            rows.append({"executor_id": r[0], "start_us": r[1], "us": r[2], "item": item})
    return rows


def _step(digest: Digest) -> dict[str, Any]:
    trace: dict[str, Any] = dict(digest.trace or {})
    events = trace.get("events")
    info = digest.info
    return {
        "checkpoint_id": info.id,
        "parent_id": info.parent_id,
        "superstep": info.superstep,
        "created_at": info.created_at.isoformat(),
        "status": digest.status,
        "kind": trace.get("kind", "unknown"),
        "us": trace.get("us"),
        "handlers": _handlers(trace),
        "events": events if isinstance(events, list) else [],
    }


async def runs(request: Request) -> Response:
    """`GET /ui/api/sessions/{session_id}/debug/runs`: runs replayed from checkpoints."""
    host = host_of(request)
    sid = str(request.path_params["session_id"])
    if "\x00" in sid or len(sid) > 200:
        raise ApiError(404, f"no session with id {sid[:200]!r}", code="session_not_found")
    await check_session(host, sid, principal_of(request))
    infos = await host.store.list(sid, limit=_CHECKPOINTS + 1)
    digests = digests_of(request)
    found: list[dict[str, Any]] = []
    by_run: dict[str, dict[str, Any]] = {}
    for info in reversed(infos[:_CHECKPOINTS]):  # oldest first
        with contextlib.suppress(sg.CheckpointNotFoundError):  # pruned meanwhile
            digest = await digests.of(host.store, info)
            step = _step(digest)
            rid = (digest.trace or {}).get("run")
            key = rid if isinstance(rid, str) else f"{step['kind']}:{info.id}"
            run = by_run.get(key)
            if run is None:
                run = by_run[key] = {
                    "run": rid if isinstance(rid, str) else None,
                    "kind": "run" if isinstance(rid, str) else step["kind"],
                    "traced": digest.trace is not None,
                    "started_at": step["created_at"],
                    "checkpoints": [],
                }
                found.append(run)
            run["checkpoints"].append(step)
    for run in found:
        last = run["checkpoints"][-1]
        run["ended_at"] = last["created_at"]
        run["status"] = last["status"]
        run["events"] = [e for step in run["checkpoints"] for e in step["events"]]
    return JSONResponse(
        {
            "object": "list",
            "session_id": sid,
            "truncated": len(infos) > _CHECKPOINTS,
            "data": found,
        }
    )


HISTORY_ROUTES = [("/ui/api/sessions/{session_id}/debug/runs", runs, ["GET"])]
