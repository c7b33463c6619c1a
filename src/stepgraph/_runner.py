"""The superstep loop: executes what the planner decided, then commits at the barrier.

Invariants:
* Messages sent in superstep k are delivered in superstep k+1.
* A superstep commits as a unit at its barrier (state writes, sends, fan-in
  buffers, outputs), executor by executor in declaration order. If any handler
  raises, or the run is cancelled, nothing of it is committed, its sibling
  handlers are cancelled and stateful executors get their snapshots back.
* Every handler task is owned by the superstep (`_group`, with TaskGroup's
  rules); a superstep with a single executor runs it inline, with no task.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from . import _state
from ._attempts import invoke_with_policy
from ._context import Activation, Context, SyncContext
from ._errors import (
    CheckpointError,
    ConvergenceError,
    ExecutorFailedError,
    RoutingError,
    RunTimeoutError,
    SerializationError,
)
from ._events import (
    CheckpointSaved,
    ExecutorCompleted,
    ExecutorFailed,
    ExecutorInvoked,
    RunCompleted,
    RunStarted,
    RunStatus,
    SuperstepCompleted,
    SuperstepStarted,
)
from ._group import Group, run_group
from ._handlers import HandlerSpec
from ._leasing import holding
from ._planner import FanInBuffers, Queue
from ._requests import Answer, Request

if TYPE_CHECKING:
    from ._session import Session
    from ._sinks import Sink

__all__ = ["TIME_SLICE_S", "Runner"]

TIME_SLICE_S = 0.01
"""A run yields the event loop between supersteps at least this often (seconds)."""


class _HandlerFailure(Exception):
    """Internal: carries the failing executor's index out of a task group."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


class Runner:
    """Runs one invocation (`run`, `respond` or `resume`) of a session to its end."""

    __slots__ = ("budget", "outputs", "plan", "prepare", "session", "sink", "timeout")

    def __init__(
        self,
        session: Session,
        sink: Sink,
        budget: int,
        prepare: Callable[[], Awaitable[bool]],
        timeout: float | None = None,
    ) -> None:
        self.timeout = timeout
        self.session = session
        self.sink = sink
        self.budget = budget
        self.prepare = prepare
        self.plan = session.workflow._plan
        self.outputs: list[Any] = []

    def execute(self) -> Coroutine[Any, Any, RunStatus]:
        """Run the invocation (under a lease, in a span, when the session asks for them).

        A plain function returning the innermost coroutine that is needed, so the
        common case (no lease, no tracing) awaits one coroutine, not three.
        """
        s = self.session
        if s._lease_policy is not None:
            return self._leased()
        if s._tracer is not None:
            return self._traced()
        return self._execute()

    async def _leased(self) -> RunStatus:
        """Run the invocation holding the session's lease in its store."""
        s = self.session
        assert s._lease_policy is not None
        async with holding(s, s._lease_policy) as lease:
            s._lease = lease
            try:
                await s._refresh_head()  # another process may have moved the session
                return await self._traced()
            finally:
                s._lease = None

    async def _traced(self) -> RunStatus:
        """Run the invocation, inside a `stepgraph.run` span when the session is traced."""
        s = self.session
        tracer = s._tracer
        if tracer is None:
            return await self._execute()
        attributes = {
            "stepgraph.session_id": s.id,
            "stepgraph.workflow": s.workflow.name,
            "stepgraph.signature": s.workflow.signature,
        }
        with tracer.span("stepgraph.run", attributes) as span:
            status = await self._execute()
            span.set_attribute("stepgraph.status", status.name)
            if s._head is not None:
                span.set_attribute("stepgraph.checkpoint_id", s._head)
            return status

    async def _execute(self) -> RunStatus:
        """Run supersteps until no message is queued; return the final status.

        Raises:
            ExecutorFailedError: a handler raised (the session is `FAILED`).
            ConvergenceError: the superstep budget ran out (the session is `FAILED`).
            asyncio.CancelledError: the run was cancelled (the session is `CANCELLED`).
        """
        s = self.session
        sink = self.sink
        has_input = await self.prepare()
        sink.record((RunStarted, s.id))
        try:
            if self.timeout:
                async with asyncio.timeout(self.timeout):
                    await self._supersteps(has_input)
            else:
                await self._supersteps(has_input)
        except _HandlerFailure as failure:
            s._status = RunStatus.FAILED
            eid = self.plan.ids[failure.index]
            sink.emit(ExecutorFailed(eid, failure.error))
            sink.record((RunCompleted, RunStatus.FAILED))
            k = s._superstep + 1
            err = failure.error
            raise ExecutorFailedError(
                f"executor {eid!r} raised {type(err).__name__}: {err} (superstep {k} was rolled "
                f"back; session {s.id!r} is FAILED: call resume() to retry it or reset() to "
                "discard it)",
                executor_id=eid,
                superstep=k,
            ) from err
        except ConvergenceError:
            s._status = RunStatus.FAILED
            sink.record((RunCompleted, RunStatus.FAILED))
            raise
        except TimeoutError:  # the run's deadline (handler timeouts arrive wrapped)
            s._status = RunStatus.FAILED
            sink.record((RunCompleted, RunStatus.FAILED))
            raise RunTimeoutError(
                f"run of session {s.id!r} exceeded its timeout of {self.timeout} s; it is FAILED "
                f"at superstep {s._superstep} with its messages intact: resume() continues it"
            ) from None
        except (CheckpointError, SerializationError):  # nothing of the superstep was committed
            s._status = RunStatus.FAILED
            sink.record((RunCompleted, RunStatus.FAILED))
            raise
        except GeneratorExit:  # closed without a loop to await on: nothing more can be saved
            self._drop_queued(RunStatus.CANCELLED)
            raise
        except BaseException:  # cancelled or interrupted
            self._drop_queued(RunStatus.CANCELLED)
            if s._checkpointer is not None:
                await self._save_cancellation()
            raise
        status = RunStatus.IDLE_WITH_PENDING_REQUESTS if s._pending else RunStatus.IDLE
        s._status = status
        if s._retention is not None and s._checkpointer is not None:
            await s._prune(s._retention)
        sink.record((RunCompleted, status))
        return status

    async def _supersteps(self, has_input: bool) -> None:
        s = self.session
        sink = self.sink
        superstep = self._superstep_body if s._tracer is None else self._superstep
        steps = 0
        if has_input and s._checkpointer is not None:
            await self._save(s._superstep, RunStatus.RUNNING, {}, {}, s._queue, s._fanin)
        clock = time.monotonic
        held_since = clock()
        while s._queue:
            if steps == self.budget:
                raise ConvergenceError(
                    f"session {s.id!r} still had messages queued after {self.budget} "
                    f"supersteps (max_supersteps of workflow {s.workflow.name!r}); "
                    "call session.resume() to grant another budget, raise max_supersteps "
                    "in build(), or check the graph for an unintended cycle"
                )
            steps += 1
            await superstep()
            if sink.pauses:
                await sink.barrier()
            if clock() - held_since > TIME_SLICE_S:
                # Supersteps whose handlers never await would hold the event loop for the
                # whole run: between supersteps, give other tasks a turn now and then.
                await asyncio.sleep(0)
                held_since = clock()

    def _drop_queued(self, status: RunStatus) -> None:
        s = self.session
        for messages in s._queue.values():
            for message in messages:
                if type(message) is Answer:  # an undelivered answer: the question is open again
                    s._pending[message.request.id] = message.request
        s._queue = {}
        s._fanin = {}
        s._status = status
        self.sink.record((RunCompleted, status))

    async def _save_cancellation(self) -> None:
        """Save the cancelled session (its dropped messages gone) as the new head.

        The checkpoint before it still holds them, so resuming that one
        continues the cancelled run. A failure here is swallowed: the run is
        being cancelled, and its last good checkpoint stays the head.
        """
        s = self.session
        with contextlib.suppress(CheckpointError, asyncio.CancelledError):
            await self._save(s._superstep, RunStatus.CANCELLED, {}, {}, {}, {})

    async def _save(
        self,
        superstep: int,
        status: RunStatus,
        written: dict[str, Any],
        snapshots: dict[str, Any],
        queue: Queue,
        fanin: FanInBuffers,
        pending: dict[str, Request] | None = None,
    ) -> None:
        s = self.session
        cpr = s._checkpointer
        assert cpr is not None
        cp = cpr.build(
            written=written,
            snapshots=snapshots,
            queue=queue,
            fanin=fanin,
            pending=s._pending if pending is None else pending,
            superstep=superstep,
            status=status,
            parent=s._head,
        )
        await cpr.save(cp)
        s._head = cp.info.id
        self.sink.emit(CheckpointSaved(cp.info.id, cp.info.parent_id, superstep))

    async def _superstep(self) -> None:
        s = self.session
        tracer = s._tracer
        if tracer is None:
            return await self._superstep_body()
        with tracer.span("stepgraph.superstep", {"stepgraph.superstep": s._superstep + 1}) as span:
            await self._superstep_body()
            if s._head is not None:
                span.set_attribute("stepgraph.checkpoint_id", s._head)
        return None

    async def _superstep_body(self) -> None:
        s = self.session
        sink = self.sink
        queue = s._queue
        k = s._superstep + 1
        mark = sink.mark()
        sink.record((SuperstepStarted, k))
        committed = s._state
        if len(queue) == 1:  # the common case of chains and loops
            ((only, messages),) = queue.items()
            acts = [Activation(only, messages, k, committed, sink)]
        else:
            acts = [Activation(i, queue[i], k, committed, sink) for i in sorted(queue)]
        snapshots = await self._snapshots(acts) if s.workflow._any_stateful else []
        try:
            invoke = self._invoke_body if s._tracer is None else self._invoke
            if len(acts) == 1:
                await invoke(acts[0], None)
            else:
                await run_group(invoke, acts)  # one task per executor
        except BaseException:
            for act in acts:
                act.closed = True
            self.sink.forget_since(mark)
            await self._restore(snapshots)
            raise
        # The barrier: commit executor by executor in declaration order.
        plan = self.plan
        new_queue: dict[int, list[Any]] = {}
        if s._checkpointer is None:
            fanin = s._fanin
            for act in acts:
                if act.sends:
                    plan.commit(act.sends, new_queue, fanin)
        else:
            # Durable: nothing is committed unless the checkpoint is saved.
            fanin = {g: [list(b) for b in bufs] for g, bufs in s._fanin.items()}
            written: dict[str, Any] = {}
            pending = s._pending
            for act in acts:
                if act.writes:
                    written.update(act.writes)
                if act.sends:
                    plan.commit(act.sends, new_queue, fanin)
                if act.requests:
                    pending = {**pending, **{r.id: r for r in act.requests}}
            try:
                snaps = await self._ran(acts)
                # With nothing queued the run ends here: the checkpoint says how it ends.
                status = (
                    RunStatus.RUNNING
                    if new_queue
                    else RunStatus.IDLE_WITH_PENDING_REQUESTS
                    if pending
                    else RunStatus.IDLE
                )
                await self._save(k, status, written, snaps, new_queue, fanin, pending)
            except BaseException:
                self.sink.forget_since(mark)
                await self._restore(snapshots)
                raise
            s._fanin = fanin
        outputs = self.outputs
        for act in acts:
            if act.writes:
                _state.commit(committed, act.writes)
            if act.outputs:
                outputs.extend(act.outputs)
            if act.requests:
                for request in act.requests:
                    s._pending[request.id] = request
        s._queue = new_queue
        s._superstep = k
        if s._tracer is not None:
            self._link(acts)
        sink.record((SuperstepCompleted, k))

    def _link(self, acts: list[Activation]) -> None:
        """Remember which invocations sent to whom: receivers' spans link to them."""
        links: dict[int, list[Any]] = {}
        for act in acts:
            for target, _ in act.sends:
                index = target if isinstance(target, int) else target.target
                bucket = links.setdefault(index, [])
                if act.span is not None and act.span not in bucket:
                    bucket.append(act.span)
        self.session._links = links

    async def _invoke(self, act: Activation, group: Group | None) -> None:
        s = self.session
        tracer = s._tracer
        if tracer is None:
            return await self._invoke_body(act, group)
        eid = self.plan.ids[act.index]
        attributes = {
            "stepgraph.executor_id": eid,
            "stepgraph.superstep": act.superstep,
            "stepgraph.session_id": s.id,
            "stepgraph.messages": len(act.messages),
        }
        links = s._links.get(act.index, ())
        with tracer.span(f"stepgraph.executor {eid}", attributes, links) as span:
            act.span = span.get_span_context()
            await self._invoke_body(act, group)
        return None

    async def _invoke_body(self, act: Activation, group: Group | None) -> None:
        s = self.session
        i = act.index
        ex = s._executors[i]
        if ex is None:
            ex = s._instantiate(i)
        ctx = s._contexts[i]
        assert ctx is not None
        table = self.plan.tables[i]
        eid = self.plan.ids[i]
        sink = self.sink
        sink.record((ExecutorInvoked, eid, act.superstep))
        policy = s.workflow._policies[i]
        guarded = s.workflow._policy_active[i]
        remote = s._backend is not None
        try:
            ctx._act = act
            for message in act.messages:
                cls: type[Any] = type(message)  # pyright: ignore[reportUnknownVariableType]
                if cls is Answer:
                    h = table.resolve_answer(message.request.payload, message.response)
                else:
                    h = table.cached(cls)  # the usual case: a class seen before
                    if h is None:
                        h = table.resolve(message)
                if h is None:
                    raise RoutingError(f"{eid} has no handler for {type(message).__name__}")
                if guarded:  # policies apply to a backend's proxies too (through call)
                    await invoke_with_policy(self, policy, h, ex, message, ctx, act)
                elif remote:  # the executor lives elsewhere (a backend's proxy)
                    await ex.handle(message, ctx)  # type: ignore[attr-defined]
                elif h.is_async:  # the common case, without an extra coroutine
                    await h.invoke(ex, message, ctx)
                else:
                    await self.call(h, ex, message, ctx, act)
        except Exception as exc:
            failure = _HandlerFailure(i, exc)
            if group is not None:
                group.fail(failure)  # siblings are cancelled at once
            raise failure from exc
        finally:
            ctx._act = None
        sink.record((ExecutorCompleted, eid, act.superstep))

    async def call(
        self, h: HandlerSpec, ex: Any, message: Any, ctx: Context[Any, Any], act: Activation
    ) -> None:
        """One handler invocation: async on the loop, sync in a worker thread.

        With a backend, `ex` is its proxy, which runs the handler where it lives.
        """
        if self.session._backend is not None:
            await ex.handle(message, ctx)
        elif h.is_async:
            await h.invoke(ex, message, ctx)
        else:
            s = self.session
            loop = asyncio.get_running_loop()
            sync_ctx = SyncContext(self.plan, act.index, s.id, loop, s._ids)
            sync_ctx._act = act
            await asyncio.to_thread(h.invoke, ex, message, sync_ctx)

    async def _ran(self, acts: list[Activation]) -> dict[str, Any]:
        """Snapshots, after the superstep, of the stateful executors that ran in it."""
        wf = self.session.workflow
        if not wf._any_stateful:
            return {}
        out: dict[str, Any] = {}
        for act in acts:
            ex = self.session._executors[act.index]
            if wf._stateful[act.index] and ex is not None:
                out[self.plan.ids[act.index]] = await ex.snapshot()  # type: ignore[attr-defined]
        return out

    async def _snapshots(self, acts: list[Activation]) -> list[tuple[Any, Any]]:
        wf = self.session.workflow
        if not wf._any_stateful:
            return []
        stateful = wf._stateful
        out: list[tuple[Any, Any]] = []
        s = self.session
        for act in acts:
            if stateful[act.index]:
                ex = s._executors[act.index] or s._instantiate(act.index)
                out.append((ex, await ex.snapshot()))  # type: ignore[attr-defined]
        return out

    async def _restore(self, snapshots: list[tuple[Any, Any]]) -> None:
        for ex, data in snapshots:
            await ex.restore(data)


def new_context(session: Session, index: int) -> Context[Any, Any]:
    """The per-session context of executor `index`."""
    return Context(session.workflow._plan, index, session.id, session._ids)
