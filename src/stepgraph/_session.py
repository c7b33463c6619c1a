"""Sessions: one conversation or thread, owning everything that changes.

A session owns its executor instances (made by `Executor.fresh()`), shared
state, queued messages, fan-in buffers and pending requests. Two sessions
never share mutable state. One run at a time per session: the guard is taken
synchronously when `run()`/`resume()` is called, before any await, and
released when the run ends in any way; a late finalizer of an old run can
never release a newer run's guard (the guard is an identity token).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from ._context import Context
from ._errors import ConcurrentRunError, NotIdleError, RoutingError
from ._events import RunStatus
from ._executor import Executor
from ._planner import FanInBuffers, Queue
from ._requests import Request
from ._run import Run, _Execution
from ._runner import Runner, Sink, new_context

if TYPE_CHECKING:
    from ._workflow import Workflow

__all__ = ["Session"]

InT = TypeVar("InT", default=Any)


class _Token:
    """Identity of one run holding the session's guard."""

    __slots__ = ()


class Session(Generic[InT]):
    """One conversation with a workflow; see `Workflow.session()`.

    Attributes:
        id: the session id.
        workflow: the workflow this session runs.
    """

    def __init__(
        self,
        workflow: Workflow[InT],
        session_id: str,
        *,
        clock: Callable[[], datetime],
        ids: Callable[[], str],
    ) -> None:
        self.id = session_id
        self.workflow = workflow
        self._clock = clock
        self._ids = ids
        n = len(workflow._prototypes)
        self._executors: list[Executor | None] = [None] * n
        self._contexts: list[Context[Any, Any] | None] = [None] * n
        self._state: dict[str, Any] = {}
        self._queue: Queue = {}
        self._fanin: FanInBuffers = {}
        self._pending: dict[str, Request] = {}
        self._superstep = 0
        self._status = RunStatus.IDLE
        self._head: str | None = None
        self._active: _Token | None = None

    # -- reading between runs -----------------------------------------------------------

    @property
    def status(self) -> RunStatus:
        """The session's status (`RUNNING` while a run is active)."""
        return RunStatus.RUNNING if self._active is not None else self._status

    @property
    def pending_requests(self) -> tuple[Request, ...]:
        """Requests waiting for answers, in the order they were issued."""
        return tuple(self._pending.values())

    @property
    def state(self) -> Mapping[str, Any]:
        """A read-only view of the committed shared state."""
        return types.MappingProxyType(self._state)

    @property
    def head(self) -> str | None:
        """Id of the session's most recently saved checkpoint, or None."""
        return self._head

    @property
    def superstep(self) -> int:
        """Number of supersteps this session has committed over its whole life."""
        return self._superstep

    # -- starting runs -----------------------------------------------------------------

    def run(self, input: InT) -> Run:
        """Start a run with `input` for the start executor; await it or iterate it.

        Raises:
            ConcurrentRunError: a run of this session is in progress.
            NotIdleError: the session holds undelivered messages (resume or reset first).
            RoutingError: the start executor has no handler for `input`.
        """
        self._check_idle("run")
        wf = self.workflow
        if not wf._plan.accepts(wf._start, input):
            table = wf._plan.tables[wf._start]
            raise RoutingError(
                f"start executor {wf._plan.ids[wf._start]!r} has no handler for input of type "
                f"{type(input).__name__}; it accepts {table.describe_accepts()}"
            )
        start = wf._start

        def inject() -> None:
            self._queue = {start: [input]}

        return self._begin(inject)

    def resume(self) -> Run:
        """Continue delivering the undelivered messages of a failed or interrupted run.

        A session with nothing queued ends the run at once, idle.

        Raises:
            ConcurrentRunError: a run of this session is in progress.
        """
        self._check_guard("resume")
        return self._begin(None)

    # -- internals ------------------------------------------------------------------------

    def _check_guard(self, what: str) -> None:
        if self._active is not None:
            raise ConcurrentRunError(
                f"session {self.id!r} already has a run in progress; await it, close it, or "
                f"use another session before calling {what}()"
            )

    def _check_idle(self, what: str) -> None:
        self._check_guard(what)
        if self._queue:
            raise NotIdleError(
                f"session {self.id!r} holds undelivered messages of a run that did not finish "
                f"(status {self._status.name}); call resume() to continue it or reset() to "
                f"discard it before {what}()"
            )

    def _begin(self, inject: Callable[[], None] | None) -> Run:
        token = _Token()
        self._active = token

        def release() -> None:
            if self._active is token:
                self._active = None

        def make_runner(sink: Sink) -> Runner:
            if inject is not None:
                inject()
            return Runner(self, sink, self.workflow.max_supersteps)

        return Run(_Execution(self, make_runner, release))

    def _instantiate(self, index: int) -> Executor:
        ex = self.workflow._prototypes[index].fresh()
        self._executors[index] = ex
        self._contexts[index] = new_context(self, index)
        return ex

    def __repr__(self) -> str:
        return f"<Session {self.id!r} of {self.workflow.name!r} {self.status.name}>"
