"""The functional API: `@workflow`, `@step`, `request()` and `context()`.

`@workflow` turns an async function into an ordinary `Workflow` of one
executor, `FunctionalExecutor`, whose handler runs the function; sessions,
stores, hosting and the CLI see nothing special. `@step` functions called
from it are journaled with `ctx.step` while their superstep runs, and kept in
the executor's snapshot (so in checkpoints) once it commits. `request()`
unwinds the function (`Suspend`) and issues `ctx.request`; the answer
re-runs the function from the top, finished steps returning their recorded
results (`_replay`).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from . import _replay, _types
from ._builder import WorkflowBuilder
from ._context import Context
from ._errors import GraphError, WorkflowError
from ._executor import Executor, caller_namespace
from ._handlers import HandlerSpec, HandlerTable
from ._policies import RetryPolicy
from ._requests import Answer
from ._types import ANY
from ._workflow import Workflow

__all__ = ["FunctionalExecutor", "Step", "context", "request", "step", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")
InT = TypeVar("InT")


@dataclass(slots=True)
class _Call:
    """One call of the workflow function, from its input to its return: what replays it."""

    input: Any
    log: _replay.Log = field(default_factory=lambda: {})
    pending: dict[str, str] = field(default_factory=lambda: {})  # request id -> key


class FunctionalExecutor(Executor):
    """The one executor of a `@workflow`: runs the function, replays its steps.

    Its state (the calls in progress: input, step results, answers, pending
    requests) is its snapshot, so it is in checkpoints, rolled back with a
    failed superstep, restored by time travel and cleared by `reset()`.
    """

    def __init__(
        self,
        func: Callable[..., Awaitable[Any]],
        *,
        id: str,
        retries: bool,
        localns: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(id=id)
        self.func = func
        self.localns = localns  # where the function was decorated, for string annotations
        self.retries = retries  # a retry policy rolls `calls` back: steps need `ctx.step`
        self.calls: dict[str, _Call] = {}
        self._table: HandlerTable | None = None

    def handler_table(self) -> HandlerTable:
        """A handler for the input (the function's first annotation) and one for answers."""
        table = self._table
        if table is None:
            start = HandlerSpec(
                name=f"{self.id}(input)",
                accepts=_input_specs(self.func, self.localns),
                sends=(),
                invoke=lambda ex, m, c: ex.start(m, c),
                is_async=True,
            )
            answer = HandlerSpec(
                name=f"{self.id}(answer)",
                accepts=(ANY,),
                sends=(),
                invoke=lambda ex, a, c: ex.answer(a, c),
                is_async=True,
                accepts_response=(ANY,),
            )
            table = self._table = HandlerTable(self.id, [start, answer])
        return table

    async def start(self, message: Any, ctx: Context[Any, Any]) -> None:
        """Run the function on a new input (engine use)."""
        call_id = ctx.idempotency_key  # the same when this activation runs again
        call = self.calls[call_id] = _Call(message)
        await self._drive(call_id, call, ctx)

    async def answer(self, answer: Answer, ctx: Context[Any, Any]) -> None:
        """Log an answer and run the function again from the top (engine use)."""
        rid = answer.request.id
        for call_id, call in self.calls.items():
            key = call.pending.pop(rid, None)
            if key is not None:
                call.log[key] = (_replay.REQUEST, answer.response)
                await self._drive(call_id, call, ctx)
                return
        raise WorkflowError(
            f"workflow {self.id!r} got an answer to request {rid!r}, whose call of the "
            "function has already returned; answer only requests that are still pending"
        )

    async def _drive(self, call_id: str, call: _Call, ctx: Context[Any, Any]) -> None:
        act = ctx.activation
        journaled = self.retries or (act is not None and act.journal is not None)
        invocation = _replay.Invocation(ctx, call.log, journaled)
        token = _replay.enter(invocation)
        try:
            result = await self._invoke(call.input, ctx)
        except _replay.Suspend:
            await invocation.settle()  # steps started beside the request finish and log
            asked = set(call.pending.values())
            for key, payload, response_type in invocation.asks:
                if key not in asked:
                    call.pending[await ctx.request(payload, response_type)] = key
            return
        finally:
            _replay.leave(token)
        del self.calls[call_id]
        if result is not None:
            await ctx.yield_output(result)

    def _invoke(self, input: Any, ctx: Context[Any, Any]) -> Awaitable[Any]:
        if _takes_context(self.func):
            return self.func(input, ctx)
        return self.func(input)

    async def snapshot(self) -> dict[str, Any]:
        """The calls in progress, as plain data (lists and dicts)."""
        return {
            cid: {
                "input": c.input,
                "log": [[k, n, v] for k, (n, v) in c.log.items()],
                "pending": dict(c.pending),
            }
            for cid, c in self.calls.items()
        }

    async def restore(self, data: dict[str, Any]) -> None:
        """Go back to the calls `snapshot` returned."""
        self.calls = {
            cid: _Call(c["input"], {k: (n, v) for k, n, v in c["log"]}, dict(c["pending"]))
            for cid, c in data.items()
        }


def _input_specs(
    func: Callable[..., Any], localns: dict[str, Any] | None
) -> tuple[_types.TypeSpec, ...]:
    params = list(inspect.signature(func).parameters.values())
    try:
        hints = typing.get_type_hints(func, localns=localns)
    except Exception as exc:
        raise GraphError(
            f"workflow {func.__qualname__}: its annotations cannot be resolved ({exc}); "
            "define the types they name at module level"
        ) from None
    annotation = hints.get(params[0].name, object)
    try:
        return _types.specs_of(annotation)
    except TypeError as exc:
        raise GraphError(f"workflow {func.__qualname__}: {exc}") from None


def _takes_context(func: Callable[..., Any]) -> bool:
    return len(inspect.signature(func).parameters) == 2


def _check_function(func: Callable[..., Any]) -> None:
    if not inspect.iscoroutinefunction(func):
        raise GraphError(f"@sg.workflow takes an 'async def' function, got {func!r}")
    params = list(inspect.signature(func).parameters.values())
    if not 1 <= len(params) <= 2:
        raise GraphError(
            f"workflow {func.__qualname__} must take (input) or (input, ctx); it takes "
            f"{[p.name for p in params]}"
        )


class _WorkflowDecorator:
    __slots__ = ("max_supersteps", "name", "retry", "types")

    def __init__(
        self,
        name: str | None,
        max_supersteps: int,
        types: Sequence[type],
        retry: RetryPolicy | None,
    ) -> None:
        self.name = name
        self.max_supersteps = max_supersteps
        self.types = tuple(types)
        self.retry = retry

    @overload
    def __call__(self, func: Callable[[InT], Awaitable[Any]], /) -> Workflow[InT]: ...
    @overload
    def __call__(
        self, func: Callable[[InT, Context[Any, Any]], Awaitable[Any]], /
    ) -> Workflow[InT]: ...
    def __call__(self, func: Callable[..., Awaitable[Any]], /) -> Workflow[Any]:
        return self.build(func, caller_namespace(func, 1))

    def build(
        self, func: Callable[..., Awaitable[Any]], localns: dict[str, Any] | None
    ) -> Workflow[Any]:
        """The one-executor workflow running `func`."""
        _check_function(func)
        eid = getattr(func, "__name__", "") or "workflow"
        builder = WorkflowBuilder[Any](
            start=FunctionalExecutor(func, id=eid, retries=self.retry is not None, localns=localns)
        )
        builder.register_types(*self.types)
        if self.retry is not None:
            builder.set_policy(eid, retry=self.retry)
        return builder.build(name=self.name or eid, max_supersteps=self.max_supersteps)


@overload
def workflow(func: Callable[[InT], Awaitable[Any]], /) -> Workflow[InT]: ...
@overload
def workflow(func: Callable[[InT, Context[Any, Any]], Awaitable[Any]], /) -> Workflow[InT]: ...
@overload
def workflow(
    *,
    name: str | None = None,
    max_supersteps: int = 100,
    types: Sequence[type] = (),
    retry: RetryPolicy | None = None,
) -> _WorkflowDecorator: ...
def workflow(
    func: Callable[..., Awaitable[Any]] | None = None,
    /,
    *,
    name: str | None = None,
    max_supersteps: int = 100,
    types: Sequence[type] = (),
    retry: RetryPolicy | None = None,
) -> Workflow[Any] | _WorkflowDecorator:
    """Turn an async function `(input) -> output` into a `Workflow` (the functional API).

    The function receives the run's input (its first parameter's annotation
    is the input type) and, when it takes a second parameter, the `Context`
    (also available as `sg.context()`). Its return value, unless None, is the
    run's output. Results of `@sg.step` calls are recorded: after an answer
    to `sg.request()`, a failure and `resume()`, or a restart, the function
    runs again from the top and finished steps return their recorded results.
    Use bare, or as `@workflow(name=..., max_supersteps=..., types=[...],
    retry=RetryPolicy(...))` (types: classes stored in checkpoints; retry:
    re-run the function when it raises, finished steps replaying).

    Raises:
        GraphError: `func` is not an `async def` taking `(input)` or `(input, ctx)`.
    """
    decorator = _WorkflowDecorator(name, max_supersteps, types, retry)
    return decorator.build(func, caller_namespace(func, 1)) if func is not None else decorator


class Step(Generic[P, R]):
    """An async function whose calls are recorded inside a functional workflow (`@step`).

    Calling it returns a coroutine; its key (its position among the calls of
    the workflow function, or of the step body that calls it) is taken at the
    call, so `asyncio.gather(a(1), b(2))` replays deterministically. Outside a
    workflow it is a plain call.
    """

    def __init__(self, func: Callable[P, Awaitable[R]], name: str) -> None:
        self.func = func
        self.name = name
        """The name recorded with each call (checked when the call is replayed)."""
        self.__wrapped__ = func
        self.__name__: str = getattr(func, "__name__", name)
        self.__qualname__: str = getattr(func, "__qualname__", name)
        self.__doc__ = func.__doc__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Call the step: recorded inside a workflow, plain outside one."""
        scope = _replay.current()
        if scope is None:
            return _plain(self.func, args, kwargs)
        key = scope.next_key(f"step {self.name!r}")
        return scope.invocation.step(key, self.name, self.func, args, kwargs)

    def __repr__(self) -> str:
        return f"<sg.step {self.name!r}>"


async def _plain(func: Callable[..., Awaitable[R]], args: Any, kwargs: Any) -> R:
    return await func(*args, **kwargs)


@overload
def step(func: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...
@overload
def step(*, name: str | None = None) -> Callable[[Callable[P, Awaitable[R]]], Step[P, R]]: ...
def step(
    func: Callable[P, Awaitable[R]] | None = None, /, *, name: str | None = None
) -> Step[P, R] | Callable[[Callable[P, Awaitable[R]]], Step[P, R]]:
    """Mark an async function as a step of functional workflows: its results are recorded.

    Inside a `@workflow` function (or another step), a call whose result was
    recorded returns it without running; otherwise it runs and its result is
    recorded (it must be storable by `serde`). Exceptions are not recorded.
    `name` (default: the function's qualified name) is checked on replay: a
    call at the same position under another name raises `ReplayDivergenceError`.
    """

    def make(f: Callable[P, Awaitable[R]]) -> Step[P, R]:
        if not inspect.iscoroutinefunction(f):
            raise TypeError(f"@sg.step takes an 'async def' function, got {f!r}")
        return Step(f, name or getattr(f, "__qualname__", "") or "step")

    return make(func) if func is not None else make


@overload
def request(payload: Any, response_type: type[R]) -> Coroutine[Any, Any, R]: ...
@overload
def request(payload: Any) -> Coroutine[Any, Any, Any]: ...
def request(payload: Any, response_type: Any = object) -> Coroutine[Any, Any, Any]:
    """Ask for outside input from a functional workflow; await it for the answer.

    The first time, the session pauses (`IDLE_WITH_PENDING_REQUESTS`) with a
    `Request` whose payload is `payload`; `session.respond({id: answer})`
    runs the function again from the top, finished steps replay, and this
    call returns the answer (converted to `response_type`). Like a step call,
    its position is taken when it is called, so requests may be gathered.

    Raises:
        WorkflowError: called outside a `@workflow` function.
    """
    scope = _replay.current()
    if scope is None:
        raise WorkflowError(
            "sg.request() was called outside a @sg.workflow function; in a graph "
            "executor use `await ctx.request(...)` and a @response_handler"
        )
    key = scope.next_key("sg.request()")
    invocation = scope.invocation
    done, value = invocation.recorded(key, _replay.REQUEST)
    if done:
        return _answered(value)
    # Asked at the call, not when awaited: gathered requests are all issued at once.
    invocation.asks.append((key, payload, response_type))
    return _unanswered()


async def _answered(value: Any) -> Any:
    return value


async def _unanswered() -> Any:
    raise _replay.Suspend


def context() -> Context[Any, Any]:
    """The `Context` of the running functional workflow: state, events, outputs, ids.

    The function re-runs from the top after every answer: what it does through
    the context outside steps (state writes, `emit`, `yield_output`) happens
    again each time. State writes of the same values are harmless; prefer the
    return value for outputs.

    Raises:
        WorkflowError: called outside a `@workflow` function.
    """
    scope = _replay.current()
    if scope is None:
        raise WorkflowError("sg.context() was called outside a @sg.workflow function")
    return scope.invocation.ctx
