"""Leases for `PostgresCheckpointStore`: one runner per session among processes and hosts.

Implements the `LeaseStore` rules of `stepgraph._lease` on `stepgraph_leases`,
with expiry judged by the server's clock. `acquire(wait=...)` sleeps on
LISTEN/NOTIFY: `release` notifies `CHANNEL` with the session's wake key.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, LiteralString, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from .._errors import ConcurrentRunError
from .._lease import Lease, LeaseLostError, check_ttl, held_message, pause
from ._postgres_sql import CHANNEL

__all__ = ["PostgresLeases", "fence"]

_T = TypeVar("_T")
_Conn = AsyncConnection[TupleRow]


class PostgresLeases:
    """The lease methods; the store provides its statements, clock, schema and `_run`/`_rows`."""

    _sql: dict[str, LiteralString]
    _clock: Callable[[], float]
    _schema: str

    async def _rows(
        self, doing: str, query: LiteralString, params: Any, *, binary: bool = False
    ) -> list[TupleRow]:
        raise NotImplementedError

    async def _run(self, doing: str, fn: Callable[[_Conn], Awaitable[_T]]) -> _T:
        raise NotImplementedError

    async def acquire(
        self, session_id: str, owner: str, ttl: float, *, wait: float | None = None
    ) -> Lease:
        """Take the session's lease for `ttl` seconds (rules in `stepgraph._lease`).

        Raises `ConcurrentRunError` while another owner holds it; with `wait`, only
        after trying that long, woken by the holder's release (LISTEN/NOTIFY) or expiry.
        A holder that was a process of this host and is gone (a crash) is taken over.
        """
        ttl = check_ttl(ttl)
        deadline = None if wait is None else self._clock() + max(wait, 0.0)
        key = self._wake_key(session_id)

        async def attempt(conn: _Conn) -> Lease:
            if deadline is not None:
                await conn.execute(f"LISTEN {CHANNEL}")
            try:
                while True:
                    cur = await conn.execute(
                        self._sql["acquire"], {"sid": session_id, "owner": owner, "ttl": ttl}
                    )
                    if (got := await cur.fetchone()) is not None:
                        return Lease(session_id, owner, int(got[0]), float(got[1]))
                    held = await (await conn.execute(self._sql["holder"], (session_id,))).fetchone()
                    if held is None or held[0] is None:
                        continue  # released between the two statements: try again
                    if _dead_here(str(held[0])):
                        # The holder was a process of this host that no longer exists (a
                        # crash): take its lease over now instead of waiting out its ttl.
                        dead = {"sid": session_id, "owner": owner, "ttl": ttl, "dead": held[0]}
                        cur = await conn.execute(self._sql["takeover"], dead)
                        if (got := await cur.fetchone()) is not None:
                            return Lease(session_id, owner, int(got[0]), float(got[1]))
                        continue  # someone else took it meanwhile: look again
                    left = 0.0 if deadline is None else deadline - self._clock()
                    if left <= 0:
                        message = held_message(session_id, held[0], held[1], held[2])
                        raise ConcurrentRunError(message)
                    notes = conn.notifies(timeout=pause(left, float(held[2])))
                    async with aclosing(notes):  # frees the connection's lock at once
                        async for note in notes:
                            if note.payload == key:
                                break
            finally:
                if deadline is not None and not conn.closed:
                    await conn.execute(f"UNLISTEN {CHANNEL}")

        return await self._run(f"acquire the lease of session {session_id!r}", attempt)

    async def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend `lease` to `ttl` seconds from now; `LeaseLostError` if taken over or released."""
        params = {**fence(lease), "ttl": check_ttl(ttl)}
        doing = f"renew the lease of session {lease.session_id!r}"
        if not (rows := await self._rows(doing, self._sql["renew"], params)):
            raise LeaseLostError(
                f"the lease of session {lease.session_id!r} held by {lease.owner!r} (token "
                f"{lease.token}) was taken over or released; stop this run"
            )
        return Lease(lease.session_id, lease.owner, lease.token, float(rows[0][0]))

    async def release(self, lease: Lease) -> None:
        """End `lease` if it is still current (a no-op otherwise) and wake waiting acquirers."""
        params = {**fence(lease), "key": self._wake_key(lease.session_id)}
        await self._rows(
            f"release the lease of session {lease.session_id!r}", self._sql["release"], params
        )

    def _wake_key(self, session_id: str) -> str:
        """The NOTIFY payload naming one session of this schema (fixed size, any session id)."""
        raw = f"{self._schema}\x00{session_id}".encode()
        return hashlib.blake2b(raw, digest_size=16).hexdigest()


def fence(lease: Lease) -> dict[str, Any]:
    return {"sid": lease.session_id, "token": lease.token, "owner": lease.owner}


def _dead_here(owner: str) -> bool:
    """True when `owner` ("host:pid:...") names a process of this host that is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False
