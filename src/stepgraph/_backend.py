"""The executor backend hook: where a session's executors run.

By default a session's executors are local objects made by `Executor.fresh()`.
A backend replaces them with proxies: `instantiate(core, index)` (`core` is
the session's `Session.core`) returns an object that has the executor's `id`,
an async `handle(message, ctx)` that runs the real handler elsewhere and
replays its effects on `ctx` (sends, outputs, emitted events, state writes,
requests) as they happen, and, when the executor keeps state, async
`snapshot()`/`restore(data)`. The session stays the single owner of routing,
supersteps, checkpoints and lineage, so the contract's rules hold whatever the
backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ._core import SessionCore
    from ._executor import Executor

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    """Makes the executor proxies of a session (see the module docstring)."""

    def instantiate(self, session: SessionCore, index: int) -> Executor:
        """A proxy for executor `index` of `session`'s workflow (`session.core` of a `Session`)."""
        ...
