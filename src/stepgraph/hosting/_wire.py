"""The Responses API wire format: request parsing and validation, items, Response objects.

Parsing is strict about what it uses and lenient about what it ignores:
unknown top-level fields (`temperature`, `tools`, ...) are accepted and
ignored, as the official client may send them; a field we use with the wrong
shape is a 400 that names the field and the expected shape.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, cast

from stepgraph import Request

from ._errors import ApiError
from ._guard import DoubleTexting, check_policy
from ._plain import dumps, to_jsonable

__all__ = [
    "REQUEST_FUNCTION",
    "InputMessage",
    "TurnRequest",
    "function_call_item",
    "message_item",
    "new_id",
    "now",
    "parse_metadata",
    "obj",
    "parse_turn",
    "response_object",
]

REQUEST_FUNCTION = "workflow_request"
"""The function name of `function_call` items that carry workflow requests."""

MAX_ITEMS = 1000
_ROLES = frozenset({"user", "system", "developer", "assistant"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def obj(value: Any) -> dict[str, Any] | None:
    """`value` as a JSON object (string keys), or None when it is not one."""
    if isinstance(value, dict):
        return cast(dict[str, Any], value)
    return None


def _short(value: Any, limit: int = 40) -> str:
    """`repr(value)` cut to `limit` characters, for error messages."""
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "an array"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def new_id(prefix: str) -> str:
    """A fresh id such as `resp_<32 hex digits>`."""
    return f"{prefix}_{os.urandom(16).hex()}"


@dataclass(frozen=True, slots=True)
class InputMessage:
    """A message of the request's input: its role and text."""

    role: str
    text: str


@dataclass(slots=True)
class TurnRequest:
    """A validated `POST /v1/responses` body.

    Attributes:
        model: the `model` field (echoed back).
        messages: the new messages (those after the last assistant message).
        answers: `(call_id, output)` of each `function_call_output` item.
        input_items: the input as stored items, each with an `id`.
        previous_response_id: continue from this response.
        conversation_id: continue this conversation.
        stream: answer with server-sent events.
        metadata: the client's metadata, echoed back.
        stepgraph_events: also stream stepgraph's own events (`stepgraph.event`).
        background: run in the background; the answer is the queued response, polled
            with `GET /v1/responses/{id}`.
        double_texting: what to do when the conversation is running (`reject`,
            `enqueue`, `interrupt`); None: the server's policy.
    """

    model: str | None = None
    messages: list[InputMessage] = field(default_factory=list[InputMessage])
    answers: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    input_items: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    previous_response_id: str | None = None
    conversation_id: str | None = None
    stream: bool = False
    metadata: dict[str, str] = field(default_factory=dict[str, str])
    stepgraph_events: bool = False
    background: bool = False
    double_texting: DoubleTexting | None = None


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name} must be a non-empty string", param=name)
    return value


def _optional_bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"{name} must be true or false", param=name)
    return value


def parse_metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Validate metadata: at most 16 string values, keys up to 64 and values up to 512 chars."""
    if value is None:
        return {}
    items = obj(value)
    if items is None:
        raise ApiError(400, f"{param} must be an object of strings", param=param)
    if len(items) > 16:
        raise ApiError(400, f"{param} may hold at most 16 keys", param=param)
    out: dict[str, str] = {}
    for k, v in items.items():
        if not isinstance(v, str) or len(k) > 64 or len(v) > 512:
            raise ApiError(
                400,
                f"{param}[{_short(k)}] must be a string of at most 512 characters "
                "(keys at most 64)",
                param=param,
            )
        out[k] = v
    return out


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ApiError(400, f"{where}.content must be a string or a list of parts", param="input")
    parts = cast(list[Any], content)
    texts: list[str] = []
    for n, part in enumerate(parts):
        p = obj(part)
        if p is None:
            raise ApiError(400, f"{where}.content[{n}] must be an object", param="input")
        kind, text = p.get("type"), p.get("text")
        if not isinstance(kind, str) or kind not in _TEXT_PARTS:
            raise ApiError(
                400,
                f"{where}.content[{n}] has type {_short(kind)}; this server takes text only "
                "(input_text)",
                param="input",
            )
        if not isinstance(text, str):
            raise ApiError(400, f"{where}.content[{n}].text must be a string", param="input")
        texts.append(text)
    return "".join(texts)


def _parse_items(raw: list[Any], turn: TurnRequest) -> None:
    if len(raw) > MAX_ITEMS:
        raise ApiError(400, f"input may hold at most {MAX_ITEMS} items", param="input")
    messages: list[InputMessage] = []
    for n, item in enumerate(raw):
        where = f"input[{n}]"
        it = obj(item)
        if it is None:
            raise ApiError(400, f"{where} must be an object", param="input")
        kind = it.get("type", "message" if "role" in it else None)
        if kind == "message":
            role = it.get("role")
            if not isinstance(role, str) or role not in _ROLES:
                raise ApiError(
                    400,
                    f"{where}.role must be one of user, system, developer, assistant",
                    param="input",
                )
            text = _text_of(it.get("content"), where)
            if role == "assistant":
                messages.clear()  # only messages after the last reply are new input
            else:
                messages.append(InputMessage(role, text))
            turn.input_items.append(_message_input(role, text))
        elif kind == "function_call_output":
            call_id, output = it.get("call_id"), it.get("output")
            if not isinstance(call_id, str) or not call_id:
                raise ApiError(400, f"{where}.call_id must be a non-empty string", param="input")
            if isinstance(output, list):
                output = _text_of(output, where + ".output")
            if not isinstance(output, str):
                raise ApiError(400, f"{where}.output must be a string", param="input")
            turn.answers.append((call_id, output))
            turn.input_items.append(
                {
                    "type": "function_call_output",
                    "id": new_id("fco"),
                    "call_id": call_id,
                    "output": output,
                    "status": "completed",
                }
            )
        elif kind == "function_call":
            continue  # an echo of our own call item: nothing to do
        else:
            raise ApiError(
                400,
                f"{where} has type {_short(kind)}; this server takes message and "
                "function_call_output items",
                param="input",
            )
    turn.messages = messages


def _message_input(role: str, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": new_id("msg"),
        "role": role,
        "status": "completed",
        "content": [{"type": "input_text", "text": text}],
    }


def parse_turn(body: Any) -> TurnRequest:
    """Validate a `POST /v1/responses` body.

    Raises:
        ApiError: 400 naming the field at fault.
    """
    b = obj(body)
    if b is None:
        raise ApiError(400, "the request body must be a JSON object")
    turn = TurnRequest()
    model = b.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "model must be a string", param="model")
    turn.model = model
    raw = b.get("input")
    if isinstance(raw, str):
        turn.messages = [InputMessage("user", raw)]
        turn.input_items.append(_message_input("user", raw))
    elif isinstance(raw, list):
        _parse_items(raw, turn)  # pyright: ignore[reportUnknownArgumentType]
    elif raw is None:
        raise ApiError(400, "input is required: a string or a list of items", param="input")
    else:
        raise ApiError(400, "input must be a string or a list of items", param="input")
    if turn.answers and turn.messages:
        raise ApiError(
            400,
            "send function_call_output items in a request of their own, without new messages",
            param="input",
        )
    if not turn.answers and not turn.messages:
        raise ApiError(
            400, "input holds no user message and no function_call_output", param="input"
        )
    turn.previous_response_id = _optional_str(b, "previous_response_id")
    conv = b.get("conversation")
    conv_obj = obj(conv)
    if conv_obj is not None:
        conv = conv_obj.get("id")
        if not isinstance(conv, str) or not conv:
            raise ApiError(400, "conversation.id must be a non-empty string", param="conversation")
    elif conv is not None and (not isinstance(conv, str) or not conv):
        raise ApiError(
            400, "conversation must be an id string or an object with an id", param="conversation"
        )
    turn.conversation_id = conv
    if turn.previous_response_id and turn.conversation_id:
        raise ApiError(
            400,
            "previous_response_id and conversation cannot be used together: send one of them",
            param="previous_response_id",
        )
    turn.stream = _optional_bool(b, "stream")
    turn.background = _optional_bool(b, "background")
    if turn.background and turn.stream:
        raise ApiError(
            400,
            "background responses are not streamed here: send background without stream "
            "and poll GET /v1/responses/{id}",
            param="background",
        )
    policy = b.get("double_texting")
    if policy is not None:
        try:
            turn.double_texting = check_policy(policy if isinstance(policy, str) else repr(policy))
        except ValueError as exc:
            raise ApiError(400, str(exc), param="double_texting") from None
    turn.metadata = parse_metadata(b.get("metadata"))
    turn.stepgraph_events = _optional_bool(b, "stepgraph_events")
    return turn


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    """An assistant message output item with one `output_text` part."""
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def function_call_item(item_id: str, request: Request, status: str = "completed") -> dict[str, Any]:
    """A `function_call` output item for a workflow request (call id = request id)."""
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": request.id,
        "name": REQUEST_FUNCTION,
        "arguments": dumps(request.payload),
        "status": status,
    }


def response_object(
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    previous_response_id: str | None,
    conversation_id: str | None,
    metadata: dict[str, str],
    error: dict[str, Any] | None = None,
    workflow: dict[str, Any] | None = None,
    background: bool = False,
) -> dict[str, Any]:
    """A Response object with every field the official client reads."""
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "model": model,
        "output": output,
        "error": error,
        "incomplete_details": None,
        "instructions": None,
        "metadata": metadata,
        "parallel_tool_calls": True,
        "previous_response_id": previous_response_id,
        "conversation": {"id": conversation_id} if conversation_id else None,
        "temperature": None,
        "top_p": None,
        "tool_choice": "auto",
        "tools": [],
        "store": True,
        "background": background,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "usage": None,
        "user": None,
    }
    if workflow is not None:
        body["stepgraph"] = to_jsonable(workflow)
    return body


def now() -> int:
    """Unix seconds."""
    return int(time.time())
