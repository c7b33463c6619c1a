"""Which session's handlers are running: a context variable set for the whole of a run.

Handler tasks are created inside the run, so they inherit it, and so does
anything they call. Code that must keep per-session state without being handed
the session (a shared test double such as `ScriptedChatClient`) reads it with
`current_session()`; everything else should use the handler's context.
"""

from __future__ import annotations

import contextvars

__all__ = ["current_session", "enter", "leave"]

_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stepgraph_session", default=None
)


def current_session() -> str | None:
    """The id of the session whose superstep is running here, or None outside any run."""
    return _SESSION.get()


def enter(session_id: str) -> contextvars.Token[str | None]:
    """Mark what runs from here on (in this task) as session `session_id`'s; `leave` undoes it.

    Set once per run, not per superstep: a `with` block per superstep cost W3 ~2 us.
    """
    return _SESSION.set(session_id)


def leave(token: contextvars.Token[str | None]) -> None:
    """Undo `enter`."""
    _SESSION.reset(token)
