"""An authentication hook for the hosting tests: HMAC-signed bearer tokens (stdlib only).

A token is `identity.roles.signature`, roles comma-separated, the signature an
HMAC-SHA256 of `identity.roles` under `SECRET`, URL-safe base64. Imported by
path from server subprocesses (`--auth tests/hosting/authhook.py:authenticate`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from stepgraph.hosting import Principal

SECRET = b"stepgraph-tests-only"


def _sign(payload: str) -> str:
    digest = hmac.new(SECRET, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def token(identity: str, *roles: str) -> str:
    """A signed token for `identity` with `roles`."""
    payload = f"{identity}.{','.join(roles)}"
    return f"{payload}.{_sign(payload)}"


def authenticate(headers: Mapping[str, str]) -> Principal | None:
    """The principal of a valid `Authorization: Bearer <token>`, else None."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    payload, _, signature = given.rpartition(".")
    if scheme.lower() != "bearer" or not payload:
        return None
    if not hmac.compare_digest(signature, _sign(payload)):
        return None
    identity, _, roles = payload.partition(".")
    return Principal(identity, tuple(r for r in roles.split(",") if r))


async def authenticate_async(headers: Mapping[str, str]) -> Principal | None:
    """`authenticate`, as a coroutine function (hooks may be either)."""
    return authenticate(headers)
