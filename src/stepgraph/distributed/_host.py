"""The Ray actor body that runs one executor of one session.

`ExecutorHost` receives the workflow's prototype, makes its own copy with
`prototype.fresh()` and runs handlers on it, one call at a time (an
`asyncio.Lock` serialises `handle`, `snapshot` and `restore`; the actor itself
is async so that `reply` and `cancel` can reach it while a handler runs).

A handler gets a recording context (`RemoteContext`, or `RemoteSyncContext`
for a sync function executor, which runs in a worker thread of the actor)
with the methods of `stepgraph.Context`. Every action becomes an effect on a
queue; `handle` is a streaming generator that yields what is queued as soon
as it is queued, so the session replays events live.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from typing import Any

from .._context import Activation, Context, SyncContext, check_user_event
from .._errors import RoutingError, WorkflowError
from .._events import Event
from .._executor import Executor
from .._requests import Answer
from .._state import StateView
from ._effects import (
    Asked,
    Effect,
    Emitted,
    Erased,
    Failed,
    Finished,
    Raised,
    Sent,
    Wrote,
    Yielded,
    pack_error,
    unpack_error,
)

__all__ = ["ExecutorHost", "RemoteContext", "RemoteSyncContext"]


class _Call:
    """One handler call: its effect queue, pending replies and injected errors."""

    def __init__(self, host: ExecutorHost, confirm: bool) -> None:
        self.host = host
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Effect] = asyncio.Queue()
        self.confirm = confirm
        self.closed = False
        self.pending: list[int] = []
        # Exceptions the session raised into the handler, by id, with their tokens.
        self.injected: dict[int, tuple[BaseException, int]] = {}

    def waits(self, message: Any, to: str | None) -> bool:
        """True when a send of `message` must wait for the session's routing outcome."""
        return self.confirm and (to is not None or not self.host.surely_routed(message))

    def check(self) -> None:
        """Refuse use after the handler returned, as an in-process context does."""
        if self.closed:
            raise WorkflowError(
                "a context was used outside its handler; a context is valid only while its "
                "handler runs (do not keep it for later)"
            )

    def push(self, effect: Effect) -> None:
        """Queue an effect from the loop or from the handler's worker thread."""
        self.check()
        if _on_loop(self.loop):
            self.queue.put_nowait(effect)
        else:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, effect)

    def ask(self, make: Callable[[int], Effect]) -> Future[Any]:
        """Queue an effect that waits for the session's reply; returns the reply's future."""
        seq = self.host.next_seq()
        fut: Future[Any] = Future()
        self.host.replies[seq] = fut
        self.pending.append(seq)
        self.push(make(seq))
        return fut

    def outcome(self, reply: Any) -> Any:
        """The reply's value, or raise the exception the session sent back."""
        if isinstance(reply, Raised):
            exc = unpack_error(reply, "stepgraph session")
            self.injected[id(exc)] = (exc, reply.token)
            raise exc
        return reply

    def token(self, exc: BaseException) -> int:
        """The token of `exc` when the session raised it into the handler, else 0."""
        hit = self.injected.get(id(exc))
        return hit[1] if hit is not None and hit[0] is exc else 0

    def close(self) -> None:
        """End the call: unblock a handler thread still waiting for a reply."""
        self.closed = True
        for seq in self.pending:
            fut = self.host.replies.pop(seq, None)
            if fut is not None and not fut.done():
                fut.set_exception(asyncio.CancelledError())


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """True when called on `loop`'s own thread (where queue operations are safe)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class _RecordingState(StateView):
    """`ctx.state` in the actor: reads the shipped state, records every write."""

    __slots__ = ("_call",)

    def __init__(self, committed: dict[str, Any], call: _Call) -> None:
        super().__init__(committed, {})
        self._call = call

    def set(self, key: str, value: Any) -> None:
        super().set(key, value)
        self._call.push(Wrote(key, value))

    def delete(self, key: str) -> None:
        super().delete(key)
        self._call.push(Erased(key))


def _check_event(event: Event) -> None:
    check_user_event(event)


CallInfo = tuple[int, str, str, str]
"""(superstep, session id, executor id, idempotency key) of a handler call."""


class RemoteContext(Context[Any, Any]):
    """The context of an async handler running in a Ray actor (see `stepgraph.Context`).

    `ctx.step` runs its function in the actor without recording it: on the Ray
    backend a step runs again on a retry or a resume (at least once); pass
    `ctx.idempotency_key`, the activation's key from the session, to APIs that
    deduplicate.
    """

    __slots__ = ("_call", "_key", "_step", "_view")

    def __init__(self, call: _Call, state: dict[str, Any], info: CallInfo) -> None:
        # The base initialiser needs the session's plan; only its public slots are set.
        self._call = call
        self._view = _RecordingState(state, call)
        self._step, self.session_id, self.executor_id, self._key = info

    def _live(self) -> Activation:
        raise WorkflowError(f"{self.executor_id}: unsupported context operation in a Ray actor")

    async def step(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` here; not recorded on the Ray backend (see the class)."""
        self._call.check()
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    @property
    def idempotency_key(self) -> str:
        """The activation's key, as `Context.idempotency_key` gives it in the session."""
        return self._key

    async def send(self, message: Any, to: str | None = None) -> None:
        """Send `message`; see `Context.send`."""
        call = self._call
        if not call.waits(message, to):
            call.push(Sent(message, to, 0))
            return
        fut = call.ask(lambda seq: Sent(message, to, seq))
        call.outcome(await asyncio.wrap_future(fut))

    async def yield_output(self, value: Any) -> None:
        """Make `value` an output of the run; see `Context.yield_output`."""
        self._call.push(Yielded(value))

    async def emit(self, event: Event) -> None:
        """Stream a user event; see `Context.emit`."""
        _check_event(event)
        self._call.push(Emitted(event))

    async def request(self, payload: Any, response_type: Any = object) -> str:
        """Ask for outside input; see `Context.request`."""
        fut = self._call.ask(lambda seq: Asked(payload, response_type, seq))
        return self._call.outcome(await asyncio.wrap_future(fut))

    @property
    def state(self) -> StateView:
        """Committed state plus this executor's writes of the current superstep."""
        self._call.check()
        return self._view

    @property
    def superstep(self) -> int:
        """The current superstep number."""
        return self._step


class RemoteSyncContext(SyncContext[Any, Any]):
    """The context of a sync function executor running in a Ray actor's worker thread."""

    __slots__ = ("_call", "_step", "_view")

    def __init__(self, call: _Call, state: dict[str, Any], info: CallInfo) -> None:
        self._call = call
        self._view = _RecordingState(state, call)
        self._step, self.session_id, self.executor_id, _ = info

    def _live(self) -> Activation:
        raise WorkflowError(f"{self.executor_id}: unsupported context operation in a Ray actor")

    def send(self, message: Any, to: str | None = None) -> None:
        """Send `message`; see `Context.send`."""
        call = self._call
        if not call.waits(message, to):
            call.push(Sent(message, to, 0))
            return
        call.outcome(call.ask(lambda seq: Sent(message, to, seq)).result())

    def yield_output(self, value: Any) -> None:
        """Make `value` an output of the run; see `Context.yield_output`."""
        self._call.push(Yielded(value))

    def emit(self, event: Event) -> None:
        """Stream a user event; see `Context.emit`."""
        _check_event(event)
        self._call.push(Emitted(event))

    @property
    def state(self) -> StateView:
        """Committed state plus this executor's writes of the current superstep."""
        self._call.check()
        return self._view

    @property
    def superstep(self) -> int:
        """The current superstep number."""
        return self._step


class ExecutorHost:
    """One executor of one session, living in a Ray actor (wrapped with `ray.remote`).

    `routed` lists the classes whose sends (without `to=`) cannot fail to route:
    the executor has one unconditional successor, which has a plain handler for
    the class or a base of it. Such sends need no confirmation round trip.
    """

    def __init__(
        self, prototype: Executor, executor_id: str, session_id: str, routed: tuple[type, ...]
    ) -> None:
        self._executor = prototype.fresh()
        self._routed = routed
        self._surely: dict[type, bool] = {}
        self._table = self._executor.handler_table()
        self._name = f"{executor_id}@{session_id}"
        self._lock: asyncio.Lock | None = None  # made on the actor's loop, at first use
        self._seq = 0
        self.replies: dict[int, Future[Any]] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._cancelled: set[int] = set()
        self._started = 0  # the newest call id that started (ids grow per proxy)

    def __repr__(self) -> str:
        return f"ExecutorHost({self._name})"  # Ray prefixes the actor's log lines with this

    def surely_routed(self, message: object) -> bool:
        """True when sending `message` without `to=` cannot fail to route."""
        cls = type(message)
        hit = self._surely.get(cls)
        if hit is None:
            hit = self._surely[cls] = any(base in self._routed for base in cls.__mro__)
        return hit

    def next_seq(self) -> int:
        """A fresh reply number."""
        self._seq += 1
        return self._seq

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def ready(self) -> str:
        """Answer once the actor is constructed (used to wait for start-up)."""
        return self._name

    async def handle(
        self,
        call_id: int,
        message: Any,
        state: dict[str, Any],
        info: CallInfo,
        confirm: bool,
    ) -> AsyncIterator[list[Effect]]:
        """Run the handler for `message`, yielding its effects in batches as they occur.

        `info` is (superstep, session id, executor id). The last batch ends with
        `Finished` or `Failed`. With `confirm`, a send whose routing is not
        certain (see `surely_routed`) waits for `reply`; requests always do.
        """
        async with self._locked():
            self._started = max(self._started, call_id)
            if call_id in self._cancelled:
                self._cancelled.discard(call_id)
                return
            call = _Call(self, confirm)
            closing = False
            async with asyncio.TaskGroup() as tg:
                self._running[call_id] = tg.create_task(self._run(call, message, state, info))
                try:
                    while True:
                        batch = [await call.queue.get()]
                        while not call.queue.empty():
                            batch.append(call.queue.get_nowait())
                        yield batch
                        if isinstance(batch[-1], Finished | Failed):
                            break
                except GeneratorExit:  # the stream was closed early: stop the handler
                    closing = True
                    self._running[call_id].cancel()
                finally:
                    self._running.pop(call_id, None)
            if closing:
                raise GeneratorExit

    async def _run(self, call: _Call, message: Any, state: dict[str, Any], info: CallInfo) -> None:
        ex = self._executor
        end: Effect
        try:
            if type(message) is Answer:
                h = self._table.resolve_answer(message.request.payload, message.response)
            else:
                h = self._table.resolve(message)
            if h is None:
                raise RoutingError(f"{info[2]} has no handler for {type(message).__name__}")
            if h.is_async:
                await h.invoke(ex, message, RemoteContext(call, state, info))
            else:
                await asyncio.to_thread(h.invoke, ex, message, RemoteSyncContext(call, state, info))
        except asyncio.CancelledError:
            end = Failed(pack_error(asyncio.CancelledError("cancelled by the session")))
        except BaseException as exc:  # every failure travels back to the session
            end = Failed(pack_error(exc, call.token(exc)))
        else:
            end = Finished()
        call.close()
        call.queue.put_nowait(end)

    async def reply(self, seq: int, outcome: Any) -> None:
        """Deliver the session's answer to a waiting send or request."""
        fut = self.replies.pop(seq, None)
        if fut is not None and not fut.done():
            fut.set_result(outcome)

    async def cancel(self, call_id: int) -> None:
        """Cancel call `call_id`, running or not yet started."""
        task = self._running.get(call_id)
        if task is not None:
            task.cancel()
        elif call_id > self._started:  # not started yet: it returns at once when it does
            self._cancelled.add(call_id)

    async def snapshot(self) -> Any:
        """The executor's `snapshot()`, between handler calls."""
        async with self._locked():
            return await self._executor.snapshot()  # type: ignore[attr-defined]

    async def restore(self, data: Any) -> None:
        """The executor's `restore(data)`, between handler calls."""
        async with self._locked():
            await self._executor.restore(data)  # type: ignore[attr-defined]
