"""The Responses SSE events of one streamed run: tokens as deltas, outputs, requests.

Each agent reply that streams tokens (`AgentUpdate`, from agents at any depth:
sub-workflows, orchestrations, workflows used as agents) is one assistant
message item, opened at its first token, with one `response.output_text.delta`
per token, done when the reply ends (`ReplyStream` decides). An output whose
replies were streamed adds nothing; any other output is a message item of its
text, one delta, as before; requests are `function_call` items. So the final
text the client accumulates is exactly the deltas it received, joined.
"""

from __future__ import annotations

import stepgraph as sg
from stepgraph.agents import (
    OutputText,
    ReplyClosed,
    ReplyDelta,
    ReplyOpened,
    ReplyStep,
    ReplyStream,
)

from ._events import event_json
from ._plain import output_text
from ._sse import ResponseEvents

__all__ = ["ReplyFrames"]


class ReplyFrames:
    """Turns a run's events into Responses SSE frames, in order.

    Args:
        events: the response's event builder (it keeps the output items).
        stepgraph_events: also send every event as `stepgraph.event`.
    """

    def __init__(self, events: ResponseEvents, *, stepgraph_events: bool = False) -> None:
        self._events = events
        self._custom = stepgraph_events
        self._replies = ReplyStream()
        self._items: dict[int, int] = {}  # reply number -> output index

    def frames(self, ev: sg.Event) -> list[bytes]:
        """The frames of one event."""
        out: list[bytes] = []
        if self._custom:
            out.append(self._events.custom("stepgraph.event", {"event": event_json(ev)}))
        for step in self._replies.feed(ev):
            out += self._step(step)
        if isinstance(ev, sg.RequestIssued):
            out += self._events.function_call(ev.request)
        return out

    def close(self) -> list[bytes]:
        """Finish the message items still open (the run ended); call before the body."""
        out: list[bytes] = []
        for step in self._replies.close_all():
            out += self._step(step)
        return out

    def _step(self, step: ReplyStep) -> list[bytes]:
        events = self._events
        match step:
            case ReplyOpened(reply=n):
                self._items[n], frames = events.open_text()
                return frames
            case ReplyDelta(reply=n, text=text):
                return events.delta(self._items[n], text)
            case ReplyClosed(reply=n, text=text):
                return events.close_text(self._items.pop(n), text)
            case OutputText(value=value, texts=None):
                return events.text(output_text(value))
            case OutputText(texts=texts):
                return [f for text in texts or () for f in events.text(text)]
