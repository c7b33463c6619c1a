"""Background responses: `background: true`, polled with `GET /v1/responses/{id}` and
stopped with `POST /v1/responses/{id}/cancel`, as the Responses API defines them.

`submit` answers at once with the response `queued` (or the 409 of a busy
conversation under the `reject` policy), having recorded that body in the
hosting log; a task the app's lifespan owns then waits for the session (the
double-texting line), records the response `in_progress`, runs it and
records it `completed`, `failed` or `cancelled` with its output. Because
every state is in the log, any replica sharing it answers the polls.

A cancel reaches the job on the replica running it: a queued job leaves the
line (it never runs; a continuation of it starts where it would have), a
running one is cancelled at once (its run ends `CANCELLED` at its last
committed superstep); the cancel answers the final response. Cancelling a
response that has finished answers it as it is; one that was not created in
the background is a 400. With several replicas, a cancel sent to a replica
that is not running the response is a 409 (`response_on_another_replica`):
send it again until it reaches the one that is.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._auth import principal_of
from ._errors import ApiError
from ._guard import DoubleTexting, Withdrawn
from ._host import Host
from ._http import host_of
from ._jobs import Job
from ._turns import Ticket, open_turn, plain_body, refresh

__all__ = ["cancel_response", "submit"]

logger = logging.getLogger("stepgraph.hosting")

_PENDING = ("queued", "in_progress")


async def submit(host: Host, ticket: Ticket, policy: DoubleTexting) -> Response:
    """Accept a background request: 409 at once when its session is busy and `policy`
    is `reject`; else record it `queued`, start its job and answer that body.
    """
    session_id = ticket.session_id
    waiting = host.enter(session_id, policy=policy)
    job = Job(ticket.response_id, session_id, waiting)
    try:
        host.jobs.add(job)
        host.spawn(lambda: _work(host, ticket, job))
    except BaseException:
        host.jobs.finish(job)
        if waiting is None:
            await host.release(session_id)
        else:
            host.withdraw(session_id, waiting)
        raise
    body = ticket.body("queued", [])
    ticket.record_unrun(host, body)
    return JSONResponse(body)


async def _work(host: Host, ticket: Ticket, job: Job) -> None:
    try:
        if job.turn is not None:
            try:
                await host.wait_turn(ticket.session_id, job.turn)
            except Withdrawn:
                _ended_unrun(host, ticket, job)
                return
            job.turn = None
        try:
            await _run(host, ticket, job)
        finally:
            await host.release(ticket.session_id)
    finally:
        host.jobs.finish(job)


def _ended_unrun(host: Host, ticket: Ticket, job: Job) -> None:
    if job.cancel_requested:
        ticket.record_unrun(host, ticket.body("cancelled", []))
    else:
        error = "the server shut down before this response ran; send it again"
        ticket.record_unrun(host, ticket.body("failed", [], error=error))


async def _run(host: Host, ticket: Ticket, job: Job) -> None:
    """Run the job's turn (it holds the session) and record how it ended."""
    if job.cancel_requested:
        _ended_unrun(host, ticket, job)
        return
    try:
        await host.lock(ticket.session_id)
        await refresh(host, ticket)  # a conversation's head, as of now
        turn = await open_turn(host, ticket)
    except ApiError as exc:
        ticket.record_unrun(host, ticket.body("failed", [], error=exc.message))
        return
    job.run = turn.run
    if job.cancel_requested:
        turn.run.cancel()  # cancelled while it was being opened
    ticket.record_unrun(host, turn.body("in_progress", []))
    try:
        async for _ in host.drive(turn.session, turn.run, turn.rec):
            pass
    except ApiError as exc:  # another process holds the session
        turn.rec.status, turn.rec.error = "failed", exc.message
    turn.record(plain_body(turn))


async def cancel_response(request: Request) -> Response:
    """`POST /v1/responses/{response_id}/cancel` (see the module docstring)."""
    host = host_of(request)
    rid = str(request.path_params["response_id"])
    rec = host.log.get_response(rid)
    if rec is None or not principal_of(request).may_see(rec.owner):
        raise ApiError(404, f"no response with id {rid!r}", code="response_not_found")
    job = host.jobs.get(rid)
    if job is None:
        if rec.body.get("background") is not True:
            raise ApiError(
                400,
                "only responses created with background: true can be cancelled",
                code="not_background",
            )
        if rec.body.get("status") in _PENDING:
            raise ApiError(
                409,
                f"response {rid!r} is running on another replica (or was, on one that "
                "stopped); send the cancel again",
                code="response_on_another_replica",
            )
        return JSONResponse(rec.body)
    job.cancel_requested = True
    left_line = job.turn is not None and host.withdraw(job.session_id, job.turn)
    if not left_line and job.run is not None:
        job.run.cancel()
    await job.ended.wait()
    final = host.log.get_response(rid)
    return JSONResponse((final or rec).body)
