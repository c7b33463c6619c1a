"""Server-sent events: the frame encoder, the Responses event grammar, and the ASGI response.

`ResponseEvents` produces the complete sequence the official client's
`responses.stream()` helper checks: `response.created`, `response.in_progress`,
then per item `output_item.added`, `content_part.added`,
`output_text.delta`/`.done`, `content_part.done`, `output_item.done` (or the
function-call variants), and `response.completed` or `response.failed`; each
event carries a `sequence_number`, and every delta's item and part were
announced before it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from stepgraph import Request

from ._wire import function_call_item, message_item, new_id

__all__ = ["EventStream", "ResponseEvents", "frame"]

SSE_HEADERS = {
    "cache-control": "no-cache",
    "connection": "keep-alive",
    "x-accel-buffering": "no",
}


def frame(event: str | None, data: Any, event_id: int | None = None) -> bytes:
    """One SSE frame: optional `id:` and `event:` lines, one `data:` line of JSON."""
    head = ""
    if event_id is not None:
        head += f"id: {event_id}\n"
    if event is not None:
        head += f"event: {event}\n"
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ResponseEvents:
    """Builds the Responses SSE events of one response, in order.

    Args:
        snapshot: returns the Response object as it stands (status, output so far).
    """

    def __init__(self, snapshot: Callable[[str], dict[str, Any]]) -> None:
        self._snapshot = snapshot
        self._seq = 0
        self.output: list[dict[str, Any]] = []

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return frame(kind, data)

    def started(self) -> list[bytes]:
        """`response.created` and `response.in_progress`."""
        snap = self._snapshot("in_progress")
        return [
            self._event("response.created", response=snap),
            self._event("response.in_progress", response=snap),
        ]

    def text(self, text: str) -> list[bytes]:
        """One assistant message item holding `text`, whole (one delta)."""
        idx, frames = self.open_text()
        return frames + self.delta(idx, text) + self.close_text(idx, text)

    def open_text(self, item_id: str | None = None) -> tuple[int, list[bytes]]:
        """Start an assistant message item that deltas will fill: its output index and the
        `output_item.added` and `content_part.added` events.
        """
        idx, item_id = len(self.output), item_id or new_id("msg")
        self.output.append(message_item(item_id, "", "in_progress"))
        part: dict[str, Any] = {
            "type": "output_text",
            "text": "",
            "annotations": [],
            "logprobs": [],
        }
        return idx, [
            self._event(
                "response.output_item.added",
                output_index=idx,
                item={**message_item(item_id, "", "in_progress"), "content": []},
            ),
            self._event("response.content_part.added", **self._where(idx), part=part),
        ]

    def delta(self, idx: int, text: str) -> list[bytes]:
        """`output_text.delta` of the open message item `idx` (none for empty text)."""
        if not text:
            return []
        return [
            self._event("response.output_text.delta", **self._where(idx), delta=text, logprobs=[])
        ]

    def close_text(self, idx: int, text: str) -> list[bytes]:
        """Finish message item `idx`, whose deltas joined are `text`."""
        done = message_item(self.output[idx]["id"], text)
        self.output[idx] = done
        where = self._where(idx)
        return [
            self._event("response.output_text.done", **where, text=text, logprobs=[]),
            self._event("response.content_part.done", **where, part=done["content"][0]),
            self._event("response.output_item.done", output_index=idx, item=done),
        ]

    def _where(self, idx: int) -> dict[str, Any]:
        return {"item_id": self.output[idx]["id"], "output_index": idx, "content_index": 0}

    def function_call(self, request: Request) -> list[bytes]:
        """One `function_call` item for a workflow request."""
        return self._call(function_call_item(new_id("fc"), request))

    def replay(self, body: dict[str, Any]) -> list[bytes]:
        """Every event of a finished response again, from its body (a repeated request)."""
        frames = self.started()
        for item in body["output"]:
            frames += self._message(item) if item["type"] == "message" else self._call(item)
        frames.append(self.finished(body))
        return frames

    def _message(self, done: dict[str, Any]) -> list[bytes]:
        idx, frames = self.open_text(done["id"])
        text = done["content"][0]["text"]
        return frames + self.delta(idx, text) + self.close_text(idx, text)

    def _call(self, done: dict[str, Any]) -> list[bytes]:
        idx = len(self.output)
        self.output.append(done)
        where = {"item_id": done["id"], "output_index": idx}
        return [
            self._event(
                "response.output_item.added",
                output_index=idx,
                item={**done, "arguments": "", "status": "in_progress"},
            ),
            self._event("response.function_call_arguments.delta", **where, delta=done["arguments"]),
            self._event(
                "response.function_call_arguments.done",
                **where,
                name=done["name"],
                arguments=done["arguments"],
            ),
            self._event("response.output_item.done", output_index=idx, item=done),
        ]

    def custom(self, kind: str, payload: dict[str, Any]) -> bytes:
        """A stepgraph event (`stepgraph.event`), which the client passes through."""
        return self._event(kind, **payload)

    def finished(self, body: dict[str, Any]) -> bytes:
        """`response.completed`, `response.failed` or `response.incomplete` with `body`."""
        kind = {"completed": "response.completed", "failed": "response.failed"}.get(
            body["status"], "response.incomplete"
        )
        return self._event(kind, response=body)


class EventStream(Response):
    """A streaming `text/event-stream` response that always runs `on_close`.

    `on_close` (awaited) runs once the body is done, the client went away or
    the request was cancelled, even when the body never started, so whatever
    the stream holds (a conversation's busy mark and lock, a run) is released.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._body = body
        self._on_close = on_close
        self.status_code = 200
        self.background = None
        self.init_headers({**SSE_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                pump = tg.create_task(self._pump(send))
                watch = tg.create_task(_disconnected(receive))
                pump.add_done_callback(lambda _: watch.cancel())
                watch.add_done_callback(lambda t: t.cancelled() or pump.cancel())
        finally:
            try:
                aclose = getattr(self._body, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                if self._on_close is not None:
                    await self._on_close()

    async def _pump(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self._body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away


async def _disconnected(receive: Receive) -> None:
    """Return when the client disconnects (the body of the request was read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass
