"""stepgraph events as plain JSON for the dev UI stream, and the hub that fans them out.

Every run the server drives publishes its events here, tagged with the
session and run ids. Subscribers (dev UI streams) get them live from a
bounded queue each; a subscriber that falls too far behind is dropped (its
stream ends and the page reconnects). A short ring buffer lets a reconnecting
stream replay what it missed (`Last-Event-ID`). A subscriber gets only the
records of runs its principal may see (`Principal.may_see`).
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import stepgraph as sg
from stepgraph.plain import event_plain, request_plain

from ._auth import ANONYMOUS, Principal
from ._plain import output_text

__all__ = ["Hub", "Subscription", "event_json", "request_json"]


def request_json(request: sg.Request) -> dict[str, Any]:
    """A pending request as JSON (payload in plain JSON, response type by name)."""
    return request_plain(request)


def event_json(event: sg.Event) -> dict[str, Any]:
    """One stepgraph event as `{"type": snake_case_name, ...fields}`; outputs carry their text."""
    return event_plain(event, output_text)


class Subscription:
    """One dev UI stream: a bounded queue of records for one session or for all, of the
    runs `viewer` may see.
    """

    def __init__(
        self, session_id: str | None, size: int = 1000, viewer: Principal = ANONYMOUS
    ) -> None:
        self.session_id = session_id
        self.viewer = viewer
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(size)
        self.dropped = False


class Hub:
    """Fans published records out to subscriptions; keeps the last few for replays."""

    def __init__(self, keep: int = 2000) -> None:
        self._subs: list[Subscription] = []
        self._recent: collections.deque[tuple[str | None, dict[str, Any]]] = collections.deque(
            maxlen=keep
        )
        self._seq = 0

    def wants(self, session_id: str) -> bool:
        """Whether any subscription listens to this session (then runs stream live)."""
        return any(s.session_id in (None, session_id) for s in self._subs)

    def publish(
        self, session_id: str, run_id: str, event: dict[str, Any], owner: str | None
    ) -> None:
        """Send a record of a run `owner` started to every matching subscription."""
        self._seq += 1
        record = {"seq": self._seq, "session_id": session_id, "run_id": run_id, **event}
        self._recent.append((owner, record))
        for sub in list(self._subs):
            if sub.session_id not in (None, session_id) or not sub.viewer.may_see(owner):
                continue
            try:
                sub.queue.put_nowait(record)
            except asyncio.QueueFull:
                self._drop(sub)

    def subscribe(
        self, session_id: str | None, after: int | None = None, viewer: Principal = ANONYMOUS
    ) -> Subscription:
        """A new subscription of `viewer`; with `after`, records after that sequence number
        come first.
        """
        sub = Subscription(session_id, viewer=viewer)
        if after is not None:
            for owner, rec in self._recent:
                if (
                    rec["seq"] > after
                    and session_id in (None, rec["session_id"])
                    and viewer.may_see(owner)
                ):
                    sub.queue.put_nowait(rec)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to `sub`."""
        if sub in self._subs:
            self._subs.remove(sub)

    def close(self) -> None:
        """End every subscription (server shutdown)."""
        for sub in list(self._subs):
            self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        self.unsubscribe(sub)
        sub.dropped = True
        while True:  # make room for the end marker
            try:
                sub.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()
