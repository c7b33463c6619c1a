"""Starting a turn on a session: where it continues from, input conversion, answers.

A `Ticket` is what a `POST /v1/responses` knows before its run starts (its
response id, session, checkpoint, model); `begin` makes one (404 for unknown
ids) and `open_turn` starts its run once the request holds the session,
giving a `Turn`. A response or conversation the requester may not see
(`Principal.may_see`) is a 404, word for word as one that does not exist.

Conversions use only public behaviour: `Session.run` raises `RoutingError`
at the call when the start executor takes no such input, so the candidates
(text, a list of `ChatMessage`, the last `ChatMessage`) are tried in order;
`Session.respond` converts JSON-like answers to each request's declared type
and raises `RequestError` naming that type.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import stepgraph as sg
from stepgraph.agents import ChatMessage, TextContent

from ._auth import ANONYMOUS, Principal
from ._errors import ApiError
from ._host import Host, RunRecord
from ._http import check_json, loads
from ._log import ResponseRecord
from ._plain import output_text
from ._wire import (
    InputMessage,
    TurnRequest,
    function_call_item,
    message_item,
    new_id,
    now,
    obj,
    response_object,
)

__all__ = [
    "STATUS",
    "Ticket",
    "Turn",
    "answer_value",
    "begin",
    "open_turn",
    "plain_body",
    "refresh",
    "start_answers",
    "start_input",
    "start_messages",
]

logger = logging.getLogger("stepgraph.hosting")

STATUS = {
    "idle": "completed",
    "idle_with_pending_requests": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "paused": "incomplete",  # stopped at a breakpoint: resumable, not completed
}
"""The Response status of a run's final workflow status (anything else: `incomplete`)."""

_PENDING = ("queued", "in_progress")


@dataclass(slots=True)
class Ticket:
    """A response about to run: what is known before its run starts.

    Attributes:
        req: the validated request.
        session_id: the session it runs in.
        checkpoint: the checkpoint it continues from (None: a clean session).
        prior_head: for a conversation, its head response the turn continues from.
        model: the name of the workflow it runs (`Host.models`).
        principal: who sent it (its response, session and run are theirs).
        response_id: its id.
        created_at: Unix seconds.
    """

    req: TurnRequest
    session_id: str
    checkpoint: str | None
    prior_head: str | None
    model: str
    principal: Principal = ANONYMOUS
    response_id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=now)

    def body(
        self,
        status: str,
        output: list[dict[str, Any]],
        *,
        error: str | None = None,
        workflow_status: str | None = None,
    ) -> dict[str, Any]:
        """The Response object in a given state."""
        return response_object(
            response_id=self.response_id,
            created_at=self.created_at,
            model=self.req.model or self.model,
            status=status,
            output=output,
            previous_response_id=self.req.previous_response_id,
            conversation_id=self.req.conversation_id,
            metadata=self.req.metadata,
            error=None if error is None else {"code": "server_error", "message": error},
            workflow={
                "session_id": self.session_id,
                "status": workflow_status or status,
                "model": self.model,
            },
            background=self.req.background,
        )

    def record_unrun(self, host: Host, body: dict[str, Any]) -> None:
        """Record a body of a response that has not run (queued, in progress, or ended
        before its run started): it continues from where it would have started and
        is not (yet) one of its conversation's responses.
        """
        host.log.put_response(
            ResponseRecord(
                self.response_id,
                self.session_id,
                None,
                self.checkpoint,
                body,
                self.req.input_items,
                self.principal.identity,
            ),
            origin="responses",
            label=_label(self.req),
            prior_head=None,
        )


def _label(req: TurnRequest) -> str:
    return req.messages[0].text if req.messages else "answers"


@dataclass(slots=True)
class Turn:
    """A response whose run has started (the request holds its session)."""

    host: Host
    ticket: Ticket
    session: sg.Session[Any]
    run: sg.Run
    rec: RunRecord

    @property
    def req(self) -> TurnRequest:
        """The validated request."""
        return self.ticket.req

    @property
    def response_id(self) -> str:
        """The response's id."""
        return self.ticket.response_id

    def body(self, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        """The Response object with `status` and `output` (and the run's error, if failed)."""
        error = (self.rec.error or "the run failed") if status == "failed" else None
        return self.ticket.body(status, output, error=error, workflow_status=self.rec.status)

    def record(self, body: dict[str, Any]) -> None:
        """Record the response as it ended and move its conversation's head to it."""
        t = self.ticket
        moved = self.host.log.put_response(
            ResponseRecord(
                id=t.response_id,
                session_id=t.session_id,
                conversation_id=t.req.conversation_id,
                checkpoint_id=self.rec.checkpoint_id,
                body=body,
                input_items=t.req.input_items,
                owner=t.principal.identity,
            ),
            origin="responses",
            label=_label(t.req),
            prior_head=t.prior_head,
        )
        if t.req.conversation_id is not None and not moved:
            logger.warning(
                "response %s is not recorded in conversation %s: another request moved "
                "the conversation on meanwhile (this replica lost its request lock)",
                t.response_id,
                t.req.conversation_id,
            )


async def begin(host: Host, req: TurnRequest, principal: Principal = ANONYMOUS) -> Ticket:
    """The ticket of `principal`'s request: its session, checkpoint, conversation head
    and model (404 for ids unknown or not theirs, 409 for a response still running).
    """
    if req.previous_response_id is not None:
        prev = host.log.get_response(req.previous_response_id)
        if prev is None or not principal.may_see(prev.owner):
            raise ApiError(
                404,
                f"no response with id {req.previous_response_id!r}",
                code="response_not_found",
                param="previous_response_id",
            )
        if prev.body.get("status") in _PENDING:
            raise ApiError(
                409,
                f"response {prev.id!r} has not finished; continue it once it has "
                f"(GET /v1/responses/{prev.id})",
                code="response_in_progress",
                param="previous_response_id",
            )
        model = host.model_of(req.model, _model_of(prev))
        return Ticket(req, prev.session_id, prev.checkpoint_id, None, model, principal)
    if req.conversation_id is not None:
        ticket = Ticket(req, "", None, None, "", principal)
        await refresh(host, ticket)
        return ticket
    return Ticket(req, new_id("sess"), None, None, host.model_of(req.model), principal)


async def refresh(host: Host, ticket: Ticket) -> None:
    """For a conversation, read where it stands now (its head moves): call it again
    holding the session, after waiting in line or with other replicas.
    """
    req = ticket.req
    if req.conversation_id is None:
        return
    conv = host.log.get_conversation(req.conversation_id)
    if conv is None or not ticket.principal.may_see(conv.owner):
        raise ApiError(
            404,
            f"no conversation with id {req.conversation_id!r}; create it with "
            "POST /v1/conversations",
            code="conversation_not_found",
            param="conversation",
        )
    head = None if conv.head_response is None else host.log.get_response(conv.head_response)
    ticket.model = host.model_of(req.model, None if head is None else _model_of(head))
    ticket.session_id, ticket.checkpoint = conv.session_id, conv.head_checkpoint
    ticket.prior_head = conv.head_response


def _model_of(rec: ResponseRecord) -> str | None:
    """The model a recorded response ran (None for records older than models)."""
    extra = obj(rec.body.get("stepgraph"))
    model = None if extra is None else extra.get("model")
    return model if isinstance(model, str) else None


async def open_turn(host: Host, ticket: Ticket) -> Turn:
    """Move the session to the ticket's checkpoint and start its run (the caller holds
    the session and its lock).
    """
    req = ticket.req
    session = await host.session_at(ticket.session_id, ticket.checkpoint, model=ticket.model)
    if req.answers:
        run, kind = start_answers(session, req.answers), "respond"
    else:
        run, kind = start_messages(session, req.messages), "run"
    rec = host.new_run(ticket.session_id, kind, "responses", ticket.principal.identity)
    rec.response_id = ticket.response_id
    return Turn(host, ticket, session, run, rec)


def plain_body(turn: Turn) -> dict[str, Any]:
    """The final Response object of a turn that was driven to its end."""
    rec = turn.rec
    output = [message_item(new_id("msg"), output_text(v)) for v in rec.outputs]
    output += [function_call_item(new_id("fc"), r) for r in rec.requests]
    return turn.body(STATUS.get(rec.status, "incomplete"), output)


def answer_value(output: str, response_type: Any) -> Any:
    """A `function_call_output` string as the value handed to `respond`.

    A request that expects a string gets the text as it is; any other gets
    the text parsed as JSON (or the text itself when it is not JSON), which
    `respond` then converts to the declared type. JSON that no request body
    could hold (too deep, a lone surrogate, ...) is a 400, as in a body.
    """
    if response_type is str:
        return output
    try:
        value = loads(output, "a function_call_output's JSON", "input")
    except ValueError:
        return output
    check_json(value, "a function_call_output's JSON", "input")
    return value


def start_answers(session: sg.Session[Any], answers: list[tuple[str, str]]) -> sg.Run:
    """`session.respond(...)` for `(call_id, output)` pairs; 400 for a wrong id or answer."""
    pending = {r.id: r for r in session.pending_requests}
    values: dict[str, Any] = {}
    for call_id, output in answers:
        request = pending.get(call_id)
        if request is None:
            waiting = ", ".join(pending) or "none"
            raise ApiError(
                400,
                f"no pending request has call_id {call_id!r} in this conversation "
                f"(pending: {waiting})",
                code="unknown_call_id",
                param="input",
            )
        values[call_id] = answer_value(output, request.response_type)
    try:
        return session.respond(values)
    except sg.RequestError as exc:
        raise ApiError(400, str(exc), code="invalid_answer", param="input") from None
    except sg.NotIdleError as exc:
        raise ApiError(409, str(exc), code="session_not_idle") from None


def _chat(m: InputMessage) -> ChatMessage:
    role = "system" if m.role in ("system", "developer") else "user"
    return ChatMessage(role, (TextContent(m.text),))


def start_messages(session: sg.Session[Any], messages: list[InputMessage]) -> sg.Run:
    """`session.run(...)` with the messages as the start executor takes them."""
    text = "\n".join(m.text for m in messages)
    chats = [_chat(m) for m in messages]
    return start_input(session, [text, chats, chats[-1]])


def start_input(session: sg.Session[Any], candidates: list[Any]) -> sg.Run:
    """`session.run(x)` with the first candidate the start executor accepts; 400 if none."""
    for value in candidates:
        try:
            return session.run(value)
        except sg.RoutingError:
            continue
        except sg.NotIdleError as exc:
            raise ApiError(409, str(exc), code="session_not_idle") from None
    start = session.workflow.describe()
    accepts = next((e["accepts"] for e in start["executors"] if e["id"] == start["start"]), ["?"])
    raise ApiError(
        400,
        f"the workflow's start executor {start['start']!r} takes {', '.join(accepts)}; "
        "this input cannot be converted to it",
        code="unsupported_input",
        param="input",
    )
