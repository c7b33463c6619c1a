"""Which session's handlers are running: a context variable the runner sets per superstep.

Handler tasks are created inside the superstep, so they inherit it, and so does
anything they call. Code that must keep per-session state without being handed
the session (a shared test double such as `ScriptedChatClient`) reads it with
`current_session()`; everything else should use the handler's context.
"""

from __future__ import annotations

import contextvars
from collections.abc import Generator
from contextlib import contextmanager

__all__ = ["current_session", "running"]

_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stepgraph_session", default=None
)


def current_session() -> str | None:
    """The id of the session whose superstep is running here, or None outside any run."""
    return _SESSION.get()


@contextmanager
def running(session_id: str) -> Generator[None]:
    """Mark the code inside as running a superstep of session `session_id`."""
    token = _SESSION.set(session_id)
    try:
        yield
    finally:
        _SESSION.reset(token)
