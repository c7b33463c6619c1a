"""Steering a run: breakpoints and `StateUpdated` events, a layer around its supersteps.

`run`, `respond` and `resume` take `interrupt_before=` / `interrupt_after=`
(executor ids) and `state_updates=`. When any is given, the run's superstep
call is wrapped by a `Steering` (made per run, like an interceptor of
`_interceptors`, but per run rather than per session); when none is, the
runner calls its superstep chain directly and pays nothing.

Breakpoints, at the barrier between supersteps:

* `interrupt_before=["x"]`: before a superstep in which `x` has messages to
  process, the run stops;
* `interrupt_after=["x"]`: after a committed superstep in which `x` ran, the
  run stops when messages are queued (with nothing queued the run ends as
  usual: there is nothing left to pause).

A stop keeps the queued messages, sets the session's status to `PAUSED` and,
with a store, saves it as the new head checkpoint. `resume()` from a paused
session runs its first superstep without the `interrupt_before` check, so it
never stops again at the breakpoint it paused at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._events import RunStatus, StateUpdated

if TYPE_CHECKING:
    from ._blueprint import Blueprint
    from ._content import SessionContent
    from ._interceptors import SuperstepCall
    from ._sinks import Sink

__all__ = ["Paused", "Steering", "steering"]

Step = Callable[["SuperstepCall"], Awaitable[None]]
Save = Callable[..., Awaitable[None]]
"""The runner's checkpoint save: `save(superstep, status, written, snapshots, queue)`."""


class Paused(Exception):
    """Internal: the run reached a breakpoint (caught by the runner, never seen by users)."""


class Steering:
    """One run's breakpoints (executor indices) and whether it reports `StateUpdated`.

    Attributes:
        before: executors whose activation stops the run before their superstep.
        after: executors whose activation stops the run after their superstep.
        state_updates: emit a `StateUpdated` after each superstep that wrote state.
        resumed: the run resumes a paused session: its first superstep is not
            checked against `before` (set by `resume()` once the session is loaded).
    """

    __slots__ = ("after", "before", "resumed", "state_updates")

    def __init__(self, before: frozenset[int], after: frozenset[int], state_updates: bool) -> None:
        self.before = before
        self.after = after
        self.state_updates = state_updates
        self.resumed = False

    def wrap(self, step: Step, sink: Sink, save: Save | None) -> Step:
        """`step` with the breakpoint checks and `StateUpdated` events around it.

        `save` (None without a store) saves the paused session before the run stops.
        """
        before, after, updates = self.before, self.after, self.state_updates

        async def steered(call: SuperstepCall) -> None:
            content = call.content
            if before and not self.resumed and not before.isdisjoint(content.queue):
                await _stop(content, save)
            self.resumed = False
            await step(call)
            acts = call.activations
            if updates:
                written: dict[str, Any] = {}
                for act in acts:  # in commit order: a later writer of a key wins
                    if act.writes:
                        written.update(act.writes)
                if written:
                    sink.emit(StateUpdated(call.number, written))
            if after and content.queue and any(act.index in after for act in acts):
                await _stop(content, save)

        return steered


async def _stop(content: SessionContent, save: Save | None) -> None:
    """Stop the run at a breakpoint: the session is `PAUSED`, its messages kept."""
    if save is not None:
        await save(content.superstep, RunStatus.PAUSED, {}, {}, content.queue)
    content.status = RunStatus.PAUSED
    raise Paused


def steering(
    bp: Blueprint,
    interrupt_before: Iterable[str] | None,
    interrupt_after: Iterable[str] | None,
    state_updates: bool,
) -> Steering | None:
    """The `Steering` of a run, or None when it asks for nothing (the usual case).

    Raises:
        ValueError: an id names no executor of the workflow (the message lists them).
        TypeError: `interrupt_before`/`interrupt_after` is a single string.
    """
    if interrupt_before is None and interrupt_after is None and not state_updates:
        return None
    before = _indices(bp, interrupt_before, "interrupt_before")
    after = _indices(bp, interrupt_after, "interrupt_after")
    if not (before or after or state_updates):
        return None
    return Steering(before, after, state_updates)


def _indices(bp: Blueprint, ids: Iterable[str] | None, what: str) -> frozenset[int]:
    if ids is None:
        return frozenset()
    if isinstance(ids, str):
        raise TypeError(f"{what} takes executor ids, e.g. {what}=[{ids!r}], not a string")
    index = bp.plan.index
    wanted = list(ids)
    unknown = [i for i in wanted if i not in index]
    if unknown:
        known = ", ".join(repr(k) for k in index)
        raise ValueError(
            f"{what} names no executor {', '.join(repr(u) for u in unknown)} of this "
            f"workflow; its executors are {known}"
        )
    return frozenset(index[i] for i in wanted)
