"""The `Run` handle: await it for a `RunResult`, iterate it for live events.

A `Run` starts when it is first awaited or iterated; one that never is does
nothing. Awaited, the superstep loop runs inline in the awaiting task (no
extra task). Iterated, a driver task owned by the `Run` executes the loop and
hands events to the consumer through a `Channel` (`_sinks`) as they happen; the driver
pauses at a superstep barrier while the consumer has not taken the events of
the previous superstep.

The run guard of the session is released when the run ends in any way. The
driver task never references the `Run`, so a dropped `Run` is collected at
once and its `__del__` cancels the driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, cast

from ._errors import WorkflowError
from ._events import Event, RunStatus
from ._requests import RunResult, recorded_result
from ._runner import Runner
from ._scope import enter, leave
from ._sinks import Channel, ListSink, Sink

if TYPE_CHECKING:
    from types import TracebackType

    from ._core import SessionCore
    from ._steering import Steering

__all__ = ["Run"]


class RunExecution:
    """Everything a run's loop needs; shared by the inline and the driver path.

    The execution is also the identity token of the session's run guard: the
    session's `active` is this object while the run holds the guard, and only
    this object can clear it (a late finalizer of an old run never touches a newer one).

    Once the run has ended, the execution lets go of the session and of the
    task that awaited it: a finished `Run` keeps only its result alive, so a
    one-shot session is freed as soon as its run ends (and no cycle through
    the awaiting task is left for the garbage collector).
    """

    __slots__ = (
        "abandoned",
        "cancel_requested",
        "error",
        "finished",
        "owner",
        "prepare",
        "result",
        "session",
        "session_id",
        "started",
        "steering",
        "timeout",
        "waiters",
    )

    def __init__(
        self,
        session: SessionCore,
        prepare: Callable[[], Awaitable[bool]],
        timeout: float | None,
        steering: Steering | None = None,
    ) -> None:
        self.session: SessionCore | None = session
        self.steering = steering
        self.session_id = session.id
        self.prepare = prepare
        self.timeout = timeout
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self.cancel_requested = False
        self.abandoned = False  # its stream was dropped: it only winds down now
        self.started = False
        self.finished = False
        self.owner: asyncio.Task[Any] | None = None  # the task awaiting an inline run
        self.waiters: list[asyncio.Future[None]] | None = None  # made by wait_finished
        session.active = self

    def release(self) -> None:
        """Give the session's guard back, if this run still holds it."""
        s = self.session
        if s is not None and s.active is self:
            s.active = None

    def make_runner(self, sink: Sink) -> Runner:
        s = self.session
        assert s is not None, "a run starts once"
        self.started = True
        return Runner(s, sink, s.workflow.max_supersteps, self.prepare, self.timeout, self.steering)

    def done(self) -> None:
        """The loop has stopped: release the guard and wake whoever waits in `aclose`."""
        self.finished = True
        self.release()
        self.session = None
        self.owner = None
        self.prepare = _spent
        if self.waiters:
            for w in self.waiters:
                if not w.done():
                    w.set_result(None)
            self.waiters = None

    def cancelled_before_start(self) -> None:
        """A run cancelled before it started: it did nothing and ends `CANCELLED`."""
        s = self.session
        assert s is not None
        self.result = RunResult(
            session_id=s.id,
            outputs=[],
            events=[],
            status=RunStatus.CANCELLED,
            pending_requests=tuple(s.content.pending.values()),
            checkpoint_id=s.content.head,
        )
        self.finished = True

    async def wait_finished(self) -> None:
        if not self.finished:
            waiter = asyncio.get_running_loop().create_future()
            if self.waiters is None:
                self.waiters = []
            self.waiters.append(waiter)
            await waiter

    def finish(self, runner: Runner, status: RunStatus) -> RunResult:
        content = runner.content
        events, taped = runner.sink.recording()
        pending = tuple(content.pending.values())
        self.result = result = recorded_result(
            runner.session_id, pending, content.head, runner.outputs, events, taped, status
        )
        return result

    async def inline(self, run: Run) -> RunResult:
        # `run` stays referenced by this frame: the Run lives as long as its loop does,
        # so its finalizer never sees an awaited run that is still going.
        self.owner = asyncio.current_task()
        # Its emit/record/mark are the tape's own bound methods, which pyright cannot
        # match against the protocol's callables.
        runner = self.make_runner(cast(Sink, ListSink()))
        token = enter(runner.session_id)  # handlers know their session (`_scope`)
        try:
            status = await runner.execute()
            result = self.finish(runner, status)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.cancel_requested and task is not None and task.uncancel() == 0:
                return self.finish(runner, RunStatus.CANCELLED)
            raise
        finally:
            leave(token)
            runner.close()
            self.done()
            del run  # the Run may be collected now
        return result

    async def drive(self, channel: Channel) -> None:
        runner = self.make_runner(channel)
        token = enter(runner.session_id)
        try:
            status = await runner.execute()
            self.finish(runner, status)
        except asyncio.CancelledError:
            self.finish(runner, RunStatus.CANCELLED)
        except Exception as exc:
            self.error = exc
        finally:
            leave(token)
            runner.close()
            self.done()
            channel.close()


async def _spent() -> bool:
    raise AssertionError("a finished run does not start again")


_NEW, _AWAITED, _STREAMING, _CLOSED = range(4)


class Run(Coroutine[Any, Any, RunResult]):
    """One invocation of a session: awaitable (`RunResult`) and async-iterable (events).

    `Run` implements `collections.abc.Coroutine`, so `asyncio.run`,
    `asyncio.gather` and `create_task` take it directly. `async with` closes
    it on exit; `aclose()` and `cancel()` stop it.
    """

    __slots__ = ("__weakref__", "_channel", "_coro", "_exec", "_mode", "_raised", "_task")

    def __init__(self, execution: RunExecution) -> None:
        self._exec = execution
        self._mode = _NEW
        self._coro: Coroutine[Any, Any, RunResult] | None = None
        self._channel: Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._raised = False

    # -- awaiting -----------------------------------------------------------------

    def _coroutine(self) -> Coroutine[Any, Any, RunResult]:
        if self._coro is None:
            if self._mode == _NEW:  # awaited first: the loop runs inline, in one coroutine
                self._mode = _AWAITED
                self._coro = self._exec.inline(self)
            else:
                self._coro = self._await_impl()
        return self._coro

    async def _await_impl(self) -> RunResult:
        if self._mode == _STREAMING:
            assert self._channel is not None
            assert self._task is not None
            self._channel.stop_streaming()
            await self._task
        return self._outcome()

    def _outcome(self) -> RunResult:
        ex = self._exec
        if ex.error is not None:
            raise ex.error
        if ex.result is None:
            raise WorkflowError("this run was closed before it started; it has no result")
        return ex.result

    def __await__(self) -> Generator[Any, None, RunResult]:
        if self._coro is not None and self._exec.finished:
            return self._again().__await__()  # awaiting a finished run again gives its result
        return self._coroutine().__await__()

    async def _again(self) -> RunResult:
        return self._outcome()

    def send(self, value: Any, /) -> Any:
        """Coroutine protocol: advance the run (used by event loops and tasks)."""
        return self._coroutine().send(value)

    def throw(self, typ: Any, val: Any = None, tb: TracebackType | None = None, /) -> Any:
        """Coroutine protocol: raise an exception inside the run."""
        coro = self._coroutine()
        if not self._exec.started:  # thrown in before its first step (a task cancelled early)
            self._exec.release()
        if val is None:
            return coro.throw(typ)
        return coro.throw(val)

    def close(self) -> None:
        """Coroutine protocol: close an awaited run, or stop a run that never started."""
        if self._coro is not None:
            self._coro.close()
        elif self._mode == _NEW:
            self._mode = _CLOSED
            self._exec.release()

    # -- iterating ------------------------------------------------------------------

    def __aiter__(self) -> Run:
        return self

    async def __anext__(self) -> Event:
        if self._mode == _NEW:
            self._mode = _STREAMING
            self._channel = channel = Channel()
            self._task = asyncio.get_running_loop().create_task(self._exec.drive(channel))
        elif self._mode != _STREAMING:
            raise StopAsyncIteration
        channel = self._channel
        assert channel is not None
        while True:
            if channel.buffer:
                event = channel.buffer.popleft()
                if not channel.buffer:
                    channel.wake_producer()
                return event
            if channel.done:
                if self._exec.error is not None and not self._raised:
                    self._raised = True
                    raise self._exec.error
                raise StopAsyncIteration
            channel.waiter = asyncio.get_running_loop().create_future()
            try:
                await channel.waiter
            except asyncio.CancelledError:
                # The consumer's task was cancelled while it waited: cancel the run too.
                if self._task is not None:
                    self._task.cancel()
                raise
            finally:
                channel.waiter = None

    # -- stopping ---------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the run at once: its current superstep is cancelled and nothing of it committed.

        An awaited run then returns a `RunResult` with status `CANCELLED`.
        """
        if self._mode == _NEW:
            self.close()
            self._exec.cancelled_before_start()
        elif self._task is not None:
            self._task.cancel()
        elif self._mode == _AWAITED and self._exec.owner is not None and self._exec.result is None:
            self._exec.cancel_requested = True
            self._exec.owner.cancel()

    async def aclose(self) -> None:
        """Stop the run and wait until its handlers have stopped and the guard is released."""
        if self._mode == _NEW:
            self.close()
            return
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        elif self._mode == _AWAITED:
            self.cancel()
            await self._exec.wait_finished()
            return
        self._mode = _CLOSED

    async def __aenter__(self) -> Run:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        mode = getattr(self, "_mode", _CLOSED)
        if mode == _NEW:
            self._exec.release()
        elif mode == _STREAMING and self._task is not None and not self._task.done():
            # The next run() of the session need not wait for this one to wind down: it
            # takes the guard at once and starts once this run has stopped.
            self._exec.abandoned = True
            self._task.cancel()
        elif mode == _AWAITED and not self._exec.started and self._coro is not None:
            # Awaited but never started, and now dropped with its coroutine: give the
            # guard back (a started run releases it in its own finally).
            self._exec.release()
            self._coro.close()

    @property
    def result(self) -> RunResult | None:
        """The result once the run has finished, else None."""
        return self._exec.result

    def __repr__(self) -> str:
        state = ("new", "awaited", "streaming", "closed")[self._mode]
        return f"<Run session={self._exec.session_id!r} {state}>"
