"""Calling a handler: in this process or through a backend, wrapped in its layers.

`handle_chains` builds, per executor, the call the runner makes for each
message: the handler itself (async on the loop, sync in a worker thread, or a
backend's proxy), inside the executor's policy and the session's `handle`
interceptors. `routed` is that call for an executor with an error route.
The snapshot helpers save and restore stateful executors around a superstep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._attempts import Policies
from ._context import Activation, SyncContext
from ._events import ExecutorFailed
from ._interceptors import compose
from ._journal import EffectsMark
from ._requests import ExecutorFailure

if TYPE_CHECKING:
    from ._blueprint import Blueprint
    from ._core import SessionCore

__all__ = [
    "HandleChain",
    "HandlerFailure",
    "dispatch",
    "handle_chains",
    "restore",
    "routed",
    "routed_chain",
    "snapshots_after",
    "snapshots_before",
]

HandleChain = Callable[[Activation], Awaitable[None]]
_NO_SNAPSHOTS: tuple[tuple[Any, Any], ...] = ()


class HandlerFailure(Exception):
    """Internal: carries the failing executor's index out of a task group."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


def dispatch(act: Activation) -> Awaitable[None]:
    """Call the handler in this process: async on the loop, sync in a worker thread."""
    h = act.handler
    if h.is_async:
        return h.invoke(act.executor, act.message, act.context)
    return _in_thread(act)


async def _in_thread(act: Activation) -> None:
    h = act.handler
    sync_ctx = SyncContext.serving(act.context, asyncio.get_running_loop())
    await asyncio.to_thread(h.invoke, act.executor, act.message, sync_ctx)


def _dispatch_remote(act: Activation) -> Awaitable[None]:
    """Hand the message to a backend's proxy, which runs the handler where it lives."""
    return act.executor.handle(act.message, act.context)


def handle_chains(core: SessionCore) -> tuple[HandleChain, ...]:
    """Per executor: the handler call wrapped in the session's and its policy's layers."""
    bp = core.workflow.blueprint
    if core.backend is None and not core.layers and not bp.any_policy:
        plain = bp.plain_handles  # the common case: nothing around a call; made once
        if plain is None:
            plain = bp.plain_handles = (dispatch,) * len(bp.prototypes)
        return plain
    inner: HandleChain = dispatch if core.backend is None else _dispatch_remote
    shared = compose(core.layers, "handle", inner)
    chains: list[HandleChain] = []
    for i, policy in enumerate(bp.policies):
        if bp.policy_active[i]:  # the executor's policy is the innermost layer
            chains.append(compose((*core.layers, Policies(core, i, policy)), "handle", inner))
        else:
            chains.append(shared)
    return tuple(chains)


async def routed(act: Activation, handle: HandleChain, route: int, stateful: bool) -> None:
    """A handler call whose failure goes to its error route instead of failing the step.

    The failed call's effects are discarded (and a stateful executor gets its
    state from before the call back); its `ExecutorFailure` is sent to the route.
    """
    mark = EffectsMark(act)
    snapshot: Any = await act.executor.snapshot() if stateful else None
    act.attempts = 1
    try:
        await handle(act)
    except Exception as exc:
        mark.rollback(act)
        if stateful:
            await act.executor.restore(snapshot)
        eid = act.context.executor_id
        failure = ExecutorFailure(eid, type(exc).__name__, str(exc), act.message, act.attempts)
        act.sends.append((route, failure))
        act.sink.emit(ExecutorFailed(eid, exc))


def routed_chain(handle: HandleChain, route: int, stateful: tuple[bool, ...]) -> HandleChain:
    """`handle` with its failures sent to executor `route` (see `routed`)."""

    def call(act: Activation) -> Awaitable[None]:
        return routed(act, handle, route, stateful[act.index])

    return call


async def snapshots_before(
    acts: Sequence[Activation], stateful: tuple[bool, ...]
) -> list[tuple[Any, Any]]:
    """(executor, snapshot) of the stateful executors about to run, for a rollback."""
    out: list[tuple[Any, Any]] = []
    for act in acts:
        if stateful[act.index]:
            ex = act.executor
            out.append((ex, await ex.snapshot()))
    return out


async def snapshots_after(acts: Sequence[Activation], bp: Blueprint) -> dict[str, Any]:
    """Snapshots, by executor id, of the stateful executors that ran (for the checkpoint)."""
    if not bp.any_stateful:
        return {}
    out: dict[str, Any] = {}
    for act in acts:
        if bp.stateful[act.index]:
            out[bp.plan.ids[act.index]] = await act.executor.snapshot()
    return out


async def restore(snapshots: Sequence[tuple[Any, Any]]) -> None:
    """Give executors the snapshots `snapshots_before` took."""
    for ex, data in snapshots:
        await ex.restore(data)
