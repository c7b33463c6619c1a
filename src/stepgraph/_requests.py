"""Requests for outside input (human in the loop) and the results of runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._events import Event, RunStatus

__all__ = ["Answer", "Request", "RunResult"]


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
class Answer:
    """Internal message: an answer to `request`, queued for its executor's response handler."""

    request: Request
    response: Any


@dataclass(frozen=True, slots=True)
class RunResult:
    """What `await run` gives: outputs, events and the status the run ended with.

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
    checkpoint_id: str | None = field(default=None)


def _fast_run_result_init() -> None:
    """Build `RunResult` through its slot descriptors (one per run: about twice as fast).

    The class stays a frozen dataclass: assignment after construction still raises.
    """
    names = ("session_id", "outputs", "events", "status", "pending_requests", "checkpoint_id")
    setters = [getattr(RunResult, n).__set__ for n in names]
    s_id, s_out, s_ev, s_st, s_pr, s_cp = setters

    def __init__(
        self: RunResult,
        session_id: str,
        outputs: list[Any],
        events: list[Event],
        status: RunStatus,
        pending_requests: tuple[Request, ...] = (),
        checkpoint_id: str | None = None,
    ) -> None:
        s_id(self, session_id)
        s_out(self, outputs)
        s_ev(self, events)
        s_st(self, status)
        s_pr(self, pending_requests)
        s_cp(self, checkpoint_id)

    __init__.__qualname__ = "RunResult.__init__"
    RunResult.__init__ = __init__


_fast_run_result_init()
