"""Small request helpers shared by the route modules: the host, JSON bodies, query values."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from ._errors import ApiError
from ._host import Host

__all__ = ["MAX_BODY", "host_of", "int_query", "read_json"]

MAX_BODY = 4 * 1024 * 1024
"""Largest request body accepted (bytes)."""


def host_of(request: Request) -> Host:
    """The `Host` of the app serving `request`."""
    host: Host = request.app.state.host
    return host


async def read_json(request: Request, *, required: bool = True) -> Any:
    """The request body as JSON (`{}` for an empty optional body).

    Raises:
        ApiError: 413 for a body over `MAX_BODY`, 400 for one that is not JSON.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise ApiError(413, f"the request body is larger than {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"the request body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        if required:
            raise ApiError(400, "the request body is empty; send a JSON object")
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None


def int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; 400 otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer", param=name) from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}", param=name)
    return value
