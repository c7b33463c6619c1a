"""The runner's map work: items as activations of fresh workers, and their barrier.

Only a workflow with a map edge has an `Items` (the runner of any other
workflow never reaches this module). In a superstep, a map worker's queued
`MapItem`s, and the answers to requests its items asked, each become an
activation of a fresh worker instance with a context of its own, run
concurrently with every other activation (at most `max_concurrency` items of
one batch at a time). Each goes through the worker's handle chain, so
policies, journaling and tracing treat an item like any executor's turn; its
activation key is its position in the worker's queue, which a resumed
superstep has again. Ordinary messages to the worker still go to the
session's instance, one at a time.

A failing item does not cancel its batch's other items: they finish (and,
with a store, record what they did), then the superstep fails with the
failure of the lowest failing activation, so `resume()` re-runs only what
did not finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._context import Activation
from ._dispatch import HandlerFailure
from ._errors import RoutingError
from ._events import ExecutorCompleted, ExecutorInvoked
from ._map import ItemSlot, MapBuffers, MapItem
from ._requests import Answer

if TYPE_CHECKING:
    from ._content import SessionContent
    from ._core import SessionCore
    from ._planner import FanInBuffers, Queue
    from ._sinks import Sink
    from ._trace import Tracer

__all__ = ["Items"]

Call = Callable[[Activation], Awaitable[None]]
Instance = Callable[[int], Activation]


class Items:
    """Builds, runs and commits the map items of one run."""

    __slots__ = ("calls", "core", "failures", "limited", "limits", "plan", "sink", "tracer")

    def __init__(
        self, core: SessionCore, sink: Sink, calls: tuple[Call, ...], tracer: Tracer | None
    ) -> None:
        self.core = core
        self.sink = sink
        self.tracer = tracer  # durable: each item's handler time goes to the checkpoint
        self.plan = core.workflow.blueprint.plan
        self.calls = calls  # per executor: its handler call (handle chain, error route)
        self.limits: dict[tuple[int, int], asyncio.Semaphore] = {}
        self.limited = any(m.max_concurrency is not None for m in self.plan.maps)
        self.failures: list[tuple[Activation, Exception]] = []

    def activations(self, k: int, content: SessionContent, plain: Instance) -> list[Activation]:
        """One activation per executor with ordinary messages, one per item, in order.

        `plain(i)` makes executor `i`'s activation over its ordinary messages (its
        queue as it is: the runner's own activation).
        """
        self.limits = {}
        self.failures = []
        if content.maps is None:
            content.maps = MapBuffers()
        waiting = content.maps.waiting
        workers = self.plan.map_workers
        acts: list[Activation] = []
        queue = content.queue
        for i in sorted(queue):
            messages = queue[i]
            if i not in workers:
                acts.append(plain(i))
                continue
            items: list[Activation] = []
            ordinary: list[Any] = []
            item_of = self.plan.item_of
            for position, message in enumerate(messages):
                cls: type[Any] = type(message)  # pyright: ignore[reportUnknownVariableType]
                if cls is MapItem:
                    slot = item_of(message)
                elif cls is Answer:
                    slot = waiting.get(message.request.id)
                else:
                    slot = None
                if slot is None:
                    ordinary.append(message)
                else:
                    items.append(self._item(i, k, content, message, slot, position))
            if ordinary:
                act = plain(i)
                act.messages = ordinary
                acts.append(act)
            acts.extend(items)
        return acts

    def _item(
        self, i: int, k: int, content: SessionContent, message: Any, slot: ItemSlot, position: int
    ) -> Activation:
        core = self.core
        ex = core.new_executor(i)  # fresh: items never share instance state
        ctx = core.new_context(i)
        act = Activation(i, [message], k, content.state, self.sink, ex, ctx, content.head)
        act.item = slot
        act.position = position
        return act

    async def run(self, act: Activation) -> None:
        """One item's turn (the inner call of its activation chain)."""
        item = act.item
        assert item is not None
        ctx = act.context
        eid = ctx.executor_id
        sink = self.sink
        sink.emit(ExecutorInvoked(eid, act.superstep, item.index))
        message = act.messages[0]
        table = self.plan.tables[act.index]
        if type(message) is MapItem:
            value: Any = message.value
            h = table.cached(value.__class__) or table.resolve(value)
        else:
            value = message
            h = table.resolve_answer(message.request.payload, message.response)
        if h is None:
            raise RoutingError(f"{eid} has no handler for {type(value).__name__}")
        act.message = value
        act.handler = h
        limit = self._limit(item) if self.limited else None
        call, tracer = self.calls[act.index], self.tracer
        ctx.activation = act
        try:
            if limit is None:
                began = tracer.clock() if tracer is not None else 0.0
                await call(act)
            else:
                async with limit:  # an item's time starts once it may run
                    began = tracer.clock() if tracer is not None else 0.0
                    await call(act)
        finally:
            ctx.activation = None
        if tracer is not None:
            tracer.timings.append((eid, item.index, began, tracer.clock()))
        sink.emit(ExecutorCompleted(eid, act.superstep, item.index))

    def _limit(self, item: ItemSlot) -> asyncio.Semaphore | None:
        n = self.plan.maps[item.group].max_concurrency
        if n is None:
            return None
        key = (item.group, item.batch)
        limit = self.limits.get(key)
        if limit is None:
            limit = self.limits[key] = asyncio.Semaphore(n)
        return limit

    def failed(self, act: Activation, error: Exception) -> None:
        """An item failed: its siblings go on; the superstep fails once all have ended."""
        self.failures.append((act, error))

    def raise_failure(self, acts: list[Activation]) -> None:
        """Raise the failure of the first failed item in activation order (never timing).

        Raises:
            HandlerFailure: an item failed.
        """
        if not self.failures:
            return
        order = {id(a): n for n, a in enumerate(acts)}
        act, exc = min(self.failures, key=lambda f: order[id(f[0])])
        raise HandlerFailure(act.index, exc) from exc

    def commit(
        self, acts: list[Activation], queue: Queue, fanin: FanInBuffers, maps: MapBuffers
    ) -> None:
        """Route the superstep's sends, in activation order; complete the batches."""
        plan = self.plan
        for act in acts:
            if act.sends:
                plan.commit(act.sends, queue, fanin, maps)
            item = act.item
            if item is not None:
                message = act.messages[0]
                answered = message.request.id if type(message) is Answer else None
                plan.settle(maps, item, answered, act.requests, queue)
