"""`SessionCore`: the engine's side of a session.

`Session` is the public face; its core owns the session's changing content
(`SessionContent`), its configuration (store, clock, ids, backend, policies)
and its run guard, and is what the run, the runner, the checkpointer and the
backends are handed. Nothing outside reaches into a session's private fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._cache import Cache, MemoryCache
from ._checkpoint import Checkpoint, CheckpointInfo
from ._content import SessionContent
from ._context import Activation, Context
from ._durability import Checkpointer
from ._errors import ConcurrentRunError, NotIdleError
from ._events import RunStatus
from ._executor import Executor
from ._interceptors import Interceptor
from ._journal import Journal, Journaling
from ._lease import lease_store
from ._leasing import LeasePolicy, Leasing
from ._memory import MemoryCheckpointStore
from ._retention import Retention, prune
from ._store import failure_at, record_store
from ._traced import Tracing

if TYPE_CHECKING:
    from ._backend import Backend
    from ._planner import Queue
    from ._store import CheckpointStore
    from ._workflow import Workflow
    from .tracing import Tracer

__all__ = ["CheckpointRef", "SessionCore"]

CheckpointRef = str | CheckpointInfo | Checkpoint


class SessionCore:
    """Everything a session owns but its public methods: content, configuration, guard.

    Attributes:
        id: the session id.
        workflow: the workflow the session runs.
        content: the session's changing content.
        checkpointer: saves checkpoints to the session's store (None without a store).
        active: the run holding the guard (an identity token), or None.
        layers: the interceptors around this session's calls (lease, tracing).
    """

    # No __slots__: the fields most sessions never set are class-level defaults, so
    # opening a one-shot session sets only what it has (W5 opens one per run).
    active: Any = None
    checkpointer: Checkpointer | None = None
    private: Checkpointer | None = None  # create_checkpoint() without a store
    retention: Retention | None = None
    backend: Backend | None = None
    cache: Cache | None = None
    memory: Any = None  # a `stepgraph.agents.MemoryStore`, for `ctx.memory`
    layers: tuple[Interceptor, ...] = ()
    journal: Journal | None = None
    handles: tuple[Callable[[Activation], Awaitable[None]], ...] | None = None
    """Per executor, its handler call in its layers (made by the first run)."""

    def __init__(
        self,
        workflow: Workflow[Any],
        session_id: str,
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
        self.clock = clock
        if memory is not None:
            self.memory = memory
        self.ids = ids
        bp = workflow.blueprint
        self.content = SessionContent.empty(len(bp.prototypes))
        self.loaded = store is None
        if retention is not None:
            self.retention = retention
        if backend is not None:
            self.backend = backend
        if cache is None and bp.any_cache:
            cache = MemoryCache()  # cached handlers reuse results within the session
        if cache is not None:
            self.cache = cache
        if store is None and tracer is None:
            return
        layers: list[Interceptor] = []
        if store is not None:
            self.checkpointer = Checkpointer(self, store)
            leases = lease_store(store)
            # One runner per session across processes, when the store arbitrates leases.
            if lease is not False and leases is not None:
                policy = lease if isinstance(lease, LeasePolicy) else LeasePolicy()
                layers.append(Leasing(self, leases, policy))
        if tracer is not None:
            layers.append(Tracing(tracer))
        if store is not None:  # finished work never runs twice (records in the store)
            self.journal = Journal(session_id, record_store(store))
            layers.append(Journaling(self.journal, bp))
        self.layers = tuple(layers)

    # -- the guard ----------------------------------------------------------------------

    def check_guard(self, what: str) -> None:
        """Raise `ConcurrentRunError` when a run holds the guard."""
        if self.active is not None:
            raise ConcurrentRunError(
                f"session {self.id!r} already has a run in progress; await it, close it, or "
                f"use another session before calling {what}()"
            )

    def take_over(self, what: str) -> Any:
        """Check the guard for a new run: the dropped run it must wait for, or None.

        A run whose stream was dropped is winding down (its cancellation runs in the
        next loop turn); a new run may take the guard at once and start once it ended.

        Raises:
            ConcurrentRunError: a run that was not dropped holds the guard.
        """
        active = self.active
        if active is None:
            return None
        if active.abandoned:
            return active
        self.check_guard(what)  # raises
        return None

    def check_queue(self, what: str) -> None:
        """Raise `NotIdleError` when undelivered messages are queued."""
        if self.content.queue:
            raise NotIdleError(
                f"session {self.id!r} holds undelivered messages of a run that did not finish "
                f"(status {self.content.status.name}); call resume() to continue it or reset() "
                f"to discard it before {what}()"
            )

    def check_idle(self, what: str) -> None:
        """Both checks: no run in progress and nothing queued."""
        self.check_guard(what)
        self.check_queue(what)

    # -- executors ----------------------------------------------------------------------

    def new_executor(self, index: int) -> Executor:
        """A new executor for slot `index`: the backend's proxy, or a fresh local copy."""
        if self.backend is not None:
            return self.backend.instantiate(self, index)
        return self.workflow.blueprint.prototypes[index].fresh()

    def new_context(self, index: int) -> Context[Any, Any]:
        """The per-session context of executor `index`."""
        bp = self.workflow.blueprint
        return Context(bp.plan, index, self.id, self.ids, bp.registry, self.memory)

    def instantiate(self, index: int) -> Executor:
        """Make executor `index` (and its context) of this session."""
        bp = self.workflow.blueprint
        ex = (
            bp.prototypes[index].fresh()
            if self.backend is None
            else self.backend.instantiate(self, index)
        )
        content = self.content
        content.executors[index] = ex
        content.contexts[index] = Context(
            bp.plan, index, self.id, self.ids, bp.registry, self.memory
        )
        return ex

    def adopt(self, content: SessionContent) -> None:
        """Replace the session's content with `content` (decoded, or fresh), contexts made."""
        content.contexts = [
            self.new_context(i) if ex is not None else None
            for i, ex in enumerate(content.executors)
        ]
        self.content.replace_with(content)

    async def snapshots(self) -> dict[str, Any]:
        """Snapshots of every stateful executor the session has made."""
        out: dict[str, Any] = {}
        bp = self.workflow.blueprint
        for i, ex in enumerate(self.content.executors):
            if ex is not None and bp.stateful[i]:
                out[bp.plan.ids[i]] = await ex.snapshot()  # type: ignore[attr-defined]
        return out

    # -- checkpoints --------------------------------------------------------------------

    def writer(self) -> Checkpointer:
        """The session's checkpointer, or its private in-memory one."""
        if self.checkpointer is not None:
            return self.checkpointer
        if self.private is None:
            self.private = Checkpointer(self, MemoryCheckpointStore())
        return self.private

    async def ensure_loaded(self) -> None:
        """Read the head from the store, once."""
        cpr = self.checkpointer
        if self.loaded or cpr is None:
            return
        cp = await cpr.store.latest(self.id)
        if cp is not None:
            await self.apply(cp)
            cpr.seen = cp.info.id
        self.loaded = True

    async def refresh_head(self) -> None:
        """Under a fresh lease: adopt what another process saved since we last looked.

        `seen` is the store's newest checkpoint when this session last loaded or
        saved. A newer one means another process ran the session meanwhile; a
        session deliberately moved to an older checkpoint (time travel) is not
        moved back as long as nobody else saved.
        """
        cpr = self.checkpointer
        if cpr is None:
            return
        newest = await cpr.store.list(self.id, limit=1)  # an id is enough unless it moved
        latest_id = newest[0].id if newest else None
        if latest_id is not None and cpr.seen is not None and latest_id != cpr.seen:
            await self.apply(await cpr.store.load(latest_id))
        cpr.seen = latest_id

    async def fetch(self, ref: CheckpointRef) -> Checkpoint:
        """Load checkpoint `ref` from the session's store (or its private one)."""
        if isinstance(ref, Checkpoint):
            ref = ref.info.id
        elif isinstance(ref, CheckpointInfo):
            ref = ref.id
        cpr = self.checkpointer or self.private
        store = cpr.store if cpr is not None else MemoryCheckpointStore()
        return await store.load(ref)

    async def apply(self, cp: Checkpoint) -> None:
        """Make `cp` the session's content and head (decoded fully before anything changes)."""
        cpr = self.writer()
        restored = await cpr.decode(cp)
        restored.head = cp.info.id
        cpr_store = self.checkpointer.store if self.checkpointer is not None else None
        # A run that failed here left a record saying so: FAILED, not a crash.
        if (
            restored.status is RunStatus.INTERRUPTED
            and cpr_store is not None
            and await failure_at(cpr_store, self.id, cp.info.id) is not None
        ):
            restored.status = RunStatus.FAILED
        self.adopt(restored)
        self.loaded = True
        if self.checkpointer is not None:
            self.checkpointer.adopt(cp)

    async def save_whole(
        self,
        cpr: Checkpointer,
        state: dict[str, Any],
        queue: Queue,
        trace: dict[str, Any] | None = None,
    ) -> Checkpoint:
        """Save the live session, with `state` and `queue`, as a full child of the head
        (`trace`: what made it, see `Checkpoint.trace`).

        Built from the live content, not from the head's parts; the chunks the head
        stores are named again, not re-written. The caller sets the head.
        """
        c = self.content
        snapshots = await self.snapshots()
        cpr.forget(keep_chunks=True)
        cp = cpr.build(
            written=state,
            snapshots=snapshots,
            queue=queue,
            fanin=c.fanin,
            superstep=c.superstep,
            status=c.status,
            parent=c.head,
            full=True,
            trace=trace,
        )
        await cpr.save(cp)
        return cp

    async def save_head(self, cpr: Checkpointer, *, parent: str | None) -> Checkpoint:
        """Save the session as it is (nothing written) as the new head."""
        c = self.content
        cp = cpr.build(
            written={},
            snapshots={},
            queue=c.queue,
            fanin=c.fanin,
            superstep=c.superstep,
            status=c.status,
            parent=parent,
            trace={"kind": "restore", "from": parent},
        )
        await cpr.save(cp)
        c.head = cp.info.id
        return cp

    async def prune(self, policy: Retention) -> list[str]:
        """Apply `policy` to the session's checkpoints; returns the deleted ids."""
        cpr = self.checkpointer or self.private
        if cpr is None:
            return []
        return await prune(cpr.store, self.id, self.content.head, policy.keep_last)
