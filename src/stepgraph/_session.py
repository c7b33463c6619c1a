"""Sessions: one conversation or thread, owning everything that changes.

A session owns its executor instances (made by `Executor.fresh()`), shared
state, queued messages, fan-in buffers and pending requests. Two sessions
never share mutable state. One run at a time per session: the guard is taken
synchronously when `run()`/`respond()`/`resume()` is called, before any
await, and released when the run ends in any way; a late finalizer of an old
run can never release a newer run's guard (the guard is an identity token).

With a store, the session saves a checkpoint when a run starts and after
every committed superstep; opening a session id that has checkpoints
continues from its latest one (read by `load()` or the first awaited call).
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from ._cache import Cache
from ._checkpoint import Checkpoint, CheckpointInfo
from ._content import SessionContent
from ._core import CheckpointRef, SessionCore
from ._errors import CheckpointNotFoundError
from ._events import RunStatus
from ._inputs import convert_input, validate_answers
from ._leasing import LeasePolicy
from ._map import MapBuffers
from ._planner import Queue
from ._requests import Answer, Request
from ._retention import Retention
from ._run import Run, RunExecution
from ._steering import Steering, steering
from ._updates import update_state

if TYPE_CHECKING:
    from ._backend import Backend
    from ._store import CheckpointStore
    from ._workflow import Workflow
    from .tracing import Tracer

__all__ = ["Session"]

InT = TypeVar("InT", default=Any)


class Session(Generic[InT]):
    """One conversation with a workflow; see `Workflow.session()`.

    Attributes:
        id: the session id.
        workflow: the workflow this session runs.
        store: where checkpoints are saved automatically, or None.
    """

    def __init__(
        self,
        workflow: Workflow[InT],
        session_id: str,
        *,
        store: CheckpointStore | None,
        clock: Callable[[], datetime],
        ids: Callable[[], str],
        retention: Retention | None = None,
        cache: Cache | None = None,
        tracer: Tracer | None = None,
        lease: LeasePolicy | bool = True,
        backend: Backend | None = None,
        memory: Any = None,
    ) -> None:
        self.id = session_id
        self.workflow = workflow
        self.store = store
        self.core = SessionCore(
            workflow,
            session_id,
            store,
            clock,
            ids,
            retention,
            cache,
            tracer,
            lease,
            backend,
            memory,
        )
        """The engine's side of this session (for backends and adapters, not workflow code)."""

    # -- reading between runs -----------------------------------------------------------

    @property
    def status(self) -> RunStatus:
        """The session's status (`RUNNING` while a run is active)."""
        core = self.core
        return RunStatus.RUNNING if core.active is not None else core.content.status

    @property
    def pending_requests(self) -> tuple[Request, ...]:
        """Requests waiting for answers, in the order they were issued."""
        return tuple(self.core.content.pending.values())

    @property
    def state(self) -> Mapping[str, Any]:
        """A read-only view of the committed shared state."""
        return types.MappingProxyType(self.core.content.state)

    @property
    def head(self) -> str | None:
        """Id of the session's most recently saved checkpoint, or None."""
        return self.core.content.head

    @property
    def superstep(self) -> int:
        """Number of supersteps this session has committed over its whole life."""
        return self.core.content.superstep

    # -- starting runs -----------------------------------------------------------------

    def run(
        self,
        input: InT,
        *,
        timeout: float | None = None,
        interrupt_before: Iterable[str] | None = None,
        interrupt_after: Iterable[str] | None = None,
        state_updates: bool = False,
    ) -> Run:
        """Start a run with `input` for the start executor; await it or iterate it.

        Raises:
            ConcurrentRunError: a run of this session is in progress.
            NotIdleError: the session holds undelivered messages (resume or reset first);
                for a session not loaded yet, raised when the run starts.
            RoutingError: the start executor has no handler for `input`.
            ValueError: a breakpoint names no executor of the workflow.

        `timeout` (or the workflow's `run_timeout`) bounds the run: past it the run
        ends `FAILED` at its last committed superstep (`RunTimeoutError`).

        Breakpoints: with `interrupt_before=["x"]` the run stops before the superstep
        in which `x` would run, with `interrupt_after=["x"]` after a superstep in
        which `x` ran (when messages are still queued); the session is then
        `PAUSED`, saved as the new head, and `resume()` goes on. With
        `state_updates=True` the run streams a `StateUpdated` event after each
        superstep that wrote state. The same three options apply to `respond()`
        and `resume()`.
        """
        steer = steering(self.workflow.blueprint, interrupt_before, interrupt_after, state_updates)
        core = self.core
        previous = core.take_over("run") if core.active is not None else None
        if previous is None and core.content.queue:
            core.check_queue("run")  # raises
        bp = self.workflow.blueprint
        start = bp.start
        if not bp.plan.accepts(start, input):
            input = convert_input(self.workflow, input)

        async def prepare() -> bool:
            if previous is not None:  # a dropped stream's run, winding down
                await previous.wait_finished()
            if not core.loaded:
                await core.ensure_loaded()
            core.check_queue("run")
            core.content.queue = {start: [input]}
            return True

        return self._begin(prepare, timeout, steer)

    def respond(
        self,
        answers: Mapping[str, Any],
        *,
        timeout: float | None = None,
        interrupt_before: Iterable[str] | None = None,
        interrupt_after: Iterable[str] | None = None,
        state_updates: bool = False,
    ) -> Run:
        """Answer pending requests; each answer goes to its executor's `@response_handler`.

        The whole batch is validated first: an unknown id (one from before a
        `reset()`/`restore()` included) or an answer that is not, and cannot be
        converted into, the request's `response_type` raises `RequestError`
        and changes nothing. Unanswered requests stay pending.

        Raises:
            ConcurrentRunError: a run of this session is in progress.
            RequestError: an answer is invalid (for a session not loaded yet,
                raised when the run starts).
            NotIdleError: the session holds undelivered messages.
            ValueError: a breakpoint names no executor of the workflow.

        Breakpoints and `state_updates` as in `run()`.
        """
        steer = steering(self.workflow.blueprint, interrupt_before, interrupt_after, state_updates)
        core = self.core
        core.check_idle("respond")
        if core.loaded:
            validate_answers(core, answers)

        async def prepare() -> bool:
            await core.ensure_loaded()
            core.check_queue("respond")
            queue: Queue = {}
            index = self.workflow.blueprint.plan.index
            for request, value in validate_answers(core, answers):
                queue.setdefault(index[request.executor_id.split("/", 1)[0]], []).append(
                    Answer(request, value)
                )
            for request_id in answers:
                del core.content.pending[request_id]
            core.content.queue = queue
            return True

        return self._begin(prepare, timeout, steer)

    def resume(
        self,
        checkpoint_id: CheckpointRef | None = None,
        *,
        timeout: float | None = None,
        interrupt_before: Iterable[str] | None = None,
        interrupt_after: Iterable[str] | None = None,
        state_updates: bool = False,
    ) -> Run:
        """Continue the session: from memory, or from any checkpoint (time travel).

        Without an id, delivers the undelivered messages of a failed or
        interrupted run (a session with nothing queued ends at once, idle).
        With an id, restores that checkpoint first; the next checkpoint saved
        points at it, starting a branch.

        Breakpoints and `state_updates` as in `run()`. A session `PAUSED` at a
        breakpoint runs its next superstep without the `interrupt_before` check,
        so it does not stop again where it paused.

        Raises:
            ConcurrentRunError: a run of this session is in progress.
            ValueError: a breakpoint names no executor of the workflow.
        """
        steer = steering(self.workflow.blueprint, interrupt_before, interrupt_after, state_updates)
        core = self.core
        core.check_guard("resume")

        async def prepare() -> bool:
            if checkpoint_id is None:
                await core.ensure_loaded()
            else:
                await core.apply(await core.fetch(checkpoint_id))
            if steer is not None:
                steer.resumed = core.content.status is RunStatus.PAUSED
            return False

        return self._begin(prepare, timeout, steer)

    # -- checkpoints ------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the head from the store (done implicitly by the first awaited call).

        Raises:
            ConcurrentRunError: a run of this session is in progress.
            GraphMismatchError: the latest checkpoint was made by a different graph.
        """
        self.core.check_guard("load")
        await self.core.ensure_loaded()

    async def history(self) -> list[CheckpointInfo]:
        """Every checkpoint of the session, all branches, newest first by save order."""
        core = self.core
        await core.ensure_loaded()
        cpr = core.checkpointer or core.private
        if cpr is None:
            return []
        return await cpr.store.list(self.id)

    async def create_checkpoint(self) -> str:
        """Save the idle session as a new checkpoint and return its id.

        Without a store the checkpoint goes to a list private to this session.

        Raises:
            ConcurrentRunError: a run is in progress.
            NotIdleError: messages are queued (after a failed or interrupted run).
        """
        core = self.core
        core.check_guard("create_checkpoint")
        await core.ensure_loaded()
        core.check_queue("create_checkpoint")
        c = core.content
        cp = await core.save_whole(core.writer(), c.state, {}, {"kind": "checkpoint"})
        c.head = cp.info.id
        return cp.info.id

    async def update_state(
        self, values: Mapping[str, Any], *, checkpoint: CheckpointRef | None = None
    ) -> str:
        """Write state keys as a new checkpoint, the session's new head; returns its id.

        The values go on top of the head, or of `checkpoint` (an id, a
        `CheckpointInfo` or a `Checkpoint`): then the new checkpoint is a fork
        whose parent is that checkpoint, and the branch it came from is
        unchanged. `sg.DELETE` as a value deletes the key. Queued messages
        (of a `PAUSED` run), pending requests, executor snapshots and the
        status are kept, so `resume()` goes on with the new values. Without a
        store the checkpoint goes to the session's private list, as with
        `create_checkpoint()`. The session is unchanged if it fails.

        Raises:
            ConcurrentRunError: a run is in progress (one started meanwhile raises it).
            TypeError: a key is not a str.
            SerializationError: a value cannot be stored (a type the workflow does not know).
            CheckpointNotFoundError: no such checkpoint.
            GraphMismatchError: it was made by a different graph.
        """
        return await update_state(self.core, values, checkpoint)

    async def restore(self, checkpoint_id: CheckpointRef) -> None:
        """Move the session to a checkpoint without running (saved as a new head).

        Raises:
            ConcurrentRunError: a run is in progress.
            CheckpointNotFoundError: no such checkpoint.
            GraphMismatchError: it was made by a different graph.
        """
        core = self.core
        core.check_guard("restore")
        cp = await core.fetch(checkpoint_id)
        counted = core.content.superstep
        await core.apply(cp)
        if _is_fresh(cp):  # like reset(): the count of supersteps goes on over the session's life
            core.content.superstep = max(counted, core.content.superstep)
        if core.checkpointer is not None:
            await core.save_head(core.checkpointer, parent=cp.info.id)

    async def reset(self) -> None:
        """Return to a clean initial state, atomically; with a store, saved as a new root.

        Fresh executors are built first; if that (or the save) fails, the
        session is unchanged.
        """
        core = self.core
        core.check_guard("reset")
        core.loaded = True
        n = len(self.workflow.blueprint.prototypes)
        superstep = core.content.superstep
        fresh = SessionContent(
            n, executors=[core.new_executor(i) for i in range(n)], superstep=superstep
        )
        fresh.head = core.content.head
        cpr = core.checkpointer
        if cpr is not None:
            old = cpr.mark()
            cpr.forget()
            try:
                cp = cpr.build(
                    written={},
                    snapshots={},
                    queue={},
                    fanin={},
                    superstep=superstep,
                    status=RunStatus.IDLE,
                    parent=None,
                    full=True,
                    pending={},
                    maps=MapBuffers(),
                    trace={"kind": "reset"},
                )
                await cpr.save(cp)
            except BaseException:
                cpr.rewind(old)
                raise
            fresh.head = cp.info.id
        core.adopt(fresh)
        if core.journal is not None:  # what a discarded superstep recorded goes too
            await core.journal.discard_all()

    async def prune(self, retention: Retention | None = None) -> list[str]:
        """Delete old checkpoints by the session's retention policy (or `retention`).

        Keeps the newest `keep_last` checkpoints of every branch, the head and
        every checkpoint that holds pending requests. Returns the deleted ids.

        Raises:
            ConcurrentRunError: a run is in progress.
            ValueError: no policy was given here or to `Workflow.session`.
        """
        self.core.check_guard("prune")
        policy = retention or self.core.retention
        if policy is None:
            raise ValueError("prune() needs a Retention policy: pass one here or to session()")
        return await self.core.prune(policy)

    async def checkpoint(self, checkpoint_id: CheckpointRef | None = None) -> Checkpoint:
        """The checkpoint `checkpoint_id` (the head when None), decoding this workflow's types.

        `.state` then gives your own classes back, not only builtin values.

        Raises:
            CheckpointNotFoundError: no such checkpoint, or the session has none yet.
        """
        core = self.core
        await core.ensure_loaded()
        ref = checkpoint_id if checkpoint_id is not None else core.content.head
        if ref is None:
            raise CheckpointNotFoundError(
                f"session {self.id!r} has no checkpoint yet: it has a store only when opened "
                "with one, and saves one when a run starts (or use create_checkpoint())"
            )
        return (await core.fetch(ref)).with_types(self.workflow.types)

    # -- internals ------------------------------------------------------------------------

    def _begin(
        self,
        prepare: Callable[[], Awaitable[bool]],
        timeout: float | None,
        steer: Steering | None = None,
    ) -> Run:
        limit = timeout if timeout is not None else self.workflow.run_timeout
        return Run(RunExecution(self.core, prepare, limit, steer))  # takes the guard

    def __repr__(self) -> str:
        return f"<Session {self.id!r} of {self.workflow.name!r} {self.status.name}>"


def _is_fresh(cp: Checkpoint) -> bool:
    """True for the checkpoint of a fresh session: no state, snapshots, messages or requests."""
    return not (
        cp.encoded_state or cp.snapshot_ids or cp.has_queued_messages or cp.has_pending_requests
    )
