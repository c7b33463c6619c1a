"""Reading a checkpoint's parts back into values: the pieces `Checkpointer.decode` uses."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _chunk_writer, _chunks, _parts, serde
from ._checkpoint import Checkpoint
from ._errors import CheckpointDecodeError
from ._events import RunStatus
from ._planner import FanInBuffers, Queue
from ._requests import Request

if TYPE_CHECKING:
    from ._blueprint import Blueprint

__all__ = ["Parts", "read_parts"]

_EMPTY_LIST = _parts.EMPTY_LIST
_EMPTY_DICT = _parts.EMPTY_MAPPING


class Parts:
    """A checkpoint's state values, executor snapshots and own parts, decoded.

    `tracks` remembers what each chunked part stores (`_chunk_writer.track_of`), so the
    session that adopts the checkpoint appends to it rather than re-writing it.
    """

    __slots__ = ("own", "snapshots", "state", "tracks")

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.snapshots: dict[int, Any] = {}
        self.own: dict[str, dict[str, bytes]] = {}
        self.tracks: dict[str, _chunk_writer.Track] = {}


def read_parts(cp: Checkpoint, bp: Blueprint) -> Parts:
    """Decode the state and snapshot parts of `cp` for graph `bp`."""
    registry = bp.registry
    index = bp.plan.index
    out = Parts()

    def value(name: str, data: bytes) -> Any:
        v = _chunks.decode(data, cp.chunks, registry)
        if data[:1] == b"\x00" and (track := _chunk_writer.track_of(data, v)) is not None:
            out.tracks[name] = track
        return v

    for name, data in cp.parts.items():
        kind, subject, rest = _parts.parse(name)
        if kind is _parts.Kind.STATE:
            out.state[subject] = value(name, data)
        elif kind is _parts.Kind.SNAPSHOT:
            if subject not in index:
                raise CheckpointDecodeError(f"checkpoint names unknown executor {subject!r}")
            if not bp.stateful[index[subject]] or bp.own_parts[index[subject]]:
                raise CheckpointDecodeError(
                    f"checkpoint holds a snapshot of executor {subject!r}, which keeps none"
                )
            out.snapshots[index[subject]] = value(name, data)
        elif kind is _parts.Kind.OWN:
            if subject not in index or not bp.own_parts[index[subject]]:
                raise CheckpointDecodeError(f"checkpoint names unknown sub-workflow {subject!r}")
            out.own.setdefault(subject, {})[rest] = data
    return out


def read_pending(cp: Checkpoint, registry: serde.TypeRegistry) -> dict[str, Request]:
    """The pending requests of `cp`, by id."""
    raw = serde.decode(cp.parts.get(_parts.PENDING, _EMPTY_LIST), types=registry)
    if not isinstance(raw, list):
        raise CheckpointDecodeError("pending requests part is not a list")
    pending: dict[str, Request] = {}
    for req in typing_list(raw):
        if not isinstance(req, Request):
            raise CheckpointDecodeError("pending requests part holds a non-Request value")
        pending[req.id] = req
    return pending


def queue_value(cp: Checkpoint, registry: serde.TypeRegistry) -> Any:
    """The queued messages as `{executor id: [message, ...]}`, however they are stored."""
    data = cp.parts.get(_parts.QUEUE, _EMPTY_DICT)
    value = _chunks.decode(data, cp.chunks, registry)
    if data[:1] != b"\x00":
        return value
    queue: dict[str, list[Any]] = {}
    for slot, message in typing_items(typing.cast(dict[Any, Any], value)):
        queue.setdefault(_parts.queue_slot_owner(str(slot)), []).append(message)
    return queue


def status_of(saved: str, queue: Queue) -> RunStatus:
    """The status of a session restored to a checkpoint saved with status `saved`."""
    status = RunStatus.__members__.get(saved, RunStatus.INTERRUPTED)
    if queue:  # a run that did not finish: failed, paused at a breakpoint, or cause unknown
        return status if status in (RunStatus.FAILED, RunStatus.PAUSED) else RunStatus.INTERRUPTED
    if status in (RunStatus.RUNNING, RunStatus.FAILED, RunStatus.INTERRUPTED, RunStatus.PAUSED):
        return RunStatus.IDLE
    return status


def decode_queue(raw: Any, index: Mapping[str, int]) -> Queue:
    if not isinstance(raw, dict):
        raise CheckpointDecodeError("queued messages part is not a mapping")
    queue: Queue = {}
    for eid, msgs in typing_items(typing.cast(dict[Any, Any], raw)):
        if eid not in index or not isinstance(msgs, list):
            raise CheckpointDecodeError(f"queued messages for unknown executor {eid!r}")
        queue[index[eid]] = list(typing_list(msgs))
    return queue


def decode_fanin(raw: Any, sizes: list[int]) -> FanInBuffers:
    if not isinstance(raw, list):
        raise CheckpointDecodeError("fan-in part is not a list")
    out: FanInBuffers = {}
    for entry in typing_list(raw):
        try:
            group, bufs = entry
            if not (isinstance(group, int) and 0 <= group < len(sizes)):
                raise ValueError(group)
            lists = [list(typing_list(b)) for b in typing_list(bufs)]
            if len(lists) != sizes[group]:
                raise ValueError(len(lists))
        except (TypeError, ValueError):
            raise CheckpointDecodeError("fan-in part is malformed") from None
        out[group] = lists
    return out


def typing_items(raw: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """Items of a decoded dict, typed for the checker."""
    return list(raw.items())


def typing_list(raw: Any) -> list[Any]:
    """A decoded list, typed for the checker."""
    if not isinstance(raw, list):
        raise TypeError("expected a list")
    return list(raw)  # pyright: ignore[reportUnknownArgumentType]
