"""The HTTP protocol `serve` runs: uvicorn's httptools protocol with an idle deadline.

uvicorn closes a keep-alive connection `timeout_keep_alive` seconds after a
response, but only while no byte arrives, and never one that has not yet sent
a whole request head: a client that connects and goes silent (or vanishes
without a FIN, a half-open connection) kept its descriptor forever, and one
that drips a byte now and then kept it too. Here a connection waiting for a
request head (from when it opened, or from its last response) is closed
`timeout_keep_alive` seconds after the wait began, whatever it sends
meanwhile. Once a head has arrived the request belongs to the app: a long
run or a stream is never cut.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["IdleTimeoutProtocol"]


class IdleTimeoutProtocol(HttpToolsProtocol):
    """Closes a connection that waits for a request head longer than the keep-alive timeout."""

    _deadline: float = 0.0  # loop time at which a connection still waiting is closed
    _busy: bool = False  # a request head arrived and its response is not complete

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._deadline = self.loop.time() + self.timeout_keep_alive
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # uvicorn cancels the timer on every byte
        if not self._busy and not self.transport.is_closing():
            self._arm()  # still waiting for a head: the deadline stands

    def on_headers_complete(self) -> None:
        self._busy = True
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None:  # no pipelined request: waiting again
            self._busy = False
            self._deadline = self.loop.time() + self.timeout_keep_alive

    def _arm(self) -> None:
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_at(
            self._deadline, self.timeout_keep_alive_handler
        )
