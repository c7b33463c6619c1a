"""Several replicas over one store: a request lock per conversation, across processes.

The in-process busy mark only sees this process. With a shared hosting log
(PostgreSQL), a request also takes its session's *request lock*: a lease in
the checkpoint store under the key `hosting:<session id>`, held from before
the request reads where the conversation stands until after it recorded its
response, renewed every `ttl / 3` meanwhile (by one task the app's lifespan
owns). A request for a conversation that another replica is serving gets 409
at once, before anything is read or written.

Why a key of its own, when every run already holds the session's lease (and
fences its writes with it)? A run's lease ends with the run, but the request
then still records its response and moves the conversation's head; a request
on another replica that read the head in between would continue from the old
one. The request lock spans both. The session lease stays the guard of the
store: a run started by anyone else (the CLI, another program) still makes a
request's run fail at its start with `ConcurrentRunError`, which the host
answers with the same 409.

A replica that crashed leaves its locks behind: on the same host they are
taken over at once (the owner, `host:pid:...`, names a process that is gone);
from another host they expire after `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

import stepgraph as sg

from ._errors import ApiError

__all__ = ["RequestLocks", "busy", "lock_key"]

logger = logging.getLogger("stepgraph.hosting")


def busy(what: str) -> ApiError:
    """The 409 of a session another request holds."""
    return ApiError(
        409,
        f"this {what} is busy with another request; wait for it to finish",
        code="conversation_busy",
    )


def lock_key(session_id: str) -> str:
    """The lease key of a session's request lock."""
    return f"hosting:{session_id}"


class RequestLocks:
    """Request locks of this process (see the module docstring).

    Args:
        store: a checkpoint store with leases (`acquire`, `renew`, `release`).
        ttl: seconds a lock outlives a replica that stopped renewing it; `keep_alive`
            renews every lock held every `ttl / 3`.
    """

    def __init__(self, store: Any, ttl: float = 30.0) -> None:
        self.store = store
        self.ttl = ttl
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
        self._held: dict[str, Any] = {}  # session id -> its lock's current Lease

    async def acquire(self, session_id: str, what: str) -> None:
        """Take the session's lock (the caller holds its busy mark); 409 when another
        replica holds it.
        """
        try:
            lease = await self.store.acquire(lock_key(session_id), self.owner, self.ttl)
        except sg.ConcurrentRunError:
            raise busy(what) from None
        self._held[session_id] = lease

    async def keep_alive(self) -> None:
        """Renew every lock held, every `ttl / 3`, until cancelled (the app's lifespan
        owns this task). A lock taken over meanwhile is dropped: the run's own lease
        still fences its writes.
        """
        while True:
            await asyncio.sleep(self.ttl / 3)
            for session_id, lease in list(self._held.items()):
                try:
                    renewed = await self.store.renew(lease, self.ttl)
                except sg.LeaseLostError as exc:
                    logger.warning("request lock of %s lost: %s", session_id, exc)
                    renewed = None
                except sg.CheckpointError as exc:  # the database is away: try again later
                    logger.warning("request lock of %s not renewed: %s", session_id, exc)
                    continue
                if self._held.get(session_id) is lease:  # not released meanwhile
                    if renewed is None:
                        del self._held[session_id]
                    else:
                        self._held[session_id] = renewed

    async def release(self, session_id: str) -> None:
        """Give the session's lock back (nothing when this process does not hold it).

        A lock that cannot be released (the database is away) expires after `ttl`;
        this process may take it again at once meanwhile (same owner).
        """
        lease = self._held.pop(session_id, None)
        if lease is None:
            return
        try:
            await self.store.release(lease)
        except sg.CheckpointError as exc:
            logger.warning("request lock of %s not released (it expires): %s", session_id, exc)

    async def close(self) -> None:
        """Release every lock still held."""
        for session_id in list(self._held):
            with contextlib.suppress(Exception):
                await self.release(session_id)
