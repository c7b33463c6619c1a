"""Executors: the nodes of a workflow graph, and the `@handler`/`@executor` decorators.

An `Executor` subclass marks async methods with `@handler`; the annotation of
the message parameter decides which messages the handler receives, and the
annotation of the context parameter (`Context[SendT, OutT]`) says what it may
send. `@executor` turns a plain function into an executor.

Executor objects handed to the builder are prototypes: each session runs its
own copies made by `Executor.fresh()`.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeGuard, TypeVar, overload, runtime_checkable

from ._errors import GraphError
from ._handlers import HandlerSpec, HandlerTable, inspect_handler, inspect_response_handler

__all__ = [
    "Executor",
    "FunctionExecutor",
    "StatefulExecutor",
    "executor",
    "handler",
    "is_stateful",
    "response_handler",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _HandlerMark:
    input: object
    localns: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class _ResponseMark:
    request: object
    response: object
    localns: dict[str, Any] | None


def caller_namespace(func: Callable[..., Any], depth: int) -> dict[str, Any] | None:
    """Locals visible where `func` was decorated, for string annotations.

    Under `from __future__ import annotations`, annotations naming classes
    defined inside a function cannot be resolved from the module globals; the
    decorator captures the enclosing scopes (the class body and the function
    around it) so they resolve at build time.
    """
    if not any(isinstance(a, str) for a in getattr(func, "__annotations__", {}).values()):
        return None
    ns: dict[str, Any] = {}
    frame = inspect.currentframe()
    for _ in range(depth + 1):
        frame = frame.f_back if frame is not None else None
    scopes: list[Mapping[str, Any]] = []
    while frame is not None and len(scopes) < 3 and frame.f_globals is func.__globals__:
        scopes.append(frame.f_locals)
        frame = frame.f_back
    for scope in reversed(scopes):
        ns.update(scope)
    return ns


_MARK = "_sg_handler"


@overload
def handler(func: F, /) -> F: ...
@overload
def handler(*, input: object = None) -> Callable[[F], F]: ...
def handler(func: F | None = None, /, *, input: object = None) -> F | Callable[[F], F]:
    """Mark an async method `(self, message: T, ctx)` as a message handler.

    The annotation of `message` decides routing (the most specific type wins).
    `input=T` overrides the annotation, for types that cannot be resolved at
    run time (for example under `from __future__ import annotations` with
    classes defined inside a function).
    """

    def mark(f: F) -> F:
        setattr(f, _MARK, _HandlerMark(input, caller_namespace(f, 1 if func is None else 2)))
        return f

    return mark(func) if func is not None else mark


@overload
def response_handler(func: F, /) -> F: ...
@overload
def response_handler(*, request: object = None, response: object = None) -> Callable[[F], F]: ...
def response_handler(
    func: F | None = None, /, *, request: object = None, response: object = None
) -> F | Callable[[F], F]:
    """Mark an async method `(self, request: P, response: T, ctx)` that receives answers.

    When `session.respond({request_id: answer})` answers a request this
    executor issued with `ctx.request(payload, response_type=T)`, the handler
    whose `P` and `T` best match the payload and answer runs in the next
    superstep. `request=`/`response=` override the annotations.
    """

    def mark(f: F) -> F:
        ns = caller_namespace(f, 1 if func is None else 2)
        setattr(f, _MARK, _ResponseMark(request, response, ns))
        return f

    return mark(func) if func is not None else mark


@runtime_checkable
class StatefulExecutor(Protocol):
    """An executor whose state is saved in checkpoints and rolled back with its superstep.

    An `Executor` subclass is one when its class defines both methods: a
    failed or cancelled superstep restores the snapshot taken before it, and
    every checkpoint stores the snapshot taken after it (so the data must be
    serializable by `stepgraph.serde`). Executors without them keep plain
    attributes across a failure (see `Executor`).
    """

    async def snapshot(self) -> Any:
        """The executor's state, as a value `restore` takes back."""
        ...

    async def restore(self, data: Any) -> None:
        """Go back to the state `snapshot` returned."""
        ...


def is_stateful(executor: object) -> TypeGuard[StatefulExecutor]:
    """Whether the executor's class implements `StatefulExecutor` (decided by the class)."""
    return issubclass(type(executor), StatefulExecutor)


class Executor:
    """A node of the workflow graph; subclass it and mark handlers with `@handler`.

    Executors that keep state across supersteps may define
    `async def snapshot(self) -> object` and `async def restore(self, data) -> None`
    (a `StatefulExecutor`): a failed or cancelled superstep restores its
    executors' snapshots, and checkpoints store them. Per-session mutable state must be created in
    `__init__`, because `fresh()` re-calls the constructor with the same
    argument objects.

    Args:
        id: unique id of the executor within its workflow.
    """

    id: str
    _sg_init_args: tuple[tuple[Any, ...], dict[str, Any]]
    _sg_plain_new: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `fresh()` may skip `__new__` when it only records the arguments (the usual case).
        cls._sg_plain_new = cls.__new__ is Executor.__new__ and super().__new__ is object.__new__

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls)
        self._sg_init_args = (args, kwargs)
        return self

    def __init__(self, id: str) -> None:
        if not isinstance(id, str) or not id:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise GraphError(f"executor id must be a non-empty string, got {id!r}")
        self.id = id

    def fresh(self) -> Self:
        """Return a new instance for one session by re-calling the constructor.

        The default passes the argument objects recorded when this prototype
        was made. Override it when re-construction is wrong or too costly.
        """
        recorded = self._sg_init_args
        cls = type(self)
        if not cls._sg_plain_new:  # a custom __new__ gets its call
            return cls(*recorded[0], **recorded[1])
        new = object.__new__(cls)  # what `Executor.__new__` does, without its frame
        new._sg_init_args = recorded
        new.__init__(*recorded[0], **recorded[1])
        return new

    def handler_table(self) -> HandlerTable:
        """The handlers of this executor (shared by every instance of the class)."""
        cls = type(self)
        table = cls.__dict__.get("_sg_table")
        if table is None:
            table = HandlerTable(cls.__qualname__, _collect_methods(cls))
            cls._sg_table = table  # type: ignore[attr-defined]
        return table

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} id={getattr(self, 'id', '?')!r}>"


def _collect_methods(cls: type) -> list[HandlerSpec]:
    specs: list[HandlerSpec] = []
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, member in vars(klass).items():
            if name in seen:
                continue
            mark = getattr(member, _MARK, None)
            if isinstance(mark, _ResponseMark):
                seen.add(name)
                func = typing.cast(Callable[..., Any], member)
                specs.append(
                    inspect_response_handler(
                        func, name, mark.request, mark.response, owner=cls, localns=mark.localns
                    )
                )
            elif isinstance(mark, _HandlerMark):
                seen.add(name)
                func = typing.cast(Callable[..., Any], member)
                specs.append(
                    inspect_handler(
                        func, name, mark.input, bound=True, owner=cls, localns=mark.localns
                    )
                )
    return specs


class FunctionExecutor(Executor):
    """An executor made from a function `(message: T, ctx)` by `@executor`.

    Function executors hold no per-session state, so `fresh()` returns the
    prototype itself. A sync function runs in a worker thread and receives a
    context whose methods are plain calls.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        id: str | None = None,
        input: object = None,
        localns: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(id or getattr(func, "__name__", "") or "executor")
        self.func = func
        self._localns = localns if localns is not None else caller_namespace(func, 1)
        self._table: HandlerTable | None = None
        self._input = input

    def handler_table(self) -> HandlerTable:
        """The single handler made from the function."""
        table = self._table
        if table is None:
            spec = inspect_handler(
                self.func, self.id, self._input, bound=False, localns=self._localns
            )
            table = self._table = HandlerTable(self.id, [spec])
        return table

    def fresh(self) -> Self:
        """Return self: a function executor keeps no per-session state."""
        return self

    async def __call__(self, message: Any, ctx: Any) -> None:
        """Call the wrapped function (handy in tests)."""
        result = self.func(message, ctx)
        if inspect.isawaitable(result):
            await typing.cast(Awaitable[object], result)


_FN = TypeVar("_FN", bound=Callable[..., Any])
T = TypeVar("T")


class _ExecutorDecorator(Generic[T]):
    __slots__ = ("id", "input")

    def __init__(self, id: str | None, input: object) -> None:
        self.id = id
        self.input = input

    def __call__(self, func: Callable[..., Any]) -> FunctionExecutor:
        return FunctionExecutor(
            func, id=self.id, input=self.input, localns=caller_namespace(func, 1)
        )


@overload
def executor(func: Callable[..., Any], /) -> FunctionExecutor: ...
@overload
def executor(*, id: str | None = None, input: object = None) -> _ExecutorDecorator[Any]: ...
def executor(
    func: Callable[..., Any] | None = None, /, *, id: str | None = None, input: object = None
) -> FunctionExecutor | _ExecutorDecorator[Any]:
    """Turn a function `(message: T, ctx)` into an executor.

    Use bare (`@executor`, id = function name) or with arguments
    (`@executor(id="shout", input=T)`). Async functions run on the event loop;
    sync functions run in a worker thread.
    """
    if func is not None:
        return FunctionExecutor(func, id=id, input=input, localns=caller_namespace(func, 1))
    return _ExecutorDecorator(id, input)
