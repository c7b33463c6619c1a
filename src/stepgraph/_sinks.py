"""Sinks: where a run's events go while it runs, and how they reach its `RunResult`.

`ListSink` serves awaited runs: it records events on a tape (`_tape`) and the
`RunResult` makes the event objects when first read. `Channel` serves streamed
runs: it hands events to the consumer as they happen, and the producer pauses
at each superstep barrier until the consumer has taken them.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._events import Event
from ._tape import forget_since

if TYPE_CHECKING:
    pass

__all__ = ["Channel", "ListSink", "Sink"]


class Sink(Protocol):
    """Where a run's events go, kept for the `RunResult` too."""

    pauses: bool
    """True when `barrier()` may wait (a live stream); False skips the call."""

    @property
    def emit(self) -> Callable[[Event], None]:
        """Emit one event."""
        ...

    @property
    def record(self) -> Callable[[tuple[Any, ...]], None]:
        """Emit `fields[0](*fields[1:])`: an event kind and its one or two field values.

        A sink may keep the fields and make the event only when it is read.
        """
        ...

    @property
    def mark(self) -> Callable[[], int]:
        """A position in the record, for `forget_since`."""
        ...

    def forget_since(self, mark: int, /) -> None:
        """Drop the outputs and requests recorded since `mark` (a rolled-back superstep)."""
        ...

    def recording(self) -> tuple[list[Any], bool]:
        """What the run recorded, for its `RunResult`: the events, or a tape (True)."""
        ...

    async def barrier(self) -> None:
        """Called after each committed superstep; a live stream may pause here."""
        ...


class ListSink:
    """Awaited runs: events are recorded on a tape (`_tape`), made into objects on demand."""

    __slots__ = ("emit", "mark", "pauses", "record", "tape")

    def __init__(self) -> None:
        self.tape: list[Any] = []
        self.emit: Callable[[Event], None] = self.tape.append
        self.record: Callable[[tuple[Any, ...]], None] = self.tape.extend
        self.mark: Callable[[], int] = self.tape.__len__
        self.pauses = False

    def forget_since(self, mark: int) -> None:
        forget_since(self.tape, mark)

    def recording(self) -> tuple[list[Any], bool]:
        return self.tape, True

    async def barrier(self) -> None:
        return None


# Hand-rolled: an asyncio.Queue (get / task_done / join) costs W6a 0.098 ms vs 0.092 ms here
# to the first user event (bench_stepgraph W6 --reps 25, median of 20 interleaved processes,
# 2026-12-07; ratio IQR 1.06-1.12x, same-code control 0.97-1.03x), and 16.2 vs 12.3 µs per
# superstep on W1's chain consumed with `wf.stream` (median of 20). W6b's timer noise hides
# both (docs/benchmarks.md "Hand-rolled constructs").
class Channel:
    """Live sink: events go to a consumer; the producer pauses at barriers."""

    __slots__ = ("buffer", "done", "events", "live", "pauses", "resume", "waiter")

    def __init__(self) -> None:
        self.pauses = True
        self.events: list[Event] = []
        self.buffer: collections.deque[Event] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.resume: asyncio.Future[None] | None = None
        self.live = True
        self.done = False

    def emit(self, event: Event) -> None:
        self.events.append(event)
        if self.live:
            self.buffer.append(event)
            self._wake_consumer()

    def record(self, fields: tuple[Any, ...]) -> None:
        self.emit(fields[0](*fields[1:]))

    def mark(self) -> int:
        return len(self.events)

    def forget_since(self, mark: int) -> None:
        forget_since(self.events, mark)

    def recording(self) -> tuple[list[Any], bool]:
        return self.events, False

    def _wake_consumer(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def wake_producer(self) -> None:
        r = self.resume
        if r is not None and not r.done():
            r.set_result(None)

    async def barrier(self) -> None:
        if self.live and self.buffer:
            if self.waiter is not None:
                # The consumer waits for events and is woken already: one loop turn lets it
                # take them (a consumer that does not await between events takes them all).
                await asyncio.sleep(0)
                if not (self.live and self.buffer):
                    return
            self.resume = asyncio.get_running_loop().create_future()
            await self.resume
            self.resume = None

    def close(self) -> None:
        self.done = True
        self._wake_consumer()

    def stop_streaming(self) -> None:
        """The consumer stopped listening (it awaits the result instead)."""
        self.live = False
        self.buffer.clear()
        self.wake_producer()
