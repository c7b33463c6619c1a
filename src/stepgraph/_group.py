"""One superstep's handler tasks: started together, all owned, all awaited.

`asyncio.TaskGroup` would do, but it pays a done callback and a loop turn
per task. A superstep's tasks are all made at once and none is added later,
so a lighter owner suffices: the runner waits for the tasks in order, and a
member that fails cancels its siblings itself (the runner is woken as soon
as the task it waits for ends). The rules are TaskGroup's: no task outlives
the superstep, a failure cancels the siblings, and cancelling the runner
cancels every member and waits for all of them before it propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

__all__ = ["Group", "run_group"]

T = TypeVar("T")


class Group:
    """The members of one superstep; `fail` is called by the first member that fails."""

    __slots__ = ("failure", "tasks")

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.failure: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        """Record the first failure and cancel every other member still running."""
        if self.failure is not None:
            return
        self.failure = error
        me = asyncio.current_task()
        for task in self.tasks:
            if task is not me and not task.done():
                task.cancel()


def _waker(waiter: asyncio.Future[None]) -> Callable[[asyncio.Task[None]], None]:
    def wake(_: asyncio.Task[None]) -> None:
        if not waiter.done():
            waiter.set_result(None)

    return wake


async def _wait(task: asyncio.Task[None]) -> None:
    """Wait until `task` ends without cancelling it when the waiter is cancelled."""
    waiter = task.get_loop().create_future()
    wake = _waker(waiter)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        task.remove_done_callback(wake)


# Hand-rolled: asyncio.TaskGroup costs W2 0.90 ms vs 0.74 ms here (bench_stepgraph W2,
# median of 40 interleaved processes, 2026-12-07; ratio IQR 1.18-1.25x, same-code control
# 0.97-1.02x; docs/benchmarks.md "Hand-rolled constructs").
async def run_group(
    start: Callable[[T, Group], Coroutine[Any, Any, None]], items: Sequence[T]
) -> None:
    """Run `start(item, group)` for every item, each in its own task; return when all end.

    Raises:
        BaseException: the first member failure passed to `Group.fail`; or the
            runner's own cancellation, after every member has ended.
    """
    loop = asyncio.get_running_loop()
    group = Group()
    tasks = group.tasks
    try:
        if loop.get_task_factory() is None:  # the loop's own tasks: skip create_task's wrapper
            for item in items:
                tasks.append(asyncio.Task(start(item, group), loop=loop))
        else:
            for item in items:
                if group.failure is not None:  # an eager factory ran a member that failed
                    break
                tasks.append(loop.create_task(start(item, group)))
        for task in tasks:
            if not task.done():
                await _wait(task)
    except BaseException:  # cancelled, or a task could not be made: stop every member
        for task in tasks:
            task.cancel()
        await _settle(tasks)
        raise
    _retrieve(tasks)
    if group.failure is not None:
        raise group.failure


async def _settle(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every task to end, even when cancelled again meanwhile."""
    cancelled = False
    for task in tasks:
        while not task.done():
            try:
                await _wait(task)
            except asyncio.CancelledError:
                cancelled = True
    _retrieve(tasks)
    if cancelled:
        raise asyncio.CancelledError


def _retrieve(tasks: list[asyncio.Task[None]]) -> None:
    """Mark ended members' errors as seen: a failure is reported once, by the runner."""
    for task in tasks:
        if not task.cancelled():
            task.exception()
