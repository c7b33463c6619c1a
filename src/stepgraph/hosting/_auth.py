"""Who is asking: `Principal`, the authentication hook and the middleware that calls it.

An app has at most one way to authenticate: a hook (`create_app(auth=...)`,
`stepgraph serve --auth module:function`) that takes a request's headers and
returns a `Principal` or None, or an API key (`--api-key`), which is the
single-tenant form of the same thing: a hook that knows one key and returns
`KEY_HOLDER` for it. Without either, every request is `ANONYMOUS`.

The middleware is pure ASGI (streaming responses pass through untouched). It
leaves `/healthz`, `/openapi.json` and the dev UI's page and static files
open, answers 401 in OpenAI's error shape when the hook returns None, and
puts the principal in the request scope, where `principal_of` finds it.
"""

from __future__ import annotations

import hmac
import importlib
import inspect
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from stepgraph.loading import import_file

from ._errors import ApiError, error_body

if TYPE_CHECKING:
    from ._host import Host

__all__ = [
    "ADMIN",
    "ANONYMOUS",
    "KEY_HOLDER",
    "Authenticate",
    "Authentication",
    "Principal",
    "api_key_auth",
    "check_exposure",
    "load_auth",
    "principal_of",
]

ADMIN = "admin"
"""The role that sees and may act on every record, whoever created it."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from, as the authentication hook found.

    Every conversation, response, session and run the server creates records the
    `identity` that created it; other identities get 404 for it. A principal with the
    role `"admin"` sees everything.

    Attributes:
        identity: a stable name of the caller (a user id, a key's name).
        roles: what the caller is; `"admin"` is the one the server knows.
    """

    identity: str
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.identity, str) or not self.identity:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError("a Principal's identity must be a non-empty string")
        object.__setattr__(self, "roles", tuple(self.roles))

    @property
    def is_admin(self) -> bool:
        """Whether the principal has the role `admin`."""
        return ADMIN in self.roles

    def may_see(self, owner: str | None) -> bool:
        """Whether a record created by `owner` is visible to this principal.

        Records from before ownership was kept (`owner` None) are the admins'.
        """
        return self.is_admin or (owner is not None and owner == self.identity)


ANONYMOUS = Principal("anonymous", (ADMIN,))
"""Every request of an app without authentication: one identity that sees everything,
as before ownership existed."""

KEY_HOLDER = Principal("api-key", (ADMIN,))
"""The holder of the API key (`--api-key`): the one tenant of such a server."""

Authenticate = Callable[[Mapping[str, str]], Principal | Awaitable[Principal | None] | None]
"""An authentication hook: a request's headers (case-insensitive) to a principal, or
None for a request to refuse (401). Sync or async."""

_SCOPE_KEY = "stepgraph.principal"
_PUBLIC = ("/healthz", "/openapi.json", "/ui", "/ui/", "/favicon.ico")


def api_key_auth(key: str) -> Authenticate:
    """The hook of `--api-key`: `KEY_HOLDER` for `Authorization: Bearer <key>`, else None."""
    expected = f"Bearer {key}".encode()

    def authenticate(headers: Mapping[str, str]) -> Principal | None:
        given = headers.get("authorization", "").encode("utf-8", "surrogateescape")
        return KEY_HOLDER if hmac.compare_digest(given, expected) else None

    return authenticate


def principal_of(request: Request) -> Principal:
    """Who sent `request` (`ANONYMOUS` when the app has no authentication)."""
    found = request.scope.get(_SCOPE_KEY)
    return found if isinstance(found, Principal) else ANONYMOUS


class Authentication:
    """ASGI middleware: calls the hook for every request but the public ones (see the
    module docstring).
    """

    def __init__(self, app: ASGIApp, authenticate: Authenticate) -> None:
        self.app = app
        self._authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _public(scope["path"]):
            await self.app(scope, receive, send)
            return
        found = self._authenticate(Headers(scope=scope))
        if inspect.isawaitable(found):
            found = await found
        if found is not None and not isinstance(found, Principal):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"the auth hook returned {type(found).__name__}, not a Principal")
        if found is None:
            body = error_body(
                401,
                "missing or invalid credentials: send Authorization: Bearer <token>",
                code="invalid_api_key",
            )
            response = JSONResponse(body, status_code=401, headers={"www-authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        scope[_SCOPE_KEY] = found
        await self.app(scope, receive, send)


def _public(path: str) -> bool:
    return path in _PUBLIC or path.startswith("/ui/static/")


def load_auth(target: str) -> Authenticate:
    """The hook `target` names: `package.module:function` or `path/to/file.py:function`.

    Raises:
        ValueError: the target is malformed, cannot be imported or is not callable.
    """
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise ValueError(f"auth {target!r}: expected module:function or path/to/file.py:function")
    try:
        if where.endswith(".py") or Path(where).is_file():
            module = import_file(where)
        else:
            module = importlib.import_module(where)
    except (ImportError, FileNotFoundError) as exc:
        raise ValueError(f"auth {target!r}: cannot import {where}: {exc}") from None
    hook: Any = getattr(module, name, None)
    if not callable(hook):
        raise ValueError(f"auth {target!r}: {where} has no function {name!r}")
    return cast(Authenticate, hook)


def is_loopback(host: str) -> bool:
    """Whether binding `host` only listens on this machine (`localhost`, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_exposure(host: str, *, secured: bool, insecure: bool) -> None:
    """Refuse to serve a non-loopback `host` without authentication unless `insecure`.

    Raises:
        ValueError: naming `auth=`, `api_key=` and `insecure=True`.
    """
    if secured or insecure or is_loopback(host):
        return
    raise ValueError(
        f"refusing to serve on {host} without authentication: pass auth= (a hook) or "
        "api_key=, or insecure=True to serve every client as the admin anyway"
    )


async def check_session(host: Host, session_id: str, viewer: Principal) -> None:
    """404 unless the session exists and `viewer` may see it (admins: any session in
    the log or the store; others: the sessions they opened).
    """
    if viewer.is_admin:
        known = host.log.has_session(session_id) or await host.store.list(session_id, limit=1)
    else:
        known = host.log.session_owner(session_id) == viewer.identity
    if not known:
        raise ApiError(404, f"no session with id {session_id!r}", code="session_not_found")
