"""Leases for `SqliteCheckpointStore`: one runner per session among the processes of a machine.

Implements the `LeaseStore` rules of `stepgraph.stepgraph._lease` on the `stepgraph_leases`
table (schema version 2). Every write goes through the store's group commit.
A lease whose owner is a process of this host that no longer exists (a crash)
is taken over at once instead of after its ttl.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from .._errors import ConcurrentRunError
from .._lease import Lease, LeaseLostError, check_ttl, held_message, pause

__all__ = ["SqliteLeases"]

_T = TypeVar("_T")

_ACQUIRE = """
INSERT INTO stepgraph_leases (session_id, owner, token, expires_at) VALUES (?, ?, 1, ?)
ON CONFLICT (session_id) DO UPDATE SET
    owner = excluded.owner, token = stepgraph_leases.token + 1, expires_at = excluded.expires_at
WHERE stepgraph_leases.owner IS NULL OR stepgraph_leases.owner = excluded.owner
    OR stepgraph_leases.expires_at <= ?
RETURNING token, expires_at
"""


class SqliteLeases:
    """The lease methods; the store provides `_run` (reads) and `_write` (group commit)."""

    def _run(self, doing: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        raise NotImplementedError

    async def _write(self, doing: str, op: Callable[[sqlite3.Connection], _T]) -> _T:
        raise NotImplementedError

    async def acquire(
        self, session_id: str, owner: str, ttl: float, *, wait: float | None = None
    ) -> Lease:
        """Take the session's lease (see `stepgraph.stepgraph._lease`)."""
        check_ttl(ttl)
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            now = time.time()
            args = (session_id, owner, now + ttl, now)
            row = await self._write(
                f"lease session {session_id!r}",
                lambda c, args=args: c.execute(_ACQUIRE, args).fetchone(),
            )
            if row is not None:
                return Lease(session_id, owner, int(row[0]), float(row[1]))
            holder = self._run(
                f"read the lease of {session_id!r}",
                lambda c: c.execute(
                    "SELECT owner, token, expires_at FROM stepgraph_leases WHERE session_id = ?",
                    (session_id,),
                ).fetchone(),
            )
            if holder is not None and _dead_here(str(holder[0] or "")):
                # The holder was a process on this machine that no longer exists (a
                # crash): take the lease over now instead of waiting out its ttl.
                args = (session_id, owner, now + ttl, math.inf)
                row = self._run(
                    f"take over the lease of {session_id!r}",
                    lambda c, args=args: c.execute(_ACQUIRE, args).fetchone(),
                )
                if row is not None:
                    return Lease(session_id, owner, int(row[0]), float(row[1]))
            left = float(holder[2]) - time.time() if holder else 0.0
            if deadline is None or time.monotonic() >= deadline:
                raise ConcurrentRunError(
                    held_message(
                        session_id,
                        str(holder[0]) if holder else "?",
                        int(holder[1]) if holder else 0,
                        left,
                    )
                )
            await asyncio.sleep(pause(deadline - time.monotonic(), left))

    async def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend an unchanged lease; `LeaseLostError` when it was taken over or released."""
        check_ttl(ttl)
        expires = time.time() + ttl
        changed = self._run(
            f"renew the lease of {lease.session_id!r}",
            lambda c: (
                c.execute(
                    "UPDATE stepgraph_leases SET expires_at = ? "
                    "WHERE session_id = ? AND token = ? AND owner = ?",
                    (expires, lease.session_id, lease.token, lease.owner),
                ).rowcount
            ),
        )
        if changed == 0:
            raise LeaseLostError(f"the lease of session {lease.session_id!r} was taken over")
        return Lease(lease.session_id, lease.owner, lease.token, expires)

    async def release(self, lease: Lease) -> None:
        """End the lease if it is still current (the token is kept for the next holder)."""
        await self._write(
            f"release the lease of {lease.session_id!r}",
            lambda c: c.execute(
                "UPDATE stepgraph_leases SET owner = NULL, expires_at = 0 "
                "WHERE session_id = ? AND token = ? AND owner = ?",
                (lease.session_id, lease.token, lease.owner),
            ),
        )


def _dead_here(owner: str) -> bool:
    """True when `owner` ("host:pid:...") names a process of this host that is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
