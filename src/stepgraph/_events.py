"""Events a run streams: one frozen dataclass per kind, all subclasses of `Event`.

`Event` declares no dataclass fields, so a user event is any frozen dataclass
that subclasses it and is sent with `ctx.emit`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._requests import Request

__all__ = [
    "CheckpointSaved",
    "Event",
    "ExecutorCompleted",
    "ExecutorFailed",
    "ExecutorInvoked",
    "Output",
    "RequestIssued",
    "RunCompleted",
    "RunStarted",
    "RunStatus",
    "StateUpdated",
    "SubWorkflowEvent",
    "SuperstepCompleted",
    "SuperstepStarted",
]


class RunStatus(enum.Enum):
    """Where a session stands; `RunResult.status` is the status a run ended with."""

    RUNNING = "running"
    """A run is in progress."""
    IDLE = "idle"
    """No messages are queued and no request is pending."""
    IDLE_WITH_PENDING_REQUESTS = "idle_with_pending_requests"
    """No messages are queued; some requests wait for answers."""
    FAILED = "failed"
    """A known failure left undelivered messages; `resume()` continues, `reset()` discards."""
    CANCELLED = "cancelled"
    """The last run was cancelled; its undelivered messages were dropped."""
    INTERRUPTED = "interrupted"
    """Undelivered messages from a run that did not finish, cause unknown (restored or crashed)."""
    PAUSED = "paused"
    """Stopped at a breakpoint (`interrupt_before`/`interrupt_after`); `resume()` goes on."""


class Event:
    """Base class of every streamed event. Declares no fields.

    A subclass streamed at a high rate (token updates) sets `ephemeral = True`:
    it still streams live, but checkpoint traces (`Checkpoint.trace`) leave it out.
    """

    __slots__ = ()

    ephemeral: ClassVar[bool] = False
    """True for events a checkpoint's trace does not keep (see above)."""


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """First event of every run."""

    session_id: str


@dataclass(frozen=True, slots=True)
class SuperstepStarted(Event):
    """A superstep begins; numbers count over the session's whole life."""

    superstep: int


@dataclass(frozen=True, slots=True)
class SuperstepCompleted(Event):
    """A superstep was committed at its barrier."""

    superstep: int


@dataclass(frozen=True, slots=True)
class ExecutorInvoked(Event):
    """An executor starts processing its messages of a superstep.

    `item` is the item's index when the activation is one item of a map, else None.
    """

    executor_id: str
    superstep: int
    item: int | None = None


@dataclass(frozen=True, slots=True)
class ExecutorCompleted(Event):
    """An executor processed all its messages of a superstep.

    `item` is the item's index when the activation is one item of a map, else None.
    """

    executor_id: str
    superstep: int
    item: int | None = None


@dataclass(frozen=True, slots=True)
class ExecutorFailed(Event):
    """A handler raised; its superstep is rolled back."""

    executor_id: str
    error: BaseException


@dataclass(frozen=True, slots=True)
class Output(Event):
    """A value passed to `ctx.yield_output`."""

    executor_id: str
    value: object


@dataclass(frozen=True, slots=True)
class RequestIssued(Event):
    """An executor asked for outside input with `ctx.request`."""

    request: Request


@dataclass(frozen=True, slots=True)
class CheckpointSaved(Event):
    """A checkpoint was written to the session's store."""

    checkpoint_id: str
    parent_id: str | None
    superstep: int


@dataclass(frozen=True, slots=True)
class RunCompleted(Event):
    """Last event of every run, with the status the run ended with."""

    status: RunStatus


@dataclass(frozen=True, slots=True)
class StateUpdated(Event):
    """The state keys a committed superstep wrote, with their new values (on request).

    Streamed after the `SuperstepCompleted` of that superstep, only by runs
    started with `state_updates=True`. A deleted key maps to `sg.DELETE`.
    """

    superstep: int
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SubWorkflowEvent(Event):
    """An event of a child workflow, forwarded live by a `SubWorkflow` executor."""

    executor_id: str
    event: Event
