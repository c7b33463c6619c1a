r"""Small request helpers shared by the route modules: the host, JSON bodies, query values.

Every JSON body is checked whole before a route looks at it, so no cheap
malformed request can fail deep inside a turn (after it ran) or in the
hosting log: nesting deeper than `MAX_DEPTH`, an integer literal longer than
Python's 4,300 digits, `NaN`/`Infinity` (not JSON) and strings that are not
valid Unicode (a lone UTF-16 surrogate such as `"\ud800"`, which no UTF-8
database or response can hold) are each a 400 naming the field.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn, cast

from starlette.requests import Request

from ._digests import Digests
from ._errors import ApiError
from ._host import Host

__all__ = ["MAX_BODY", "MAX_DEPTH", "check_json", "host_of", "int_query", "loads", "read_json"]

MAX_BODY = 4 * 1024 * 1024
"""Largest request body accepted (bytes)."""

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a request body (or an answer's JSON)."""


def host_of(request: Request) -> Host:
    """The `Host` of the app serving `request`."""
    host: Host = request.app.state.host
    return host


def digests_of(request: Request) -> Digests:
    """The checkpoint digests of the app serving `request` (`_digests`)."""
    digests: Digests = request.app.state.digests
    return digests


async def read_json(request: Request) -> Any:
    """The request body as checked JSON.

    Raises:
        ApiError: 413 for a body over `MAX_BODY`, 400 for one that is empty, is not
            JSON or fails `check_json`.
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
        raise ApiError(400, "the request body is empty; send a JSON object")
    try:
        value = loads(raw, "the request body")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    check_json(value, "the request body")
    return value


def _constant(name: str) -> NoReturn:
    raise ApiError(400, f"{name} is not valid JSON; send numbers as finite numbers")


def loads(text: str | bytes, what: str, param: str | None = None) -> Any:
    """`json.loads` that answers 400 (not a 500) for input Python's parser refuses to
    hold: nesting past the interpreter's recursion limit, integer literals over 4,300
    digits, `NaN` and `Infinity`. Syntax errors still raise `json.JSONDecodeError`
    (and undecodable bytes `UnicodeDecodeError`), for the caller to word.
    """
    try:
        return json.loads(text, parse_constant=_constant)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except RecursionError:
        raise ApiError(400, f"{what} nests deeper than {MAX_DEPTH} levels", param=param) from None
    except ValueError:  # int("9" * 5000): the interpreter's integer length limit
        raise ApiError(
            400, f"{what} holds an integer with more than 4300 digits", param=param
        ) from None


def check_json(value: Any, what: str, param: str | None = None) -> None:
    """Refuse (400) JSON data nested deeper than `MAX_DEPTH` or holding a string
    (key or value) that is not valid Unicode. Iterative: any input costs O(size).

    For an object at the top, the error's `param` names the top-level field at fault.
    """
    stack: list[tuple[Any, int, str | None]] = [(value, 0, param)]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, str):
            _check_text(item, what, where)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise ApiError(400, f"{what} nests deeper than {MAX_DEPTH} levels", param=where)
            if isinstance(item, list):
                stack.extend((v, depth + 1, where) for v in cast(list[Any], item))
                continue
            for k, v in cast(dict[str, Any], item).items():
                field = k if depth == 0 and param is None else where
                _check_text(k, what, field)
                stack.append((v, depth + 1, field))


def _check_text(text: str, what: str, param: str | None) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.start + 1]
        raise ApiError(
            400,
            f"{what} holds a string that is not valid Unicode (a lone surrogate "
            f"\\u{ord(bad):04x}{f' in {param}' if param else ''}); send UTF-8 text",
            param=param,
        ) from None


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
