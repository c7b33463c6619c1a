"""Leases for `PostgresCheckpointStore`: one runner per session among processes and hosts.

Implements the `LeaseStore` rules of `stepgraph._lease` on `stepgraph_leases`,
with expiry judged by the server's clock. `acquire(wait=...)` waits on the
store's one LISTEN connection (`_pg_wakeups`), holding no pooled connection:
`release` notifies `CHANNEL` with the session's wake key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, LiteralString, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from .._errors import ConcurrentRunError
from .._lease import Lease, LeaseLostError, check_ttl, held_message, owner_is_gone, pause
from ._pg_wakeups import Wakeups

__all__ = ["PostgresLeases", "fence"]

_T = TypeVar("_T")
_Conn = AsyncConnection[TupleRow]


class PostgresLeases:
    """The lease methods; the store provides its statements, clock, schema and `_run`/`_rows`."""

    _sql: dict[str, LiteralString]
    _clock: Callable[[], float]
    _schema: str
    _wakeups: Wakeups

    async def _rows(
        self, doing: str, query: LiteralString, params: Any, *, binary: bool = False
    ) -> list[TupleRow]:
        raise NotImplementedError

    async def _run(self, doing: str, fn: Callable[[_Conn], Awaitable[_T]]) -> _T:
        raise NotImplementedError

    async def _guarded(self, doing: str, work: Awaitable[_T]) -> _T:
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError

    async def acquire(
        self, session_id: str, owner: str, ttl: float, *, wait: float | None = None
    ) -> Lease:
        """Take the session's lease for `ttl` seconds (rules in `stepgraph._lease`).

        Raises `ConcurrentRunError` while another owner holds it; with `wait`, only
        after trying that long, woken by the holder's release (LISTEN/NOTIFY) or expiry.
        A waiting call holds no pooled connection between its attempts (it listens on
        the store's one notice connection, `_pg_wakeups`), so any number of waiters
        leave the pool to the holders. A holder that was a process of this host and
        is gone (a crash) is taken over.
        """
        ttl = check_ttl(ttl)
        deadline = None if wait is None else self._clock() + max(wait, 0.0)
        doing = f"acquire the lease of session {session_id!r}"
        key = self._wake_key(session_id)
        with self._wakeups.watching(key):
            while True:
                if deadline is not None:  # before the attempt: no release goes unheard
                    self._check_open()
                    await self._guarded(doing, self._wakeups.listen())  # reopens if dropped
                since = self._wakeups.mark(key)
                got, held = await self._run(
                    doing, lambda conn: self._attempt(conn, session_id, owner, ttl)
                )
                if got is not None:
                    return got
                owner_, token, remaining = held
                left = 0.0 if deadline is None else deadline - self._clock()
                if left <= 0:
                    raise ConcurrentRunError(held_message(session_id, owner_, token, remaining))
                await self._guarded(doing, self._wakeups.wait(key, since, pause(left, remaining)))

    async def _attempt(
        self, conn: _Conn, session_id: str, owner: str, ttl: float
    ) -> tuple[Lease | None, tuple[str, int, float]]:
        """One try: the lease, or None and the holder (owner, token, seconds left)."""
        params = {"sid": session_id, "owner": owner, "ttl": ttl}
        while True:
            cur = await conn.execute(self._sql["acquire"], params)
            if (got := await cur.fetchone()) is not None:
                return Lease(session_id, owner, int(got[0]), float(got[1])), ("", 0, 0.0)
            held = await (await conn.execute(self._sql["holder"], (session_id,))).fetchone()
            if held is None or held[0] is None:
                continue  # released between the two statements: try again
            if not owner_is_gone(str(held[0])):
                return None, (str(held[0]), int(held[1]), float(held[2]))
            # The holder was a process of this host that no longer exists (a crash):
            # take its lease over now instead of waiting out its ttl.
            cur = await conn.execute(self._sql["takeover"], {**params, "dead": held[0]})
            if (got := await cur.fetchone()) is not None:
                return Lease(session_id, owner, int(got[0]), float(got[1])), ("", 0, 0.0)
            # someone else took it meanwhile: look again

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
