"""Interceptors: cross-cutting concerns wrapped around run, superstep and handler calls.

In the manner of Temporal's worker interceptors, each concern is a layer
around one kind of call; each call takes one input object and the next layer:

* `run(call: RunCall, next)`: one invocation of a session (leasing, tracing);
* `superstep(call: SuperstepCall, next)`: one superstep (tracing);
* `activation(act: Activation, next)`: one executor's turn in a superstep (tracing);
* `handle(act: Activation, next)`: one handler call on `act.message` (cache,
  timeout and retry policies).

`compose` builds a chain once; a chain without layers is the innermost call
itself, so a session with no tracing, no lease and no policy pays nothing.
The runner calls the chains and never branches on a concern, and no layer
calls back into the runner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._content import SessionContent
    from ._context import Activation
    from ._events import RunStatus
    from ._workflow import Workflow

__all__ = ["Interceptor", "RunCall", "SuperstepCall", "compose"]

T = TypeVar("T")
R = TypeVar("R")

Next = Callable[[T], Awaitable[R]]


class RunCall:
    """Input of `Interceptor.run`: one invocation (`run`, `respond`, `resume`) of a session."""

    __slots__ = ("content", "session_id", "workflow")

    def __init__(self, session_id: str, workflow: Workflow[Any], content: SessionContent) -> None:
        self.session_id = session_id
        self.workflow = workflow
        self.content = content


class SuperstepCall:
    """Input of `Interceptor.superstep`: superstep `number` of a session.

    `activations` is filled by the runner as the superstep starts its executors;
    `resuming` is true for the first superstep of `resume()`, which may continue
    a superstep that failed, was cancelled or crashed.
    """

    __slots__ = ("activations", "content", "number", "resuming", "session_id")

    def __init__(self, session_id: str, number: int, content: SessionContent) -> None:
        self.session_id = session_id
        self.number = number
        self.content = content
        self.activations: list[Activation] = []
        self.resuming = False


class Interceptor:
    """A layer around the engine's calls; every method passes through by default.

    Override the methods of the calls a concern wraps, and await `next(...)`
    with the same input object to go on.
    """

    def run(self, call: RunCall, next: Next[RunCall, RunStatus]) -> Awaitable[RunStatus]:
        """Around one invocation of a session."""
        return next(call)

    def superstep(self, call: SuperstepCall, next: Next[SuperstepCall, None]) -> Awaitable[None]:
        """Around one superstep."""
        return next(call)

    def activation(self, act: Activation, next: Next[Activation, None]) -> Awaitable[None]:
        """Around one executor's turn in a superstep (all its messages)."""
        return next(act)

    def handle(self, act: Activation, next: Next[Activation, None]) -> Awaitable[None]:
        """Around one handler call, on `act.message` with `act.handler`."""
        return next(act)


def overrides(layer: object, name: str, base: type = Interceptor) -> bool:
    """True when `layer` does more than pass `name` calls through (as `base` does)."""
    return getattr(type(layer), name) is not getattr(base, name)


def compose(
    layers: Sequence[object],
    name: str,
    inner: Callable[[T], Awaitable[R]],
    base: type = Interceptor,
) -> Callable[[T], Awaitable[R]]:
    """The chain of `layers`' `name` methods around `inner` (outermost first).

    Layers whose `name` is `base`'s pass-through are left out, so a chain without
    any is `inner` itself. Agent middleware composes the same way (`base=Middleware`).
    """
    fn = inner
    for layer in reversed(layers):
        if overrides(layer, name, base):
            fn = _bind(getattr(layer, name), fn)
    return fn


def _bind(
    method: Callable[[T, Callable[[T], Awaitable[R]]], Awaitable[R]],
    nxt: Callable[[T], Awaitable[R]],
) -> Callable[[T], Awaitable[R]]:
    def call(value: T) -> Awaitable[R]:
        return method(value, nxt)

    return call
