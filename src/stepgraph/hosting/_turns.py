"""Starting a turn on a session: input conversion and answers to pending requests.

Conversions use only public behaviour: `Session.run` raises `RoutingError`
at the call when the start executor takes no such input, so the candidates
(text, a list of `ChatMessage`, the last `ChatMessage`) are tried in order;
`Session.respond` converts JSON-like answers to each request's declared type
and raises `RequestError` naming that type.
"""

from __future__ import annotations

from typing import Any

import stepgraph as sg
from stepgraph.agents import ChatMessage, TextContent

from ._errors import ApiError
from ._http import check_json, loads
from ._wire import InputMessage

__all__ = ["answer_value", "start_answers", "start_input", "start_messages"]


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
