"""`SessionContent`: everything that changes in a session, with one owner.

A session owns one `SessionContent` (through its `SessionCore`). The runner
works on it during a run and commits into it at each barrier; the
checkpointer reads it to build checkpoints and decodes checkpoints into a new
one, which replaces the old content as a whole (`replace_with`), so a restore
or a reset is atomic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._events import RunStatus
from ._requests import Answer

if TYPE_CHECKING:
    from ._context import Context
    from ._executor import Executor
    from ._map import MapBuffers
    from ._planner import FanInBuffers, Queue
    from ._requests import Request

__all__ = ["SessionContent"]


class SessionContent:
    """A session's changing content.

    Attributes:
        state: the committed shared state.
        executors: the session's executor instances by index (None until first used).
        contexts: the executors' contexts by index (None until first used).
        queue: messages to deliver in the next superstep, by executor index.
        fanin: fan-in buffers by edge group.
        maps: batches of maps in flight, or None when no map ever ran (or none is in flight).
        pending: requests waiting for answers, by id, in issue order.
        superstep: supersteps committed over the session's whole life.
        status: the status when no run is active.
        head: id of the most recently saved checkpoint, or None.
    """

    __slots__ = (
        "contexts",
        "executors",
        "fanin",
        "head",
        "maps",
        "pending",
        "queue",
        "state",
        "status",
        "superstep",
    )

    def __init__(
        self,
        size: int,
        *,
        state: dict[str, Any] | None = None,
        executors: list[Executor | None] | None = None,
        queue: Queue | None = None,
        fanin: FanInBuffers | None = None,
        maps: MapBuffers | None = None,
        pending: dict[str, Request] | None = None,
        superstep: int = 0,
        status: RunStatus = RunStatus.IDLE,
        head: str | None = None,
    ) -> None:
        self.state: dict[str, Any] = {} if state is None else state
        self.executors: list[Executor | None] = [None] * size if executors is None else executors
        self.contexts: list[Context[Any, Any] | None] = [None] * size if size else []
        self.queue: Queue = {} if queue is None else queue
        self.fanin: FanInBuffers = {} if fanin is None else fanin
        self.maps = maps
        self.pending: dict[str, Request] = {} if pending is None else pending
        self.superstep = superstep
        self.status = status
        self.head = head

    @classmethod
    def empty(cls, size: int) -> SessionContent:
        """A new session's content (`__init__` without its keywords: one per one-shot run)."""
        self = cls.__new__(cls)
        self.state = {}
        self.executors = [None] * size
        self.contexts = [None] * size
        self.queue = {}
        self.fanin = {}
        self.maps = None
        self.pending = {}
        self.superstep = 0
        self.status = RunStatus.IDLE
        self.head = None
        return self

    def replace_with(self, other: SessionContent) -> None:
        """Take over everything of `other` (decoded from a checkpoint, or fresh)."""
        self.state = other.state
        self.executors = other.executors
        self.contexts = other.contexts
        self.queue = other.queue
        self.fanin = other.fanin
        self.maps = other.maps
        self.pending = other.pending
        self.superstep = other.superstep
        self.status = other.status
        self.head = other.head

    def drop_queued(self, status: RunStatus) -> None:
        """Drop undelivered messages, fan-in buffers and unstarted map batches (a cancelled run).

        An undelivered answer makes its question pending again; a map batch
        with an item waiting on a pending request stays (`MapBuffers.drop`).
        """
        for messages in self.queue.values():
            for message in messages:
                if type(message) is Answer:
                    self.pending[message.request.id] = message.request
        self.queue = {}
        self.fanin = {}
        maps = self.maps
        if maps is not None:
            maps.drop(self.pending)
            if not maps:
                self.maps = None
        self.status = status
