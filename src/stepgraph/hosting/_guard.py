"""The busy guard of a host's sessions, and what a request does when its session is busy.

One request at a time holds a session (its *busy mark*), taken synchronously
before any await. A request for a session that is held follows its
double-texting policy:

* `reject`: 409 at once (`conversation_busy`, the default);
* `enqueue`: wait in line; the holder hands the mark to the first in line
  when it lets go, so waiting requests run one after another in arrival order
  and nobody barges in between;
* `interrupt`: the holder's run is cancelled (its response ends `cancelled`)
  and the request goes to the front of the line. Requests already waiting are
  not cancelled; they run after it.

The line lives in this process: with several replicas, a request that finds
the session held by another replica gets 409 whatever its policy (`_replicas`).
Futures are created only when a request has to wait, inside the running loop.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Literal, get_args

from ._errors import ApiError
from ._replicas import busy

__all__ = [
    "POLICIES",
    "DoubleTexting",
    "SessionGuard",
    "Withdrawn",
    "check_policy",
    "closing_error",
]

DoubleTexting = Literal["reject", "enqueue", "interrupt"]
"""What a request for a session that is running does: 409, wait in line, or cancel the run."""

POLICIES: tuple[str, ...] = get_args(DoubleTexting)


class Withdrawn(Exception):
    """A waiting request left the line without its turn (cancelled, or the server closes)."""


def check_policy(value: str) -> DoubleTexting:
    """`value` as a policy; `ValueError` naming the choices otherwise."""
    if value == "reject" or value == "enqueue" or value == "interrupt":
        return value
    raise ValueError(f"double_texting must be one of {', '.join(POLICIES)}, not {value!r}")


class SessionGuard:
    """Busy marks, lines of waiting requests and interrupt flags, per session id."""

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._lines: dict[str, collections.deque[asyncio.Future[None]]] = {}
        self._interrupts: dict[str, set[asyncio.Future[None]]] = {}  # turns of interrupters

    def is_busy(self, session_id: str) -> bool:
        """Whether a request holds the session."""
        return session_id in self._busy

    def waiting(self, session_id: str) -> int:
        """How many requests wait in the session's line."""
        return sum(1 for t in self._lines.get(session_id, ()) if not t.done())

    def held(self) -> set[str]:
        """Ids of the sessions held now (a copy)."""
        return set(self._busy)

    def enter(
        self, session_id: str, what: str, policy: DoubleTexting = "reject"
    ) -> asyncio.Future[None] | None:
        """Take the session's mark (None), or join its line (a future set when the mark
        is handed over); raises the 409 when it is held and `policy` is `reject`.
        """
        if session_id not in self._busy:
            self._busy.add(session_id)
            return None
        if policy == "reject":
            raise busy(what)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line = self._lines.setdefault(session_id, collections.deque())
        if policy == "interrupt":
            line.appendleft(turn)
            self._interrupts.setdefault(session_id, set()).add(turn)
        else:
            line.append(turn)
        return turn

    async def wait(self, session_id: str, turn: asyncio.Future[None]) -> None:
        """Wait for `turn` (from `enter`); then the caller holds the mark.

        Raises `Withdrawn` when the request was taken out of the line; a caller
        cancelled after the mark was handed over passes it on.
        """
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self.leave(session_id)  # handed over as we were cancelled: pass it on
            else:
                self.withdraw(session_id, turn)
            raise
        finally:
            self._done_interrupting(session_id, turn)

    def _done_interrupting(self, session_id: str, turn: asyncio.Future[None]) -> None:
        turns = self._interrupts.get(session_id)
        if turns is not None:
            turns.discard(turn)
            if not turns:
                del self._interrupts[session_id]

    def withdraw(self, session_id: str, turn: asyncio.Future[None]) -> bool:
        """Take a waiting request out of the line (its `wait` raises `Withdrawn`).
        False when it had its turn already.
        """
        line = self._lines.get(session_id)
        if line is None or turn not in line:
            return False
        line.remove(turn)
        if not line:
            del self._lines[session_id]
        self._done_interrupting(session_id, turn)
        if not turn.done():
            turn.set_exception(Withdrawn())
        return True

    def leave(self, session_id: str) -> None:
        """Let go of the mark: hand it to the first in line, or clear it."""
        line = self._lines.get(session_id)
        while line:
            turn = line.popleft()
            if not turn.done():
                if not line:
                    del self._lines[session_id]
                turn.set_result(None)
                return
        self._lines.pop(session_id, None)
        self._busy.discard(session_id)

    def interrupting(self, session_id: str) -> bool:
        """Whether a request waits to interrupt the session's run."""
        return session_id in self._interrupts

    def close(self) -> None:
        """Take every waiting request out of its line (the server is closing)."""
        for session_id, line in list(self._lines.items()):
            for turn in list(line):
                self.withdraw(session_id, turn)


def closing_error() -> ApiError:
    """The 503 of a request that arrives, or waits, while the server closes."""
    return ApiError(503, "the server is shutting down; retry later", code="shutting_down")
