"""Clocks: a session reads the time from a `Clock`; a `SleepingClock` also decides sleeps.

A session's clock is any zero-argument callable returning an aware
`datetime` (the wall clock by default). A clock that also has `async def
sleep(seconds)` is a `SleepingClock`: retry delays are slept on it, so a
test's `ManualClock` jumps forward instead of waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SleepingClock", "sleep"]

Clock = Callable[[], datetime]
"""What a session reads the current time from."""


@runtime_checkable
class SleepingClock(Protocol):
    """A clock that also sleeps on its own time (`stepgraph.testing.ManualClock` is one)."""

    def __call__(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Let `seconds` pass on this clock (a manual clock just moves forward)."""
        ...


async def sleep(clock: Clock, seconds: float) -> None:
    """Sleep `seconds` on `clock` when it is a `SleepingClock`, else on the event loop."""
    if seconds <= 0:
        return
    if isinstance(clock, SleepingClock):
        await clock.sleep(seconds)
    else:
        await asyncio.sleep(seconds)
