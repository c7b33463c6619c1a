"""One runner per session across processes: taking, renewing and releasing a lease.

When a session's store can arbitrate leases (a `LeaseStore`: file, SQLite,
PostgreSQL), every run takes the session's lease before it starts (another
process's run makes it fail at once with `ConcurrentRunError`, or wait when
the session asks to), re-reads the session's head in case another process
moved it meanwhile, renews the lease while it runs, and fences every
checkpoint it writes with the lease's token, so a run that lost its lease
(paused, partitioned, too slow) can no longer write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._interceptors import Interceptor, Next, RunCall
from ._lease import Lease, LeaseLostError, LeaseStore

if TYPE_CHECKING:
    from ._core import SessionCore
    from ._events import RunStatus

__all__ = ["LeasePolicy", "Leasing", "holding"]


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    """How a session takes its lease in a store that supports leases.

    Attributes:
        ttl: seconds a lease lasts without renewal (renewed every ttl/3).
        wait: seconds to wait for another process's run to finish (None: fail at once).
        owner: this runner's identity (host, pid and a random part by default).
    """

    ttl: float = 30.0
    wait: float | None = None
    owner: str | None = None


def default_owner() -> str:
    """host:pid:random, unique per process and run."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


class Leasing(Interceptor):
    """Every run of the session holds its lease, re-reads the head, and fences its saves."""

    def __init__(self, core: SessionCore, store: LeaseStore, policy: LeasePolicy) -> None:
        self.core = core
        self.store = store
        self.policy = policy

    async def run(self, call: RunCall, next: Next[RunCall, RunStatus]) -> RunStatus:
        checkpointer = self.core.checkpointer
        assert checkpointer is not None, "a session leases only with a store"
        async with holding(self.store, call.session_id, self.policy) as lease:
            checkpointer.lease = lease
            try:
                await self.core.refresh_head()  # another process may have moved the session
                return await next(call)
            finally:
                checkpointer.lease = None


@contextlib.asynccontextmanager
async def holding(store: LeaseStore, session_id: str, policy: LeasePolicy) -> AsyncGenerator[Lease]:
    """Hold the session's lease for the duration of a run, renewing it meanwhile.

    Raises:
        ConcurrentRunError: another process runs the session.
        LeaseLostError: the lease was taken over during the run (the run is stopped).
    """
    owner = policy.owner or default_owner()
    lease = await store.acquire(session_id, owner, policy.ttl, wait=policy.wait)
    holder: list[Lease] = [lease]

    async def renew() -> None:
        while True:
            await asyncio.sleep(policy.ttl / 3)
            holder[0] = await store.renew(holder[0], policy.ttl)

    try:
        async with asyncio.TaskGroup() as tg:
            renewer = tg.create_task(renew())  # owned by this group; lost lease cancels the run
            try:
                yield lease
            finally:
                renewer.cancel()
    except BaseExceptionGroup as group:
        lost = [e for e in group.exceptions if isinstance(e, LeaseLostError)]
        if lost:
            raise lost[0] from None
        raise group.exceptions[0] if len(group.exceptions) == 1 else group from None
    finally:
        with contextlib.suppress(Exception):
            await store.release(holder[0])
