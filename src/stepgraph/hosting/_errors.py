"""HTTP errors in OpenAI's JSON shape: `{"error": {"message", "type", "param", "code"}}`.

Every error the server answers with goes through `ApiError`; handlers turn
any other exception into a generic 500 without details, so no traceback or
internal text ever reaches a response body.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

__all__ = ["ApiError", "error_body", "error_response"]

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    503: "server_error",
}


class ApiError(Exception):
    """An error answered to the client with `status` and a clear `message`.

    Args:
        status: the HTTP status code.
        message: what went wrong and what to do, for the client.
        code: a short machine-readable code (OpenAI's `error.code`).
        param: the request field at fault, when there is one.
        headers: extra response headers (`x-should-retry: false` on 409).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object for a status and message."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(exc: ApiError) -> JSONResponse:
    """`exc` as a JSON response; a 409 also says `x-should-retry: false`."""
    headers = dict(exc.headers)
    if exc.status == 409:
        headers.setdefault("x-should-retry", "false")
    return JSONResponse(
        error_body(exc.status, exc.message, code=exc.code, param=exc.param),
        status_code=exc.status,
        headers=headers,
    )
