"""The executor backend hook: where a session's executors run.

By default a session's executors are local objects made by `Executor.fresh()`.
A backend replaces them with proxies: `instantiate(session, index)` returns an
object that has the executor's `id`, an async `handle(message, ctx)` that runs
the real handler elsewhere and replays its effects on `ctx` (sends, outputs,
emitted events, state writes, requests) as they happen, and, when the
executor keeps state, async `snapshot()`/`restore(data)`. The session stays
the single owner of routing, supersteps, checkpoints and lineage, so the
contract's rules hold whatever the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._executor import Executor
    from ._session import Session

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    """Makes the executor proxies of a session (see the module docstring)."""

    def instantiate(self, session: Session[Any], index: int) -> Executor:
        """A proxy for executor `index` of `session`'s workflow."""
        ...
