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
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from ._cache import Cache, MemoryCache
from ._checkpoint import Checkpoint, CheckpointInfo
from ._context import Context
from ._durability import Checkpointer, Restored
from ._errors import CheckpointNotFoundError, ConcurrentRunError, NotIdleError
from ._events import RunStatus
from ._executor import Executor
from ._inputs import convert_input, validate_answers
from ._leasing import LeasePolicy, supports_leases
from ._planner import FanInBuffers, Queue
from ._requests import Answer, Request
from ._retention import Retention, prune
from ._run import Run, _Execution
from ._runner import new_context
from .stores.memory import MemoryCheckpointStore

if TYPE_CHECKING:
    from ._backend import Backend
    from ._workflow import Workflow
    from .stores import CheckpointStore
    from .stores._lease import Lease
    from .tracing import Tracer

__all__ = ["Session"]

InT = TypeVar("InT", default=Any)
CheckpointRef = str | CheckpointInfo | Checkpoint


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
    ) -> None:
        self.id = session_id
        self.workflow = workflow
        self.store = store
        self._clock = clock
        self._ids = ids
        n = len(workflow._prototypes)
        self._executors: list[Executor | None] = [None] * n
        self._contexts: list[Context[Any, Any] | None] = [None] * n
        self._state: dict[str, Any] = {}
        self._queue: Queue = {}
        self._fanin: FanInBuffers = {}
        self._pending: dict[str, Request] = {}
        self._loaded = store is None
        if store is not None:
            self._checkpointer = Checkpointer(self, store)
            # One runner per session across processes, when the store arbitrates leases.
            if lease is not False and supports_leases(store):
                self._lease_policy = lease if isinstance(lease, LeasePolicy) else LeasePolicy()
        if retention is not None:
            self._retention = retention
        if backend is not None:
            self._backend = backend
        if tracer is not None:
            self._tracer = tracer
            self._links = {}
        if cache is None and workflow._any_cache:
            cache = MemoryCache()  # cached handlers reuse results within the session
        if cache is not None:
            self._cache = cache

    # Defaults shared by every session until it sets its own (most sessions never do).
    _superstep = 0
    _status = RunStatus.IDLE
    _head: str | None = None
    _active: _Execution | None = None  # the run holding the guard
    _checkpointer: Checkpointer | None = None
    _private: Checkpointer | None = None
    _retention: Retention | None = None
    _backend: Backend | None = None
    _lease_policy: LeasePolicy | None = None
    _lease: Lease | None = None
    _seen: str | None = None  # the store's newest checkpoint when we last looked
    _tracer: Tracer | None = None
    # tracing: span contexts of the last superstep's senders, by receiver
    _links: Mapping[int, list[Any]] = types.MappingProxyType({})
    _cache: Cache | None = None

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

    def run(self, input: InT, *, timeout: float | None = None) -> Run:
        """Start a run with `input` for the start executor; await it or iterate it.

        Raises:
            ConcurrentRunError: a run of this session is in progress.
            NotIdleError: the session holds undelivered messages (resume or reset first);
                for a session not loaded yet, raised when the run starts.
            RoutingError: the start executor has no handler for `input`.

        `timeout` (or the workflow's `run_timeout`) bounds the run: past it the run
        ends `FAILED` at its last committed superstep (`RunTimeoutError`).
        """
        if self._active is not None or self._queue:
            self._check_idle("run")  # raises
        wf = self.workflow
        start = wf._start
        if not wf._plan.accepts(start, input):
            input = convert_input(self.workflow, input)

        async def prepare() -> bool:
            if not self._loaded:
                await self._ensure_loaded()
            self._check_queue("run")
            self._queue = {start: [input]}
            return True

        return self._begin(prepare, timeout)

    def respond(self, answers: Mapping[str, Any], *, timeout: float | None = None) -> Run:
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
        """
        self._check_idle("respond")
        if self._loaded:
            validate_answers(self, answers)

        async def prepare() -> bool:
            await self._ensure_loaded()
            self._check_queue("respond")
            queue: Queue = {}
            index = self.workflow._plan.index
            for request, value in validate_answers(self, answers):
                queue.setdefault(index[request.executor_id.split("/", 1)[0]], []).append(
                    Answer(request, value)
                )
            for request_id in answers:
                del self._pending[request_id]
            self._queue = queue
            return True

        return self._begin(prepare, timeout)

    def resume(
        self, checkpoint_id: CheckpointRef | None = None, *, timeout: float | None = None
    ) -> Run:
        """Continue the session: from memory, or from any checkpoint (time travel).

        Without an id, delivers the undelivered messages of a failed or
        interrupted run (a session with nothing queued ends at once, idle).
        With an id, restores that checkpoint first; the next checkpoint saved
        points at it, starting a branch.

        Raises:
            ConcurrentRunError: a run of this session is in progress.
        """
        self._check_guard("resume")

        async def prepare() -> bool:
            if checkpoint_id is None:
                await self._ensure_loaded()
            else:
                cp = await self._fetch(checkpoint_id)
                await self._apply(cp)
            return False

        return self._begin(prepare, timeout)

    # -- checkpoints ------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the head from the store (done implicitly by the first awaited call).

        Raises:
            ConcurrentRunError: a run of this session is in progress.
            GraphMismatchError: the latest checkpoint was made by a different graph.
        """
        self._check_guard("load")
        await self._ensure_loaded()

    async def history(self) -> list[CheckpointInfo]:
        """Every checkpoint of the session, all branches, newest first by save order."""
        await self._ensure_loaded()
        cpr = self._checkpointer or self._private
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
        self._check_guard("create_checkpoint")
        await self._ensure_loaded()
        self._check_queue("create_checkpoint")
        cpr = self._writer()
        snapshots = await self._snapshots()
        cpr.forget()  # a full checkpoint built from the live session, not from the head's parts
        cp = cpr.build(
            written=self._state,
            snapshots=snapshots,
            queue={},
            fanin=self._fanin,
            superstep=self._superstep,
            status=self._status,
            parent=self._head,
            full=True,
        )
        await cpr.save(cp)
        self._head = cp.info.id
        return cp.info.id

    async def restore(self, checkpoint_id: CheckpointRef) -> None:
        """Move the session to a checkpoint without running (saved as a new head).

        Raises:
            ConcurrentRunError: a run is in progress.
            CheckpointNotFoundError: no such checkpoint.
            GraphMismatchError: it was made by a different graph.
        """
        self._check_guard("restore")
        cp = await self._fetch(checkpoint_id)
        await self._apply(cp)
        if self._checkpointer is not None:
            await self._save_head(self._checkpointer, parent=cp.info.id)

    async def reset(self) -> None:
        """Return to a clean initial state, atomically; with a store, saved as a new root.

        Fresh executors are built first; if that (or the save) fails, the
        session is unchanged.
        """
        self._check_guard("reset")
        self._loaded = True
        fresh = [self._new_executor(i) for i in range(len(self.workflow._prototypes))]
        restored = Restored({}, list(fresh), {}, {}, {}, self._superstep, RunStatus.IDLE)
        if self._checkpointer is not None:
            old = (self._checkpointer.parts, self._checkpointer.depth)
            self._checkpointer.forget()
            try:
                cp = self._checkpointer.build(
                    written={},
                    snapshots={},
                    queue={},
                    fanin={},
                    superstep=self._superstep,
                    status=RunStatus.IDLE,
                    parent=None,
                    full=True,
                )
                await self._checkpointer.save(cp)
            except BaseException:
                self._checkpointer.parts, self._checkpointer.depth = old
                raise
            self._head = cp.info.id
        self._swap(restored)

    async def prune(self, retention: Retention | None = None) -> list[str]:
        """Delete old checkpoints by the session's retention policy (or `retention`).

        Keeps the newest `keep_last` checkpoints of every branch, the head and
        every checkpoint that holds pending requests. Returns the deleted ids.

        Raises:
            ConcurrentRunError: a run is in progress.
            ValueError: no policy was given here or to `Workflow.session`.
        """
        self._check_guard("prune")
        policy = retention or self._retention
        if policy is None:
            raise ValueError("prune() needs a Retention policy: pass one here or to session()")
        return await self._prune(policy)

    async def _prune(self, policy: Retention) -> list[str]:
        cpr = self._checkpointer or self._private
        if cpr is None:
            return []
        return await prune(cpr.store, self.id, self._head, policy.keep_last)

    async def checkpoint(self, checkpoint_id: CheckpointRef | None = None) -> Checkpoint:
        """The checkpoint `checkpoint_id` (the head when None), decoding this workflow's types.

        `.state` then gives your own classes back, not only builtin values.

        Raises:
            CheckpointNotFoundError: no such checkpoint, or the session has none yet.
        """
        await self._ensure_loaded()
        ref = checkpoint_id if checkpoint_id is not None else self._head
        if ref is None:
            raise CheckpointNotFoundError(
                f"session {self.id!r} has no checkpoint yet: it has a store only when opened "
                "with one, and saves one when a run starts (or use create_checkpoint())"
            )
        return (await self._fetch(ref)).with_types(self.workflow.types)

    # -- internals ------------------------------------------------------------------------

    def _check_guard(self, what: str) -> None:
        if self._active is not None:
            raise ConcurrentRunError(
                f"session {self.id!r} already has a run in progress; await it, close it, or "
                f"use another session before calling {what}()"
            )

    def _check_queue(self, what: str) -> None:
        if self._queue:
            raise NotIdleError(
                f"session {self.id!r} holds undelivered messages of a run that did not finish "
                f"(status {self._status.name}); call resume() to continue it or reset() to "
                f"discard it before {what}()"
            )

    def _check_idle(self, what: str) -> None:
        self._check_guard(what)
        self._check_queue(what)

    async def _ensure_loaded(self) -> None:
        if self._loaded or self._checkpointer is None:
            return
        cp = await self._checkpointer.store.latest(self.id)
        if cp is not None:
            await self._apply(cp)
            self._seen = cp.info.id
        self._loaded = True

    async def _refresh_head(self) -> None:
        """Under a fresh lease: adopt what another process saved since we last looked.

        `_seen` is the store's newest checkpoint when this session last loaded or
        saved. A newer one means another process ran the session meanwhile; a
        session deliberately moved to an older checkpoint (time travel) is not
        moved back as long as nobody else saved.
        """
        if self._checkpointer is None:
            return
        store = self._checkpointer.store
        newest = await store.list(self.id, limit=1)  # an id is enough unless it moved
        latest_id = newest[0].id if newest else None
        if latest_id is not None and self._seen is not None and latest_id != self._seen:
            await self._apply(await store.load(latest_id))
        self._seen = latest_id

    async def _fetch(self, ref: CheckpointRef) -> Checkpoint:
        if isinstance(ref, Checkpoint):
            ref = ref.info.id
        elif isinstance(ref, CheckpointInfo):
            ref = ref.id
        cpr = self._checkpointer or self._private
        store = cpr.store if cpr is not None else MemoryCheckpointStore()
        return await store.load(ref)

    async def _apply(self, cp: Checkpoint) -> None:
        cpr = self._checkpointer or self._writer()
        restored = await cpr.decode(cp)
        self._swap(restored)
        self._head = cp.info.id
        self._loaded = True
        if self._checkpointer is not None:
            self._checkpointer.adopt(cp)

    def _swap(self, r: Restored) -> None:
        n = len(self.workflow._prototypes)
        self._state = r.state
        self._executors = r.executors
        self._contexts = [new_context(self, i) if r.executors[i] else None for i in range(n)]
        self._queue = r.queue
        self._fanin = r.fanin
        self._pending = r.pending
        self._superstep = r.superstep
        self._status = r.status

    def _writer(self) -> Checkpointer:
        if self._checkpointer is not None:
            return self._checkpointer
        if self._private is None:
            self._private = Checkpointer(self, MemoryCheckpointStore())
        return self._private

    async def _snapshots(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        wf = self.workflow
        for i, ex in enumerate(self._executors):
            if ex is not None and wf._stateful[i]:
                out[wf._plan.ids[i]] = await ex.snapshot()  # type: ignore[attr-defined]
        return out

    async def _save_head(self, cpr: Checkpointer, *, parent: str | None) -> Checkpoint:
        cp = cpr.build(
            written={},
            snapshots={},
            queue=self._queue,
            fanin=self._fanin,
            superstep=self._superstep,
            status=self._status,
            parent=parent,
        )
        await cpr.save(cp)
        self._head = cp.info.id
        return cp

    def _begin(self, prepare: Callable[[], Awaitable[bool]], timeout: float | None) -> Run:
        limit = timeout if timeout is not None else self.workflow.run_timeout
        return Run(_Execution(self, prepare, limit))  # takes the guard

    def _new_executor(self, index: int) -> Executor:
        """A new executor for slot `index`: the backend's proxy, or a fresh local copy."""
        backend = self._backend
        if backend is not None:
            return backend.instantiate(self, index)
        return self.workflow._prototypes[index].fresh()

    def _instantiate(self, index: int) -> Executor:
        ex = self._new_executor(index)
        self._executors[index] = ex
        self._contexts[index] = new_context(self, index)
        return ex

    def __repr__(self) -> str:
        return f"<Session {self.id!r} of {self.workflow.name!r} {self.status.name}>"
