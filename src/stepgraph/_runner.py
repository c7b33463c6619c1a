"""The superstep loop: executes what the planner decided, then commits at the barrier.

Invariants:
* Messages sent in superstep k are delivered in superstep k+1.
* A superstep commits as a unit at its barrier (state writes, sends, fan-in
  buffers, outputs), executor by executor in declaration order. If any handler
  raises, or the run is cancelled, nothing of it is committed, its sibling
  handlers are cancelled and stateful executors get their snapshots back.
* Every handler task is owned by the superstep (`_group`, with TaskGroup's
  rules); a superstep with a single executor runs it inline, with no task.

The runner works on the session's `SessionContent` and calls its work through
the session's interceptor chains (`_interceptors`): leasing, tracing and
policies wrap the run, superstep, activation and handler calls; the runner
never branches on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._context import Activation
from ._dispatch import (
    HandlerFailure,
    dispatch,
    handle_chains,
    restore,
    routed,
    routed_chain,
    snapshots_after,
    snapshots_before,
)
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
from ._interceptors import RunCall, SuperstepCall, compose
from ._items import Items
from ._map import MapBuffers
from ._requests import Answer, Request
from ._state import commit as commit_state
from ._steering import Paused, Steering
from ._trace import Tracer

if TYPE_CHECKING:
    from ._core import SessionCore
    from ._planner import FanInBuffers, Queue
    from ._sinks import Sink

__all__ = ["TIME_SLICE_S", "Runner"]

TIME_SLICE_S = 0.01
"""A run yields the event loop between supersteps at least this often (seconds)."""


class Runner:
    """Runs one invocation (`run`, `respond` or `resume`) of a session to its end."""

    __slots__ = (
        "activate", "activate_item", "budget", "content", "core", "durable", "handles", "items",
        "outputs", "plan", "prepare", "routes", "session_id", "sink", "stateful", "stateful_at",
        "step", "timeout", "tracer",
    )  # fmt: skip

    def __init__(
        self,
        core: SessionCore,
        sink: Sink,
        budget: int,
        prepare: Callable[[], Awaitable[bool]],
        timeout: float | None = None,
        steering: Steering | None = None,
    ) -> None:
        self.core = core
        self.content = core.content
        self.session_id = core.id
        self.sink = sink
        self.budget = budget
        self.prepare = prepare
        self.timeout = timeout
        bp = core.workflow.blueprint
        self.plan = bp.plan
        self.stateful = bp.any_stateful
        self.stateful_at = bp.stateful
        self.routes = bp.error_routes
        self.durable = core.checkpointer is not None
        self.outputs: list[Any] = []
        layers = core.layers
        if layers:
            self.step = compose(layers, "superstep", self._superstep)
            self.activate = compose(layers, "activation", self._activation)
        else:  # what `compose` gives without layers, without its calls
            self.step = self._superstep
            self.activate = self._activation
        self.tracer = Tracer() if self.durable else None  # each checkpoint tells its superstep
        if steering is not None:  # breakpoints or StateUpdated events: only when asked for
            self.step = steering.wrap(self.step, sink, self._save if self.durable else None)
        handles = core.handles
        if handles is None:
            handles = core.handles = handle_chains(core)
        self.handles = handles
        self.items = self._items(layers) if bp.any_map else None

    def _items(self, layers: Sequence[Any]) -> Items:
        """The map work, only for workflows with a map edge."""
        routes = self.routes
        calls = tuple(
            handle if route is None else routed_chain(handle, route, self.stateful_at)
            for handle, route in zip(self.handles, routes, strict=True)
        )
        items = Items(self.core, self.sink, calls, self.tracer)
        self.activate_item = compose(layers, "activation", items.run) if layers else items.run
        return items

    def execute(self) -> Awaitable[RunStatus]:
        """Run the invocation through the session's run interceptors (lease, tracing)."""
        layers = self.core.layers
        if not layers:
            return self._execute()
        call = RunCall(self.session_id, self.core.workflow, self.content)
        return compose(layers, "run", self._execute)(call)

    def close(self) -> None:
        """Let go of the chains (bound methods of this runner): no cycle is left to collect."""
        self.step = self.activate = _closed
        if self.items is not None:
            self.activate_item = _closed
            self.items = None

    async def _execute(self, call: RunCall | None = None) -> RunStatus:
        """Run supersteps until no message is queued or a breakpoint; return the final status.

        Raises:
            ExecutorFailedError: a handler raised (the session is `FAILED`).
            ConvergenceError: the superstep budget ran out (the session is `FAILED`).
            asyncio.CancelledError: the run was cancelled (the session is `CANCELLED`).
        """
        has_input = await self.prepare()
        self.sink.record((RunStarted, self.session_id))
        try:
            if self.timeout:
                async with asyncio.timeout(self.timeout):
                    await self._supersteps(has_input)
            else:
                await self._supersteps(has_input)
        except Paused:  # stopped at a breakpoint, saved: its messages stay queued
            pass
        except HandlerFailure as failure:
            raise self._handler_failed(failure) from failure.error
        except TimeoutError:  # the run's deadline (handler timeouts arrive wrapped)
            self._end(RunStatus.FAILED)
            raise RunTimeoutError(
                f"run of session {self.session_id!r} exceeded its timeout of {self.timeout} s; "
                f"it is FAILED at superstep {self.content.superstep} with its messages intact: "
                "resume() continues it"
            ) from None
        except (ConvergenceError, CheckpointError, SerializationError):
            self._end(RunStatus.FAILED)  # nothing of the superstep was committed
            raise
        except GeneratorExit:  # closed without a loop to await on: nothing more can be saved
            self._drop_queued()
            raise
        except BaseException:  # cancelled or interrupted
            self._drop_queued()
            if self.core.checkpointer is not None:
                await self._save_cancellation()
            raise
        content = self.content
        status = RunStatus.IDLE_WITH_PENDING_REQUESTS if content.pending else RunStatus.IDLE
        status = RunStatus.PAUSED if content.queue else status  # queued: a breakpoint stopped it
        content.status = status
        retention = self.core.retention
        if retention is not None and self.core.checkpointer is not None:
            await self.core.prune(retention)
        self.sink.record((RunCompleted, status))
        return status

    def _end(self, status: RunStatus) -> None:
        self.content.status = status
        self.sink.record((RunCompleted, status))

    def _handler_failed(self, failure: HandlerFailure) -> ExecutorFailedError:
        eid = self.plan.ids[failure.index]
        err = failure.error
        self.content.status = RunStatus.FAILED
        self.sink.emit(ExecutorFailed(eid, err))
        self.sink.record((RunCompleted, RunStatus.FAILED))
        k = self.content.superstep + 1
        return ExecutorFailedError(
            f"executor {eid!r} raised {type(err).__name__}: {err} (superstep {k} was rolled "
            f"back; session {self.session_id!r} is FAILED: call resume() to retry it or reset() "
            "to discard it)",
            executor_id=eid,
            superstep=k,
        )

    async def _supersteps(self, has_input: bool) -> None:
        content = self.content
        sink = self.sink
        if has_input and self.core.checkpointer is not None:
            await self._save(content.superstep, RunStatus.RUNNING, {}, {}, content.queue)
        step = self.step
        call = SuperstepCall(self.session_id, content.superstep, content)  # one per run
        call.resuming = not has_input  # the first superstep of resume() continues a failed one
        steps = 0
        clock = time.monotonic
        held_since = clock()
        while content.queue:
            if steps == self.budget:
                raise ConvergenceError.after(self.session_id, self.budget, self.core.workflow.name)
            steps += 1
            call.number = content.superstep + 1
            await step(call)
            call.resuming = False
            if sink.pauses:
                await sink.barrier()
            if clock() - held_since > TIME_SLICE_S:
                # Supersteps whose handlers never await would hold the event loop for the
                # whole run: between supersteps, give other tasks a turn now and then.
                await asyncio.sleep(0)
                held_since = clock()

    def _drop_queued(self) -> None:
        self.content.drop_queued(RunStatus.CANCELLED)
        self.sink.record((RunCompleted, RunStatus.CANCELLED))

    async def _save_cancellation(self) -> None:
        """Save the cancelled session (its dropped messages gone) as the new head.

        The checkpoint before it still holds them, so resuming that one continues the
        cancelled run. A failure here is swallowed: its last good checkpoint stays the head.
        """
        with contextlib.suppress(CheckpointError, asyncio.CancelledError):
            await self._save(self.content.superstep, RunStatus.CANCELLED, {}, {}, {}, {})

    async def _save(
        self,
        superstep: int,
        status: RunStatus,
        written: dict[str, Any],
        snapshots: dict[str, Any],
        queue: Queue,
        fanin: FanInBuffers | None = None,
        pending: dict[str, Request] | None = None,
        maps: MapBuffers | None = None,
        trace: dict[str, Any] | None = None,
    ) -> None:
        content = self.content
        cpr = self.core.checkpointer
        tracer = self.tracer
        assert cpr is not None
        assert tracer is not None
        cp = cpr.build(
            written=written,
            snapshots=snapshots,
            queue=queue,
            fanin=content.fanin if fanin is None else fanin,
            pending=content.pending if pending is None else pending,
            maps=maps,
            superstep=superstep,
            status=status,
            parent=content.head,
            trace=tracer.note(status) if trace is None else trace,
        )
        await cpr.save(cp)
        content.head = cp.info.id
        self.sink.emit(CheckpointSaved(cp.info.id, cp.info.parent_id, superstep))

    # -- one superstep ----------------------------------------------------------------------

    async def _superstep(self, call: SuperstepCall) -> None:
        sink = self.sink
        k = call.number
        mark = sink.mark()
        if self.tracer is not None:
            self.tracer.start()
        sink.record((SuperstepStarted, k))
        items = self.items
        if items is None:
            acts = call.activations = self._activations(k)
        else:
            acts = call.activations = items.activations(k, self.content, self._plain)
        snapshots = await snapshots_before(acts, self.stateful_at) if self.stateful else ()
        try:
            if items is not None:
                await run_group(self._map_member, acts)
                items.raise_failure(acts)
            elif len(acts) == 1:
                await self.activate(acts[0])
            else:
                await run_group(self._member, acts)  # one task per executor
        except BaseException:
            for act in acts:
                act.closed = True
            sink.forget_since(mark)
            await restore(snapshots)
            raise
        if self.durable:
            self._commit(k, acts, await self._save_superstep(k, acts, mark, snapshots))
        else:
            self._commit(k, acts, None)
        sink.record((SuperstepCompleted, k))

    def _activations(self, k: int) -> list[Activation]:
        """One activation per executor with messages, in declaration order."""
        queue = self.content.queue
        if len(queue) == 1:  # the common case of chains and loops: no sort
            return [self._plain(next(iter(queue)))]
        return [self._plain(i) for i in sorted(queue)]

    def _plain(self, i: int) -> Activation:
        """Executor `i`'s activation over its queued messages, with the session's instance."""
        content = self.content
        ex = content.executors[i]
        if ex is None:
            try:
                ex = self.core.instantiate(i)
            except Exception as exc:
                raise HandlerFailure(i, exc) from exc
        ctx = content.contexts[i]
        assert ctx is not None
        k = content.superstep + 1
        return Activation(i, content.queue[i], k, content.state, self.sink, ex, ctx, content.head)

    async def _map_member(self, act: Activation, group: Group) -> None:
        """A member of a superstep with map items: an item's failure waits for its siblings."""
        if act.item is None:
            await self._member(act, group)
            return
        try:
            await self.activate_item(act)
        except Exception as exc:
            assert self.items is not None
            self.items.failed(act, exc)

    async def _member(self, act: Activation, group: Group) -> None:
        try:
            await self.activate(act)
        except HandlerFailure as failure:
            group.fail(failure)  # siblings are cancelled at once
            raise

    async def _activation(self, act: Activation) -> None:
        """One executor's turn: its messages one at a time, each through its handle chain."""
        i = act.index
        ctx = act.context
        table = self.plan.tables[i]
        eid = ctx.executor_id
        sink = self.sink
        sink.record((ExecutorInvoked, eid, act.superstep))
        tracer = self.tracer  # durable: each checkpoint tells its handlers' timings
        began = tracer.clock() if tracer is not None else 0.0
        handle = self.handles[i]
        route = self.routes[i]
        try:
            ctx.activation = act
            for position, message in enumerate(act.messages):
                cls: type[Any] = type(message)  # pyright: ignore[reportUnknownVariableType]
                if cls is Answer:
                    h = table.resolve_answer(message.request.payload, message.response)
                else:
                    h = table.cached(cls)  # the usual case: a class seen before
                    if h is None:
                        h = table.resolve(message)
                if h is None:
                    raise RoutingError(f"{eid} has no handler for {type(message).__name__}")
                act.message = message
                act.position = position
                act.handler = h
                if handle is dispatch and h.is_async and route is None:
                    await h.invoke(act.executor, message, ctx)  # nothing around it: no frame
                elif route is None:
                    await handle(act)
                else:
                    await routed(act, handle, route, self.stateful_at[act.index])
        except Exception as exc:
            raise HandlerFailure(i, exc) from exc
        finally:
            ctx.activation = None
        sink.record((ExecutorCompleted, eid, act.superstep))
        if tracer is not None:
            tracer.timings.append((eid, None, began, tracer.clock()))

    # -- the barrier ------------------------------------------------------------------------

    async def _save_superstep(
        self, k: int, acts: list[Activation], mark: int, snapshots: Sequence[tuple[Any, Any]]
    ) -> Queue:
        """Durable: nothing is committed unless the superstep's checkpoint is saved."""
        content = self.content
        fanin = {g: [list(b) for b in bufs] for g, bufs in content.fanin.items()}
        queue: Queue = {}
        written: dict[str, Any] = {}
        pending = content.pending
        plan = self.plan
        items = self.items
        maps = None
        if items is not None:
            maps = content.maps.copy() if content.maps is not None else MapBuffers()
            items.commit(acts, queue, fanin, maps)
        for act in acts:
            if act.writes:
                written.update(act.writes)
            if act.sends and items is None:
                plan.commit(act.sends, queue, fanin)
            if act.requests:
                pending = {**pending, **{r.id: r for r in act.requests}}
        try:
            snaps = await snapshots_after(acts, self.core.workflow.blueprint)
            # With nothing queued the run ends here: the checkpoint says how it ends.
            status = (
                RunStatus.RUNNING
                if queue
                else RunStatus.IDLE_WITH_PENDING_REQUESTS
                if pending
                else RunStatus.IDLE
            )
            trace = self.tracer.superstep(self.sink.recording()[0], mark) if self.tracer else None
            await self._save(k, status, written, snaps, queue, fanin, pending, maps, trace)
        except BaseException:
            self.sink.forget_since(mark)
            await restore(snapshots)
            raise
        content.fanin = fanin
        if maps is not None:
            content.maps = maps
        return queue

    def _commit(self, k: int, acts: list[Activation], queue: Queue | None) -> None:
        """Apply the superstep to the session, executor by executor in declaration order.

        `queue` is what the saved checkpoint holds; without a store (None) the sends
        are delivered here, the fan-in buffers filling in place.
        """
        content = self.content
        outputs = self.outputs
        if queue is None:
            queue = {}
            fanin = content.fanin
            plan = self.plan
            if self.items is not None:
                if content.maps is None:
                    content.maps = MapBuffers()
                self.items.commit(acts, queue, fanin, content.maps)
            else:
                for act in acts:
                    if act.sends:
                        plan.commit(act.sends, queue, fanin)
        for act in acts:
            if act.writes:
                commit_state(content.state, act.writes)
            if act.outputs:
                outputs.extend(act.outputs)
            if act.requests:
                for request in act.requests:
                    content.pending[request.id] = request
        content.queue = queue
        content.superstep = k


async def _closed(_: Any) -> None:
    raise AssertionError("a finished run runs no more supersteps")
