"""The handler context: how a handler sends, outputs, emits and reads state.

Each executor of a session has one `Context`; during a superstep it points at
that executor's `Activation` (its sends, outputs and state writes, committed
at the barrier). Outside its handler a context refuses to be used, so a stashed
context can never leak messages into a later superstep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Never

from typing_extensions import TypeVar

from . import serde
from ._edges import routing_state
from ._errors import RoutingError, WorkflowError
from ._events import (
    CheckpointSaved,
    Event,
    ExecutorCompleted,
    ExecutorFailed,
    ExecutorInvoked,
    Output,
    RequestIssued,
    RunCompleted,
    RunStarted,
    SuperstepCompleted,
    SuperstepStarted,
)
from ._journal import idempotency_key, run_step
from ._policies import ExecutorRetrying
from ._requests import Request
from ._state import StateView

if TYPE_CHECKING:
    from ._handlers import HandlerSpec
    from ._journal import Journal
    from ._map import ItemSlot
    from ._planner import Plan, Target
    from ._sinks import Sink

__all__ = ["Activation", "Context", "Replay", "SyncContext", "check_user_event"]

SendT = TypeVar("SendT", default=Any)
OutT = TypeVar("OutT", default=Never)
R = TypeVar("R")


_ENGINE_EVENTS: tuple[type[Event], ...] = (
    RunStarted,
    RunCompleted,
    SuperstepStarted,
    SuperstepCompleted,
    ExecutorInvoked,
    ExecutorCompleted,
    ExecutorFailed,
    ExecutorRetrying,
    Output,
    RequestIssued,
    CheckpointSaved,
)


def check_user_event(event: object) -> None:
    """Refuse what `ctx.emit` must not stream: a non-event, or an event only the engine emits.

    Raises:
        TypeError: `event` is not an `sg.Event`, or is one of the engine's own kinds (a
            handler cannot forge `RunCompleted`, `Output`, `RequestIssued`, ...).
    """
    if not isinstance(event, Event):
        raise TypeError(f"ctx.emit takes an sg.Event subclass instance, got {type(event).__name__}")
    if isinstance(event, _ENGINE_EVENTS):
        raise TypeError(
            f"ctx.emit takes your own events; {type(event).__name__} is emitted by the engine "
            "only (use ctx.yield_output for outputs and ctx.request for requests)"
        )


class Activation:
    """One executor's work in one superstep: what it sent, output and wrote.

    It is also the input object of the `activation` and `handle` interceptors:
    while a handler runs, `message` is the message it handles and `handler` the
    handler chosen for it.
    """

    # Hot fields are slots; the rarely set ones are class defaults, overridden per
    # instance only when used (their dict is made on first write), so an activation of
    # a plain workflow sets just what every superstep needs.
    __slots__ = (
        "__dict__",
        "base",
        "closed",
        "committed",
        "context",
        "executor",
        "handler",
        "index",
        "message",
        "messages",
        "outputs",
        "position",
        "requests",
        "sends",
        "sink",
        "superstep",
        "writes",
    )

    attempts: int = 1  # tries of the current handler call (its retry policy sets it)
    journal: Journal | None = None  # with a store: the session's journal
    step_names: set[str] | None = None  # "position:name" of this attempt's steps
    step_results: dict[str, bytes] | None = None  # steps, without a journal
    trace: list[tuple[Any, str | None]] | None = None  # (message, to) for caching
    span: Any = None  # the tracing span context of this invocation, when traced
    item: ItemSlot | None = None  # the map item this activation runs, if any

    def __init__(
        self,
        index: int,
        messages: list[Any],
        superstep: int,
        committed: dict[str, Any],
        sink: Sink,
        executor: Any,
        context: Context[Any, Any],
        base: str | None = None,
    ) -> None:
        self.index = index
        self.base = base  # the checkpoint the superstep started on
        self.messages = messages
        self.superstep = superstep
        self.committed = committed
        self.sink = sink
        self.executor = executor
        self.context = context
        # `message`, `position` (its index in `messages`) and `handler` are set before
        # each handler call and never read before.
        self.message: Any
        self.position: int
        self.handler: HandlerSpec
        self.sends: list[tuple[Target, Any]] = []
        self.outputs: list[Any] = []
        self.writes: dict[str, Any] | None = None
        self.requests: list[Request] | None = None
        self.closed = False

    @property
    def emit(self) -> Callable[[Event], None]:
        """Stream an event (through the run's sink)."""
        return self.sink.emit


class _Base:
    __slots__ = (
        "_ids",
        "_index",
        "_memory",
        "_plan",
        "_registry",
        "activation",
        "executor_id",
        "session_id",
    )

    def __init__(
        self,
        plan: Plan,
        index: int,
        session_id: str,
        ids: Callable[[], str] = lambda: "",
        registry: serde.TypeRegistry | None = None,
        memory: Any = None,
    ) -> None:
        self._plan = plan
        self._index = index
        self._ids = ids
        self._registry = registry
        self._memory = memory
        self.activation: Activation | None = None
        """The activation this context serves while its handler runs, else None (engine use)."""
        self.executor_id: str = plan.ids[index]
        """Id of the executor this context belongs to."""
        self.session_id: str = session_id
        """Id of the session running the executor."""

    def _live(self) -> Activation:
        act = self.activation
        if act is None or act.closed:
            raise WorkflowError(
                f"the context of {self.executor_id!r} was used outside its handler; a context "
                "is valid only while its handler runs (do not keep it for later)"
            )
        return act

    def _send(self, message: Any, to: str | None) -> None:
        act = self.activation
        if act is None or act.closed:
            act = self._live()  # raises
        item = act.item
        if item is None or item.target < 0:
            if self._plan.reads_state[self._index]:
                token = routing_state.set(StateView(act.committed, act.writes or {}))
                try:
                    targets = self._plan.route(self._index, message, to)
                finally:
                    routing_state.reset(token)
            else:
                targets = self._plan.route(self._index, message, to)
        else:  # an item of a map with a collector: into its slot
            targets = [self._plan.collect(item, message, to)]
        if act.trace is not None:
            act.trace.append((message, to))
        if len(targets) == 1:
            act.sends.append((targets[0], message))
        else:
            act.sends.extend((t, message) for t in targets)

    def _output(self, value: Any) -> None:
        act = self.activation
        if act is None or act.closed:
            act = self._live()  # raises
        act.outputs.append(value)
        act.sink.record((Output, self.executor_id, value))

    def _emit(self, event: Event) -> None:
        check_user_event(event)
        self._live().emit(event)

    def _request(self, payload: Any, response_type: Any) -> str:
        self._live()
        if not self._plan.tables[self._index].takes_answers(payload, response_type):
            wanted = getattr(response_type, "__name__", response_type)
            raise RoutingError(
                f"{self.executor_id} asked for a {wanted} about a {type(payload).__name__}, "
                "but has no @response_handler taking "
                "(that payload, that answer); add one so the answer has somewhere to go"
            )
        return self._surface(Request(self._ids(), self.executor_id, payload, response_type))

    def forward_request(self, request: Request) -> str:
        """Make a request raised elsewhere (a child workflow) pending here, keeping its id.

        Committed with the superstep like `request()`; `RequestIssued` is emitted at once.
        For executors that compose others (`SubWorkflow`); handlers use `request()`.
        """
        return self._surface(request)

    def new_id(self) -> str:
        """A new unique id from the session's id factory (deterministic when injected)."""
        return self._ids()

    @property
    def successors(self) -> tuple[str, ...]:
        """Ids of the executors this one has outgoing edges to, in declaration order."""
        return self._plan.successors(self._index)

    def _surface(self, request: Request) -> str:
        """Record a pending request (committed with the superstep) and announce it."""
        act = self._live()
        if act.requests is None:
            act.requests = []
        act.requests.append(request)
        act.emit(RequestIssued(request))
        return request.id

    @property
    def state(self) -> StateView:
        """Committed state plus this executor's writes of the current superstep."""
        act = self._live()
        if act.writes is None:
            act.writes = {}
        return StateView(act.committed, act.writes)

    @property
    def memory(self) -> Any:
        """The long-term memory of `wf.session(..., memory=store)`: a
        `stepgraph.agents.MemoryStore` shared across sessions (it outlives this one).

        Raises:
            WorkflowError: the session was opened without one.
        """
        if self._memory is None:
            raise WorkflowError(
                f"{self.executor_id!r} used ctx.memory, but session {self.session_id!r} has "
                "no memory store: open it with wf.session(..., memory=MemoryStore...())"
            )
        return self._memory

    @property
    def superstep(self) -> int:
        """The current superstep number, counted over the session's whole life."""
        return self._live().superstep

    @property
    def idempotency_key(self) -> str:
        """A key that is the same for this activation across retries, resumes and restarts.

        Pass it to APIs that deduplicate on a key: it closes the one window
        `ctx.step` cannot, a crash after the call finished but before its
        result was recorded.
        """
        return idempotency_key(self._live())


class Context(_Base, Generic[SendT, OutT]):
    """What a handler uses to act: `Context[SendT, OutT]`.

    `SendT` is what the handler may send (checked against edges at build time;
    `None` means it sends nothing) and `OutT` what it may yield as output.
    `Context[S]` means `Context[S, Never]`.
    """

    __slots__ = ()

    async def send(self, message: SendT, to: str | None = None) -> None:
        """Send `message` along every outgoing edge whose condition holds and target accepts it.

        Delivered in the next superstep. `to=` narrows delivery to one direct
        successor, which must accept the message.

        Raises:
            RoutingError: when the message reaches no target.
        """
        self._send(message, to)

    async def yield_output(self, value: OutT) -> None:
        """Make `value` an output of the run (emits an `Output` event at once)."""
        self._output(value)

    async def emit(self, event: Event) -> None:
        """Stream a user event (an `sg.Event` subclass instance) to the run's consumer."""
        self._emit(event)

    async def step(
        self,
        name: str,
        fn: Callable[..., Awaitable[R]] | Callable[..., R],
        /,
        *args: Any,
        **kwargs: Any,
    ) -> R:
        """Run `fn(*args, **kwargs)` (sync or async) once, recording its result.

        When this activation runs again (a retry, a `resume()` after a failure,
        a restart after a crash), a step whose result was recorded returns it
        without calling `fn`. Exceptions are not recorded: the step runs again.
        The result must be storable by `serde`. Names are unique per handler call.

        Raises:
            WorkflowError: `name` was used already in this handler call.
            SerializationError: the result cannot be stored.
        """
        act = self._live()
        return await run_step(act, name, fn, args, kwargs, self._registry or ())

    async def request(self, payload: Any, response_type: type[R] | Any = object) -> str:
        """Ask for outside input; returns the request id.

        The request is pending once this superstep commits (`RequestIssued` is
        emitted at once). `session.respond({id: answer})` delivers the answer,
        converted to `response_type`, to this executor's `@response_handler`.

        Raises:
            RoutingError: this executor has no response handler for such answers.
        """
        return self._request(payload, response_type)


class SyncContext(_Base, Generic[SendT, OutT]):
    """The context of a sync `@executor` function, which runs in a worker thread.

    Same as `Context`, but its methods are plain calls.
    """

    __slots__ = ("_loop",)

    def __init__(
        self,
        plan: Plan,
        index: int,
        session_id: str,
        loop: asyncio.AbstractEventLoop,
        ids: Callable[[], str] = lambda: "",
        registry: serde.TypeRegistry | None = None,
        memory: Any = None,
    ) -> None:
        super().__init__(plan, index, session_id, ids, registry, memory)
        self._loop = loop

    @classmethod
    def serving(cls, ctx: _Base, loop: asyncio.AbstractEventLoop) -> SyncContext[Any, Any]:
        """A sync context for a worker thread, serving `ctx`'s current activation."""
        sync: SyncContext[Any, Any] = cls(
            ctx._plan, ctx._index, ctx.session_id, loop, ctx._ids, ctx._registry, ctx._memory
        )
        sync.activation = ctx.activation
        return sync

    def send(self, message: SendT, to: str | None = None) -> None:
        """Send `message`; see `Context.send`."""
        self._send(message, to)

    def yield_output(self, value: OutT) -> None:
        """Make `value` an output of the run; see `Context.yield_output`."""
        act = self._live()
        act.outputs.append(value)
        self._loop.call_soon_threadsafe(act.emit, Output(self.executor_id, value))

    def emit(self, event: Event) -> None:
        """Stream a user event; see `Context.emit`."""
        check_user_event(event)
        self._loop.call_soon_threadsafe(self._live().emit, event)


class Replay(_Base):
    """Applies effects made elsewhere to a context, synchronously on the loop's thread.

    For backends whose handlers run in another process and stream back what
    they did (sends, outputs, events, requests); never instantiated.
    """

    __slots__ = ()

    @staticmethod
    def send(ctx: _Base, message: Any, to: str | None) -> None:
        """As `Context.send`."""
        ctx._send(message, to)

    @staticmethod
    def output(ctx: _Base, value: Any) -> None:
        """As `Context.yield_output`."""
        ctx._output(value)

    @staticmethod
    def emit(ctx: _Base, event: Event) -> None:
        """As `Context.emit`."""
        ctx._emit(event)

    @staticmethod
    def request(ctx: _Base, payload: Any, response_type: Any) -> str:
        """As `Context.request`."""
        return ctx._request(payload, response_type)
