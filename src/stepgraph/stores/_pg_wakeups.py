"""Release notices for waiting `acquire` calls: one LISTEN connection per store, off the pool.

A waiting `acquire` must not hold a pooled connection while it waits: with
more waiters than the pool's `max_size`, the lease holder itself could get no
connection to save, renew or release (it stalled for the pool's timeout, then
failed). So each attempt takes a pooled connection only for its statements,
and the waiting happens here, on one dedicated connection that LISTENs on the
release channel for every waiter of the store.

Protocol, for a waiter of wake key `k`:

1. `with watching(k):` around the whole wait (only watched keys are counted,
   so memory stays bounded by the waiters);
2. `await listen()` before the first attempt, so that a release committed
   after an attempt is delivered to the connection;
3. `since = mark(k)` before each attempt;
4. after a refused attempt, `await wait(k, since, seconds)`: it returns as
   soon as a notice for `k` has been read since `mark` (possibly before the
   call: no wake-up is lost), or after `seconds`.

One waiter at a time reads the connection (the reader); it counts every
notice it reads, per key, and wakes the others, and it stops when its own key
was notified or its time is up; another waiter then takes over reading. The
connection is opened on first use and closed by `close()`; when it drops,
waiters wake (a spurious wake-up costs one attempt) and the next `listen()`
opens another.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable, Generator
from contextlib import aclosing
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["Wakeups"]

Connect = Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]


class Wakeups:
    """Notices on one channel, shared by the waiting `acquire` calls of one store.

    Args:
        connect: opens a new autocommit connection (not from the pool).
        channel: the LISTEN/NOTIFY channel whose payloads are wake keys.
    """

    def __init__(self, connect: Connect, channel: str) -> None:
        self._connect = connect
        self._channel = channel
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._opening = asyncio.Lock()  # binds to a loop only when contended
        self._watchers: collections.Counter[str] = collections.Counter()  # waiters per key
        self._seen: collections.Counter[str] = collections.Counter()  # notices read, per key
        self._tick: asyncio.Event | None = None  # set (and replaced) on every change
        self._reading = False

    @contextlib.contextmanager
    def watching(self, key: str) -> Generator[None]:
        """Count notices for `key` while inside (a waiter's whole `acquire`)."""
        self._watchers[key] += 1
        try:
            yield
        finally:
            self._watchers[key] -= 1
            if not self._watchers[key]:
                del self._watchers[key]
                self._seen.pop(key, None)

    async def listen(self) -> None:
        """Open the connection and LISTEN, unless that is done already."""
        async with self._opening:
            if self._conn is not None and not self._conn.closed:
                return
            conn = await self._connect()
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            except BaseException:
                await conn.close()
                raise
            self._conn = conn

    def mark(self, key: str) -> int:
        """How many notices for `key` were read so far (take it before an attempt)."""
        return self._seen[key]

    async def wait(self, key: str, since: int, seconds: float) -> None:
        """Until a notice for `key` was read after `mark` gave `since`, or `seconds` pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self._seen[key] == since and (left := deadline - loop.time()) > 0:
            if self._reading:  # another waiter reads: it wakes us at every change
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await self._changed().wait()
                continue
            conn = self._conn
            if conn is None or conn.closed:
                return  # dropped: let the caller try again (and listen again)
            self._reading = True
            try:
                await self._read(conn, key, since, left)
            finally:
                self._reading = False
                self._bump()  # a follower takes over reading

    async def close(self) -> None:
        """Close the connection (waiters wake; `listen()` opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        self._bump()

    async def _read(
        self, conn: psycopg.AsyncConnection[Any], key: str, since: int, seconds: float
    ) -> None:
        notes = conn.notifies(timeout=seconds)
        try:
            async with aclosing(notes):  # frees the connection's lock at once
                async for note in notes:
                    if note.payload in self._watchers:
                        self._seen[note.payload] += 1
                        self._bump()
                    if self._seen[key] != since:
                        return
        except psycopg.OperationalError:  # the connection dropped: the next listen() reopens
            if self._conn is conn:
                self._conn = None
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    def _changed(self) -> asyncio.Event:
        if self._tick is None:
            self._tick = asyncio.Event()
        return self._tick

    def _bump(self) -> None:
        tick, self._tick = self._tick, None
        if tick is not None:
            tick.set()
