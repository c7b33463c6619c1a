"""Requests for outside input (human in the loop) and the results of runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._events import Event, RunStatus
from ._tape import decode

__all__ = ["Answer", "ExecutorFailure", "Request", "RunResult"]


@dataclass(frozen=True, slots=True)
class Request:
    """A pending request for outside input, issued with `ctx.request`.

    Attributes:
        id: request id; answer it with `session.respond({id: answer})`.
        executor_id: the executor that asked (a path for sub-workflows).
        payload: what the executor asked with.
        response_type: the type an answer must have.
    """

    id: str
    executor_id: str
    payload: Any
    response_type: Any


@dataclass(frozen=True, slots=True)
class ExecutorFailure:
    """The message an error route delivers when an executor still fails after its retries.

    Attributes:
        executor_id: the executor that failed.
        error_type: the exception's class name.
        error: the exception's text.
        message: the message the executor was handling.
        attempts: how many times it was tried (its retry policy's attempts).
    """

    executor_id: str
    error_type: str
    error: str
    message: Any
    attempts: int


@dataclass(frozen=True, slots=True)
class Answer:
    """Internal message: an answer to `request`, queued for its executor's response handler."""

    request: Request
    response: Any


@dataclass(frozen=True)
class RunResult:
    """What `await run` gives: outputs, events and the status the run ended with.

    Immutable (assigning an attribute raises `dataclasses.FrozenInstanceError`).

    Attributes:
        session_id: the session that ran.
        outputs: values passed to `ctx.yield_output`, ordered by superstep, then
            executor declaration order, then yield order (rolled-back supersteps excluded).
        events: every event of the run in order (outputs and requests of rolled-back
            supersteps excluded).
        status: the status the run ended with.
        pending_requests: requests still waiting for answers.
        checkpoint_id: the last checkpoint saved, or None.
    """

    session_id: str
    outputs: list[Any]
    events: list[Event]
    status: RunStatus
    pending_requests: tuple[Request, ...] = ()
    checkpoint_id: str | None = None

    if not TYPE_CHECKING:  # hidden from type checkers, which would then accept any name

        def __getattr__(self, name: str) -> Any:
            # Called only for a missing attribute: `events` of a result made from a tape
            # (`recorded_result`), decoded on first read and then kept. Hand-rolled laziness:
            # building the events eagerly costs W5 35,000 vs 45,300 runs/s here and W3 3.86
            # vs 2.54 µs per superstep (bench_stepgraph, median of 40 interleaved processes,
            # 2026-12-07; same-code control IQR 0.96-1.05x; docs/benchmarks.md).
            if name != "events" or "_tape" not in self.__dict__:
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self
                )
            events = decode(self.__dict__["_tape"])
            object.__setattr__(self, "events", events)
            del self.__dict__["_tape"]
            return events


def recorded_result(
    session_id: str,
    pending: tuple[Request, ...],
    head: str | None,
    outputs: list[Any],
    events: list[Event] | list[Any],
    taped: bool,
    status: RunStatus,
) -> RunResult:
    """A run's `RunResult`; `events` is a list of events, or a tape (`_tape`) when `taped`.

    A taped result leaves `events` unset and keeps the tape (see `RunResult.__getattr__`).
    """
    if not taped:
        return RunResult(session_id, outputs, events, status, pending, head)
    result = object.__new__(RunResult)
    result.__dict__.update(
        session_id=session_id,
        outputs=outputs,
        status=status,
        pending_requests=pending,
        checkpoint_id=head,
        _tape=events,
    )
    return result
