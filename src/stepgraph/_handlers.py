"""Handler introspection and dispatch: which handler of an executor gets a message.

A `HandlerSpec` is read once from a handler's signature; a `HandlerTable`
holds an executor's handlers and answers "which handler takes this message"
with a per-class cache: the most specific annotated type wins (exact class,
then the nearest base in the MRO), never declaration order.
"""

from __future__ import annotations

import inspect
import typing
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _types
from ._errors import GraphError, GraphWarning
from ._types import ANY, TypeSpec

__all__ = ["HandlerSpec", "HandlerTable", "inspect_handler"]

Invoke = Callable[[Any, Any, Any], Any]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """What one handler accepts and may send, read from its annotations.

    Attributes:
        name: method or function name (for messages).
        accepts: union members of the message annotation.
        sends: what `Context[SendT, ...]` allows it to send (ANY when unannotated).
        invoke: `(executor, message, ctx) -> awaitable or value`.
        is_async: False for a sync function (run in a worker thread).
        accepts_response: for `@response_handler`, the response type specs.
    """

    name: str
    accepts: tuple[TypeSpec, ...]
    sends: tuple[TypeSpec, ...]
    invoke: Invoke
    is_async: bool
    accepts_response: tuple[TypeSpec, ...] | None = None


def _hints(func: Callable[..., Any], localns: dict[str, Any] | None) -> dict[str, Any]:
    """The resolved annotations of `func`; an unresolvable one maps to its `_Unresolved`."""
    try:
        return typing.get_type_hints(func, localns=localns)
    except Exception:  # unresolvable forward references: resolve what we can
        hints: dict[str, Any] = {}
        for name, ann in getattr(func, "__annotations__", {}).items():
            if not isinstance(ann, str):
                hints[name] = ann
                continue
            try:
                hints[name] = eval(ann, getattr(func, "__globals__", {}), localns)
            except Exception as exc:
                hints[name] = _Unresolved(ann, f"{type(exc).__name__}: {exc}")
        return hints


@dataclass(frozen=True, slots=True)
class _Unresolved:
    """An annotation that could not be evaluated, and why (for error messages)."""

    text: str
    reason: str


def _is_context(annotation: object) -> bool:
    from ._context import Context, SyncContext

    origin = typing.get_origin(annotation) or annotation
    return isinstance(origin, type) and issubclass(origin, (Context, SyncContext))


def _check_return(where: str, hints: dict[str, Any]) -> None:
    """Warn when a handler's return annotation says it returns a value: it would be dropped."""
    if "return" not in hints:
        return
    ret = hints["return"]
    if ret is None or ret is type(None) or ret is typing.NoReturn or ret is typing.Never:
        return
    shown = ret.text if isinstance(ret, _Unresolved) else getattr(ret, "__name__", repr(ret))
    warnings.warn(
        f"handler {where} is annotated to return {shown}, but stepgraph drops return "
        "values: send it with `await ctx.send(value)` or emit it with "
        "`await ctx.yield_output(value)`, and annotate the handler `-> None`",
        GraphWarning,
        stacklevel=2,
    )


def _context_sends(annotation: object, where: str) -> tuple[TypeSpec, ...]:
    if not _is_context(annotation):
        return (ANY,)
    args = typing.get_args(annotation)
    if not args:
        name = getattr(annotation, "__name__", "Context")
        warnings.warn(
            f"handler {where} annotates its context as a bare {name}, which may send "
            f"anything, so build() cannot check its edges: say what it sends, "
            f"{name}[T] (or {name}[None, OutT] when it only yields outputs)",
            GraphWarning,
            stacklevel=2,
        )
        return (ANY,)
    send = args[0]
    if send is None or send is type(None):
        return ()
    try:
        return _types.specs_of(send)
    except TypeError:
        return (ANY,)


def _check_message_annotation(where: str, param: str, annotation: object) -> None:
    if isinstance(annotation, _Unresolved):
        raise GraphError(
            f"handler {where}: the annotation {annotation.text!r} of its message parameter "
            f"{param!r} cannot be resolved ({annotation.reason}); import or define it at "
            "module level, or pass the type with @handler(input=T)"
        )
    if annotation is None:
        raise GraphError(
            f"handler {where} has no annotation on its message parameter "
            f"'{param}': annotate it, or pass the type with @handler(input=T)"
        )


def inspect_handler(
    func: Callable[..., Any],
    name: str,
    input: object,
    *,
    bound: bool,
    owner: type | None = None,
    localns: dict[str, Any] | None = None,
) -> HandlerSpec:
    """Read a handler's message type and send types from its signature.

    Raises:
        GraphError: when the signature cannot be routed on.
    """
    where = f"{owner.__qualname__}.{name}" if owner is not None else name
    params = list(inspect.signature(func).parameters.values())
    if bound:
        params = params[1:]
    if not 1 <= len(params) <= 2:
        raise GraphError(
            f"handler {where} must take (message, ctx) or (message); it takes "
            f"{[p.name for p in params]}"
        )
    is_async = inspect.iscoroutinefunction(func)
    if bound and not is_async:
        raise GraphError(f"handler {where} must be declared 'async def'")
    hints = _hints(func, localns)
    annotation = input if input is not None else hints.get(params[0].name)
    _check_message_annotation(where, params[0].name, annotation)
    if len(params) == 2 and _is_context(annotation):
        raise GraphError(
            f"handler {where} takes its context first: the message comes first, then the "
            f"context; write ({params[1].name}: MessageType, {params[0].name}: "
            f"{getattr(annotation, '__name__', 'Context')}[...])"
        )
    try:
        accepts = _types.specs_of(annotation)
    except TypeError as exc:
        raise GraphError(f"handler {where}: {exc}") from None
    sends = _context_sends(hints.get(params[1].name), where) if len(params) == 2 else ()
    _check_return(where, hints)
    takes_ctx = len(params) == 2
    invoke: Invoke
    if bound:
        invoke = func if takes_ctx else (lambda ex, m, c: func(ex, m))
    else:
        invoke = (lambda ex, m, c: func(m, c)) if takes_ctx else (lambda ex, m, c: func(m))
    return HandlerSpec(name=where, accepts=accepts, sends=sends, invoke=invoke, is_async=is_async)


def inspect_response_handler(
    func: Callable[..., Any],
    name: str,
    request: object,
    response: object,
    *,
    owner: type,
    localns: dict[str, Any] | None = None,
) -> HandlerSpec:
    """Read a `@response_handler` `(self, request: P, response: T, ctx)`.

    Raises:
        GraphError: when the signature cannot be dispatched on.
    """
    where = f"{owner.__qualname__}.{name}"
    params = list(inspect.signature(func).parameters.values())[1:]
    if not 2 <= len(params) <= 3:
        raise GraphError(
            f"response handler {where} must take (request, response, ctx); it takes "
            f"{[p.name for p in params]}"
        )
    if not inspect.iscoroutinefunction(func):
        raise GraphError(f"response handler {where} must be declared 'async def'")
    hints = _hints(func, localns)
    req = request if request is not None else hints.get(params[0].name)
    resp = response if response is not None else hints.get(params[1].name)
    for param, ann in ((params[0].name, req), (params[1].name, resp)):
        if isinstance(ann, _Unresolved):
            raise GraphError(
                f"response handler {where}: the annotation {ann.text!r} of parameter "
                f"{param!r} cannot be resolved ({ann.reason}); import or define it at "
                "module level, or pass @response_handler(request=P, response=T)"
            )
    if req is None or resp is None:
        raise GraphError(
            f"response handler {where} needs annotations on its request and response "
            "parameters, or @response_handler(request=P, response=T)"
        )
    try:
        accepts, answers = _types.specs_of(req), _types.specs_of(resp)
    except TypeError as exc:
        raise GraphError(f"response handler {where}: {exc}") from None
    sends = _context_sends(hints.get(params[2].name), where) if len(params) == 3 else ()
    _check_return(where, hints)
    invoke: Invoke
    if len(params) == 3:
        invoke = lambda ex, a, c: func(ex, a.request.payload, a.response, c)  # noqa: E731
    else:
        invoke = lambda ex, a, c: func(ex, a.request.payload, a.response)  # noqa: E731
    return HandlerSpec(
        name=where,
        accepts=accepts,
        sends=sends,
        invoke=invoke,
        is_async=True,
        accepts_response=answers,
    )


_MISSING: Any = object()


class HandlerTable:
    """The handlers of one executor, with cached most-specific-type dispatch."""

    __slots__ = ("_cache", "accepts", "cached", "handlers", "owner", "responses", "sends")

    def __init__(self, owner: str, handlers: list[HandlerSpec]) -> None:
        self.owner = owner
        self.responses = tuple(h for h in handlers if h.accepts_response is not None)
        self.handlers = tuple(h for h in handlers if h.accepts_response is None)
        seen: dict[TypeSpec, str] = {}
        for h in self.handlers:
            for spec in h.accepts:
                if spec in seen:
                    raise GraphError(
                        f"{owner}: handlers {seen[spec]} and {h.name} both accept "
                        f"{_types.describe(spec)}; keep one handler per type"
                    )
                seen[spec] = h.name
        self.accepts: tuple[TypeSpec, ...] = tuple(seen)
        pairs: dict[tuple[TypeSpec, TypeSpec], str] = {}
        for h in self.responses:
            for p in h.accepts:
                for r in h.accepts_response or ():
                    if (p, r) in pairs:
                        raise GraphError(
                            f"{owner}: response handlers {pairs[p, r]} and {h.name} both take "
                            f"({_types.describe(p)}, {_types.describe(r)}); keep one"
                        )
                    pairs[p, r] = h.name
        sends: list[TypeSpec] = []
        for h in (*self.handlers, *self.responses):
            sends.extend(h.sends)
        self.sends: tuple[TypeSpec, ...] = tuple(dict.fromkeys(sends))
        self._cache: dict[type, HandlerSpec | None] = {}
        self.cached: Callable[[type], HandlerSpec | None] = self._cache.get
        """The handler already resolved for messages of a class, or None (then `resolve`)."""

    def list_items(self) -> tuple[TypeSpec, ...]:
        """Item types this executor takes through a `list[T]` (or wider) handler: fan-in."""
        items: list[TypeSpec] = []
        for spec in self.accepts:
            if spec.origin is object:
                return (ANY,)
            if spec.literals is None and issubclass(list, spec.origin):
                items.extend(spec.args[0] if spec.args else (ANY,))
        return tuple(items)

    def describe_accepts(self) -> str:
        """The accepted types, for error messages."""
        return ", ".join(_types.describe(s) for s in self.accepts) or "nothing"

    def why_not(self, message: object) -> str:
        """Why no handler takes `message`, to follow an executor id in a `RoutingError`.

        "has no handler for int"; or, when a handler takes the message's class but
        not its items (a `list[int]` holding a `str`), which item and which type.
        """
        cls = type(message)
        for h in self.handlers:
            for spec in h.accepts:
                if spec.args is not None and _distance(cls, spec) >= 0:
                    reason = _types.mismatch(message, spec)
                    if reason is not None:
                        return f"takes {_types.describe(spec)}, but in this {cls.__name__} {reason}"
        return f"has no handler for {cls.__name__}"

    def resolve_answer(self, payload: object, response: object) -> HandlerSpec | None:
        """The response handler for an answered request, most specific first."""
        best: tuple[float, float, HandlerSpec] | None = None
        for h in self.responses:
            for p in h.accepts:
                dp = _distance(type(payload), p)
                if dp < 0 or not _types.matches(payload, p):
                    continue
                for r in h.accepts_response or ():
                    dr = _distance(type(response), r)
                    if (
                        dr >= 0
                        and _types.matches(response, r)
                        and (best is None or (dp, dr) < best[:2])
                    ):
                        best = (dp, dr, h)
        return best[2] if best is not None else None

    def takes_answers(self, payload: object, response_type: object) -> bool:
        """True when some response handler takes this payload and answers of the type."""
        try:
            answers = _types.specs_of(response_type)
        except TypeError:
            return False
        for h in self.responses:
            if any(_distance(type(payload), p) >= 0 for p in h.accepts) and _types.compatible(
                answers, h.accepts_response or ()
            ):
                return True
        return False

    def resolve(self, message: object) -> HandlerSpec | None:
        """The handler for `message`, or None when no handler accepts it."""
        cls = type(message)
        hit = self._cache.get(cls, _MISSING)
        if hit is not _MISSING:
            return hit
        ranked: list[tuple[float, HandlerSpec, TypeSpec]] = []
        for h in self.handlers:
            for spec in h.accepts:
                d = _distance(cls, spec)
                if d >= 0:
                    ranked.append((d, h, spec))
        ranked.sort(key=lambda r: r[0])
        cacheable = True
        for _, h, spec in ranked:
            if spec.args is None and spec.literals is None:
                if cacheable:
                    self._cache[cls] = h
                return h
            cacheable = False
            if _types.matches(message, spec):
                return h
        if cacheable:
            self._cache[cls] = None
        return None


def _distance(cls: type, spec: TypeSpec) -> float:
    d = _types.distance(cls, spec)
    if d >= 0:
        return d
    try:
        virtual = issubclass(cls, spec.origin)
    except TypeError:
        return -1
    # A virtual subclass (ABC registration, protocol) ranks just above `object`.
    return len(cls.__mro__) - 1.5 if virtual else -1
