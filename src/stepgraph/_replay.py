"""Replay for the functional API: keys for step calls, their log, and suspension.

A functional workflow's function re-runs from the top after a failure, a
crash or an answer. Every `@step` call and every `request()` gets a key when
it is *called* (not when it starts running), in program order within its
scope: `"0"`, `"1"`, ... in the function, `"3/0"`, `"3/1"` inside the body of
the step keyed `"3"`. `asyncio.gather(a(1), b(2))` creates both calls before
either runs, so their keys do not depend on timing. A call made from a task
that does not own its scope (a plain coroutine run concurrently by `gather`
or `create_task`) could get a key that depends on timing, so it is refused.

The log maps each key to `(name, value)`: the step's name and result, or
`REQUEST` and the answer. A replayed call whose name differs from the one
logged at its key raises `ReplayDivergenceError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._errors import ReplayDivergenceError, WorkflowError

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["REQUEST", "Invocation", "Scope", "Suspend", "check", "current", "enter", "leave"]

REQUEST = "sg.request"
"""The name logged for a `request()` call."""

Log = dict[str, tuple[str, Any]]


class Suspend(BaseException):
    """Unwinds the workflow function at a `request()` without an answer yet.

    A `BaseException`, so `except Exception` in user code does not swallow it.
    """


class Invocation:
    """One run of the workflow function inside one handler call."""

    __slots__ = ("asks", "ctx", "durable", "inflight", "log", "settled")

    def __init__(self, ctx: Context[Any, Any], log: Log, durable: bool) -> None:
        self.ctx = ctx
        self.log = log
        # With a store (or a retry policy), steps go through `ctx.step`: journaled the moment
        # they return, so a crash mid-superstep or the next attempt replays them. Otherwise
        # the log alone is enough and the per-step encode is skipped (W1 was 2.3x the graph
        # API with it, 1.1x without; docs/benchmarks.md).
        self.durable = durable
        self.asks: list[tuple[str, Any, Any]] = []  # requests met without an answer
        self.inflight = 0  # step calls running now
        self.settled: asyncio.Event | None = None

    def recorded(self, key: str, name: str) -> tuple[bool, Any]:
        """`(True, value)` when `key` is logged under `name`, `(False, None)` when not logged.

        Raises:
            ReplayDivergenceError: `key` is logged under another name.
        """
        entry = self.log.get(key)
        if entry is None:
            return False, None
        check(key, entry[0], name)
        return True, entry[1]

    async def step(
        self, key: str, name: str, func: Callable[..., Awaitable[Any]], args: Any, kwargs: Any
    ) -> Any:
        """The result of step call `key`: logged, journaled (`ctx.step`), or computed now."""
        done, value = self.recorded(key, name)
        if done:
            return value
        self.inflight += 1
        try:
            if self.durable:
                got = await self.ctx.step(key, self._body, key, name, func, args, kwargs)
            else:
                got = await self._body(key, name, func, args, kwargs)
        finally:
            self.inflight -= 1
            if not self.inflight and self.settled is not None:
                self.settled.set()
        check(key, got[0], name)  # a journaled result of a crashed run: the same call?
        self.log[key] = (name, got[1])
        return got[1]

    async def _body(
        self, key: str, name: str, func: Callable[..., Awaitable[Any]], args: Any, kwargs: Any
    ) -> list[Any]:
        token = _SCOPE.set(Scope(self, key + "/"))
        try:
            return [name, await func(*args, **kwargs)]
        finally:
            _SCOPE.reset(token)

    async def settle(self) -> None:
        """Wait until no step call is running (those started beside a suspended request)."""
        while self.inflight:
            self.settled = asyncio.Event()
            await self.settled.wait()


class Scope:
    """Where new keys come from: a path, a counter and the task that owns them."""

    __slots__ = ("count", "invocation", "path", "task")

    def __init__(self, invocation: Invocation, path: str) -> None:
        self.invocation = invocation
        self.path = path
        self.count = 0
        self.task = asyncio.current_task()

    def next_key(self, what: str) -> str:
        """The next key in program order.

        Raises:
            WorkflowError: called from a task that does not own the scope.
        """
        if asyncio.current_task() is not self.task:
            raise WorkflowError(
                f"{what} was called from a coroutine running concurrently with the workflow "
                "function (gather or create_task of a plain coroutine): its position would "
                "depend on timing, so it could not be replayed; make that coroutine a "
                "@sg.step (its steps then get their own keys), or gather the steps themselves"
            )
        n = self.count
        self.count = n + 1
        return f"{self.path}{n}"


_SCOPE: ContextVar[Scope | None] = ContextVar("stepgraph_scope", default=None)


def current() -> Scope | None:
    """The scope of the running workflow function or step body, or None outside one."""
    return _SCOPE.get()


def enter(invocation: Invocation) -> Any:
    """Make `invocation`'s root scope current; returns the token for `leave`."""
    return _SCOPE.set(Scope(invocation, ""))


def leave(token: Any) -> None:
    """Undo `enter`."""
    _SCOPE.reset(token)


def check(key: str, logged: str, called: str) -> None:
    """Raise `ReplayDivergenceError` when a replayed call is not the logged one."""
    if logged != called:
        raise ReplayDivergenceError(
            f"the workflow function diverged from its recorded run: call #{key} was "
            f"{_shown(logged)} then, and is {_shown(called)} now. The function re-runs from "
            "the top after an answer, a failure or a restart; call steps in an order that "
            "depends only on the input, step results and answers (no clocks, random "
            "numbers or outside reads between steps: put those inside steps)"
        )


def _shown(name: str) -> str:
    return "sg.request()" if name == REQUEST else f"step {name!r}"
