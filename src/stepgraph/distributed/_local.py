"""`LocalExecutor`: a backend proxy that runs its executor in this process.

Used for executors that must stay beside the session: sub-workflows drive a
child session of their own and use the parent context's internals.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._context import Context, SyncContext
from .._errors import RoutingError
from .._executor import Executor
from .._handlers import HandlerTable
from .._requests import Answer

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """A proxy that runs its executor in this process (sub-workflows)."""

    def __init__(self, inner: Executor) -> None:
        super().__init__(inner.id)
        self.inner = inner

    def handler_table(self) -> HandlerTable:
        """The wrapped executor's handlers."""
        return self.inner.handler_table()

    async def handle(self, message: Any, ctx: Context[Any, Any]) -> None:
        """Run the handler for `message` here, on `ctx` itself."""
        table = self.inner.handler_table()
        if type(message) is Answer:
            h = table.resolve_answer(message.request.payload, message.response)
        else:
            h = table.resolve(message)
        if h is None:
            raise RoutingError(f"{self.id} has no handler for {type(message).__name__}")
        if h.is_async:
            await h.invoke(self.inner, message, ctx)
            return
        loop = asyncio.get_running_loop()
        sync = SyncContext.serving(ctx, loop)
        await asyncio.to_thread(h.invoke, self.inner, message, sync)

    async def snapshot(self) -> Any:
        """The wrapped executor's `snapshot()`."""
        return await self.inner.snapshot()  # type: ignore[attr-defined]

    async def restore(self, data: Any) -> None:
        """The wrapped executor's `restore(data)`."""
        await self.inner.restore(data)  # type: ignore[attr-defined]
