"""Dynamic parallel map: the messages and buffers of `WorkflowBuilder.add_map`.

A source's send of a sequence over a map edge becomes a *batch* at the
barrier: one queued `MapItem` per item for the worker. In the next superstep
each item is its own activation of a fresh worker instance. When the map has
a collector, what an item sends goes to its slot of the batch (`ItemSlot`);
an item is *done* when its activation commits without leaving a request
unanswered, and when every item of a batch is done the collector gets the
slots' messages as one list, in item order, in the next superstep.

`MapBuffers` is plain data owned by the session content: batches in flight
(per item: its messages, whether it is done, how many requests it waits on)
and which pending request belongs to which item. It is stored in checkpoints
as part `m` (`_parts.MAPS`); a checkpoint without it has no map in flight.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import CheckpointDecodeError

__all__ = ["ItemSlot", "MapBuffers", "MapItem", "MapSlot"]


@dataclass(frozen=True, slots=True)
class MapItem:
    """Internal message: item `index` of batch `batch` of map edge `group`, for its worker."""

    group: int
    batch: int
    index: int
    value: Any


@dataclass(frozen=True, slots=True)
class MapSlot:
    """Where a source's sequence goes: map edge `group`, whose worker is `target`."""

    group: int
    target: int


class ItemSlot:
    """One item of one batch; as a send target, that item's slot in its batch.

    `target` is the collector's index, or -1 for a map without a collector
    (then the item's sends follow the worker's own edges). Immutable by
    convention; a plain slotted class, made once per item (W8b: a frozen
    dataclass's init costs about 1 µs more per item).
    """

    __slots__ = ("batch", "group", "index", "target")

    def __init__(self, group: int, batch: int, index: int, target: int) -> None:
        self.group = group
        self.batch = batch
        self.index = index
        self.target = target

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ItemSlot) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        g, b, i, t = self.key()
        return f"ItemSlot(group={g}, batch={b}, index={i}, target={t})"

    def key(self) -> tuple[int, int, int, int]:
        """The fields, as a tuple."""
        return (self.group, self.batch, self.index, self.target)

    @property
    def collects(self) -> bool:
        """True when the item's sends go to its slot (the map has a collector)."""
        return self.target >= 0


class _Batch:
    __slots__ = ("asks", "group", "results", "target", "todo")

    def __init__(self, group: int, target: int, size: int) -> None:
        self.group = group
        self.target = target
        self.results: list[list[Any]] = [[] for _ in range(size)]
        self.todo: set[int] = set(range(size))  # items not done
        self.asks: dict[int, int] = {}  # item -> requests it waits on

    def copy(self) -> _Batch:
        out = _Batch(self.group, self.target, 0)
        out.results = [list(r) for r in self.results]
        out.todo = set(self.todo)
        out.asks = dict(self.asks)
        return out


class MapBuffers:
    """Batches in flight and the items' pending requests, of one session."""

    __slots__ = ("batches", "next", "waiting")

    def __init__(self) -> None:
        self.next = 0  # the next batch number (numbers count over the session's life)
        self.batches: dict[int, _Batch] = {}
        self.waiting: dict[str, ItemSlot] = {}  # request id -> the item that asked

    def __bool__(self) -> bool:
        return bool(self.batches or self.waiting)

    def copy(self) -> MapBuffers:
        """An independent copy (the barrier commits into a copy until the checkpoint is saved)."""
        out = MapBuffers()
        out.next = self.next
        out.batches = {b: batch.copy() for b, batch in self.batches.items()}
        out.waiting = dict(self.waiting)
        return out

    def start(self, group: int, collector: int, values: Sequence[Any]) -> list[Any]:
        """Open a batch over `values`; the `MapItem` messages to queue for the worker."""
        batch = self.next
        self.next += 1
        if collector >= 0:
            self.batches[batch] = _Batch(group, collector, len(values))
        return [MapItem(group, batch, i, v) for i, v in enumerate(values)]

    def put(self, slot: ItemSlot, message: Any) -> None:
        """An item's send, committed: into its slot."""
        self.batches[slot.batch].results[slot.index].append(message)

    def settle(
        self, item: ItemSlot, answered: str | None, requests: Sequence[Any] | None
    ) -> list[Any] | None:
        """Record an item's committed activation; the collected list when its batch completes.

        `answered` is the id of the request whose answer the activation handled;
        `requests` what it asked (the item waits for their answers).
        """
        if answered is not None:
            self.waiting.pop(answered, None)
        for request in requests or ():
            self.waiting[request.id] = item
        batch = self.batches.get(item.batch) if item.collects else None
        if batch is None:
            return None
        asks = batch.asks.get(item.index, 0) - (answered is not None) + len(requests or ())
        if asks > 0:
            batch.asks[item.index] = asks
            return None
        batch.asks.pop(item.index, None)
        batch.todo.discard(item.index)
        if batch.todo:
            return None
        del self.batches[item.batch]
        return [m for slot in batch.results for m in slot]

    def drop(self, pending: Container[str]) -> None:
        """A cancelled run: keep the batches whose items wait on `pending` requests, drop the rest.

        Requests stay pending across a cancel, so an item waiting on one keeps
        its batch: its finished siblings' results stay, and the batch completes
        (the collector getting the whole list, as without the cancel) once the
        remaining requests are answered. A batch with no item waiting has not
        run yet (its items were queued, and the queue is dropped): it goes.
        """
        self.waiting = {r: slot for r, slot in self.waiting.items() if r in pending}
        live = {slot.batch for slot in self.waiting.values()}
        self.batches = {b: batch for b, batch in self.batches.items() if b in live}

    # -- checkpoint form --------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """A serde-encodable form (checkpoint part `m`)."""
        return {
            "next": self.next,
            "batches": [
                [
                    b,
                    x.group,
                    x.target,
                    x.results,
                    sorted(x.todo),
                    [[i, n] for i, n in x.asks.items()],
                ]
                for b, x in self.batches.items()
            ],
            "waiting": [[r, s.group, s.batch, s.index, s.target] for r, s in self.waiting.items()],
        }

    @classmethod
    def load(cls, raw: Any) -> MapBuffers:
        """Rebuild from `dump()`'s form.

        Raises:
            CheckpointDecodeError: the form is malformed.
        """
        out = cls()
        try:
            out.next = int(raw["next"])
            for b, group, target, results, todo, asks in raw["batches"]:
                batch = _Batch(int(group), int(target), 0)
                batch.results = [list(r) for r in results]
                batch.todo = {int(i) for i in todo}
                batch.asks = {int(i): int(n) for i, n in asks}
                out.batches[int(b)] = batch
            for r, group, b, index, target in raw["waiting"]:
                out.waiting[str(r)] = ItemSlot(int(group), int(b), int(index), int(target))
        except (TypeError, ValueError, KeyError):
            raise CheckpointDecodeError("map buffers part is malformed") from None
        return out
