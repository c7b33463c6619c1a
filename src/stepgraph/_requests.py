"""Requests for outside input (human in the loop) and the results of runs."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass
from typing import Any

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

    __slots__ = (
        "_events",
        "_tape",
        "checkpoint_id",
        "outputs",
        "pending_requests",
        "session_id",
        "status",
    )

    session_id: str
    outputs: list[Any]
    status: RunStatus
    pending_requests: tuple[Request, ...]
    checkpoint_id: str | None
    _events: list[Event] | None
    _tape: list[Any] | None

    def __init__(
        self,
        session_id: str,
        outputs: list[Any],
        events: list[Event],
        status: RunStatus,
        pending_requests: tuple[Request, ...] = (),
        checkpoint_id: str | None = None,
    ) -> None:
        _fill(self, session_id, outputs, events, None, status, pending_requests, checkpoint_id)

    @property
    def events(self) -> list[Event]:
        """Every event of the run in order (rolled-back outputs and requests excluded)."""
        events = self._events
        if events is None:
            tape = self._tape
            events = decode(tape) if tape is not None else []
            _set_events(self, events)
            _set_tape(self, None)
        return events

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Any, ...]:
        return (
            self.session_id,
            self.outputs,
            self.events,
            self.status,
            self.pending_requests,
            self.checkpoint_id,
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not RunResult:
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # holds lists, as the dataclass it replaces

    def __repr__(self) -> str:
        return (
            f"RunResult(session_id={self.session_id!r}, outputs={self.outputs!r}, "
            f"events={self.events!r}, status={self.status!r}, "
            f"pending_requests={self.pending_requests!r}, checkpoint_id={self.checkpoint_id!r})"
        )


_set_events = RunResult._events.__set__  # type: ignore[attr-defined]
_set_tape = RunResult._tape.__set__  # type: ignore[attr-defined]
_set_session_id, _set_outputs, _set_status, _set_pending, _set_checkpoint_id = (
    getattr(RunResult, n).__set__
    for n in ("session_id", "outputs", "status", "pending_requests", "checkpoint_id")
)


def _fill(
    result: RunResult,
    session_id: str,
    outputs: list[Any],
    events: list[Event] | None,
    tape: list[Any] | None,
    status: RunStatus,
    pending_requests: tuple[Request, ...],
    checkpoint_id: str | None,
) -> None:
    _set_session_id(result, session_id)
    _set_outputs(result, outputs)
    _set_status(result, status)
    _set_pending(result, pending_requests)
    _set_checkpoint_id(result, checkpoint_id)
    _set_events(result, events)
    _set_tape(result, tape)


def recorded_result(
    session_id: str,
    pending: tuple[Request, ...],
    head: str | None,
    outputs: list[Any],
    events: list[Event] | list[Any],
    taped: bool,
    status: RunStatus,
) -> RunResult:
    """A run's `RunResult`; `events` is a list of events, or a tape (`_tape`) when `taped`."""
    result = object.__new__(RunResult)
    if taped:
        _fill(result, session_id, outputs, None, events, status, pending, head)
    else:
        _fill(result, session_id, outputs, events, None, status, pending, head)
    return result
