"""Turning workflow values, events and types into JSON and short text for the terminal."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import re
from collections.abc import Mapping
from typing import Any

import stepgraph as sg

__all__ = [
    "event_fields",
    "event_json",
    "jsonable",
    "request_json",
    "show",
    "type_hint",
    "type_name",
]

_MAX_DEPTH = 20
_BARE = re.compile(r"[\w.:/@+-]+")  # shown without quotes, unless it reads as a JSON literal
_LITERAL = re.compile(r"true|false|null|-?\d[\d.eE+-]*")


def jsonable(value: object, depth: int = 0) -> Any:
    """A JSON-ready rendering of any value (dataclasses, pydantic models, enums, ...)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
        )
    if depth > _MAX_DEPTH:
        return "..."
    if isinstance(value, enum.Enum):
        return jsonable(value.value, depth + 1)
    if isinstance(value, Mapping):
        items: Mapping[object, object] = value  # pyright: ignore[reportUnknownVariableType]
        return {str(k): jsonable(v, depth + 1) for k, v in items.items()}
    if isinstance(value, list | tuple | set | frozenset):
        seq: list[object] = list(value)  # pyright: ignore[reportUnknownArgumentType]
        if isinstance(value, set | frozenset):
            seq.sort(key=repr)
        return [jsonable(v, depth + 1) for v in seq]
    if isinstance(value, type):
        return type_name(value)
    if dataclasses.is_dataclass(value):
        return {
            f.name: jsonable(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        }
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model
        try:
            return dump(mode="json")
        except Exception:  # fall back to repr below
            pass
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, BaseException):
        text = str(value)
        return f"{type(value).__name__}: {text}" if text else type(value).__name__
    return repr(value)


def type_name(t: object) -> str:
    """`Verdict`, `list[int]`, `str | None`: a short name for an annotation."""
    if isinstance(t, type):
        return t.__qualname__
    return str(t).replace("typing.", "")


def type_hint(t: object) -> str:
    """What an answer of type `t` looks like: fields of a dataclass or model, enum values."""
    name = type_name(t)
    model_fields: object = getattr(t, "model_fields", None)
    if isinstance(t, type) and issubclass(t, enum.Enum):
        members: list[enum.Enum] = list(t)
        return f"{name}: " + " | ".join(json.dumps(jsonable(m)) for m in members)
    if isinstance(t, type) and dataclasses.is_dataclass(t):
        parts = [f"{f.name}: {_annotation(f.type)}" for f in dataclasses.fields(t)]
        return f"{name} {{{', '.join(parts)}}}"
    if isinstance(model_fields, Mapping):
        spec: Mapping[str, object] = model_fields  # pyright: ignore[reportUnknownVariableType]
        parts = [f"{k}: {_annotation(getattr(v, 'annotation', None))}" for k, v in spec.items()]
        return f"{name} {{{', '.join(parts)}}}"
    return name


def _annotation(t: object) -> str:
    return t if isinstance(t, str) else type_name(t)


def event_fields(event: sg.Event) -> dict[str, object]:
    """The fields of an event (any frozen dataclass subclass of `sg.Event`).

    A field left at a None default (`item` of an executor event outside a map) is omitted.
    """
    if dataclasses.is_dataclass(event):
        out: dict[str, object] = {}
        for f in dataclasses.fields(event):
            value = getattr(event, f.name)
            if value is None and f.default is None:
                continue
            out[f.name] = value
        return out
    return dict(getattr(event, "__dict__", {}))


def request_json(request: sg.Request) -> dict[str, Any]:
    """A pending request as JSON."""
    return {
        "id": request.id,
        "executor_id": request.executor_id,
        "payload": jsonable(request.payload),
        "response_type": type_name(request.response_type),
    }


def event_json(event: sg.Event) -> dict[str, Any]:
    """`{"event": "Output", "executor_id": ..., "value": ...}`: one JSON line per event."""
    out: dict[str, Any] = {"event": type(event).__name__}
    for key, value in event_fields(event).items():
        if isinstance(value, sg.Request):
            out[key] = request_json(value)
        elif isinstance(value, sg.Event):
            out[key] = event_json(value)
        else:
            out[key] = jsonable(value)
    return out


def show(value: object, limit: int | None = None) -> str:
    """Short text for a value: a plain word (an id, a status) as is, anything else as JSON."""
    data = jsonable(value)
    if isinstance(data, str) and _BARE.fullmatch(data) and not _LITERAL.fullmatch(data):
        text = data
    else:
        text = json.dumps(data, ensure_ascii=False, separators=(", ", ": "))
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 1)] + "…"
    return text
