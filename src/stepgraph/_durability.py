"""Turning a session into checkpoints and back.

`Checkpointer` belongs to one session. It knows the parts of the session's
head checkpoint, so each new checkpoint encodes only what a superstep wrote
(state keys, snapshots of executors that ran, queues) and records which parts
changed: a delta the stores persist cheaply. `restore` rebuilds a session's
content from a checkpoint atomically: everything is decoded and every
executor rebuilt before anything of the session is replaced.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import _chunk_writer, _chunks, _parts, serde
from ._checkpoint import FORMAT_VERSION, FULL_EVERY, Checkpoint, CheckpointInfo, check_graph
from ._content import SessionContent
from ._decoding import (
    decode_fanin,
    decode_queue,
    queue_value,
    read_parts,
    read_pending,
    status_of,
    typing_items,
    typing_list,
)
from ._errors import (
    CheckpointDecodeError,
    CheckpointError,
    GraphMismatchError,
    SerializationError,
)
from ._events import RunStatus
from ._executor import Executor
from ._map import MapBuffers
from ._migrations import MigrationData
from ._planner import FanInBuffers, Queue
from ._requests import Request
from ._state import DELETED
from ._store import chunk_store

if TYPE_CHECKING:
    from ._core import SessionCore
    from ._lease import Lease
    from ._store import CheckpointStore

__all__ = ["Checkpointer"]

_EMPTY_LIST = _parts.EMPTY_LIST
_EMPTY_DICT = _parts.EMPTY_MAPPING


class Checkpointer:
    """Builds, saves and restores the checkpoints of one session."""

    __slots__ = (
        "chunking",
        "core",
        "decoded",
        "depth",
        "lease",
        "parts",
        "seen",
        "staged",
        "store",
        "tracks",
    )

    def __init__(self, core: SessionCore, store: CheckpointStore) -> None:
        self.core = core
        self.store = store
        self.parts: Mapping[str, bytes] = types.MappingProxyType({})
        self.depth = -1  # -1: no head yet, the next checkpoint is full
        self.lease: Lease | None = None  # while a run holds the session's lease: fences saves
        self.seen: str | None = None  # the store's newest checkpoint when we last looked
        # Long lists and large values are stored as chunks when the store keeps them.
        self.chunking = chunk_store(store) is not None
        # What the head stores of each chunked part (`_chunk_writer.Track`), so the next
        # checkpoint writes what was appended; `staged`: the same for a built, unsaved one.
        self.tracks: dict[str, _chunk_writer.Track] = {}
        self.staged: tuple[str, dict[str, _chunk_writer.Track | None]] | None = None
        self.decoded: tuple[str, dict[str, _chunk_writer.Track]] | None = None

    # -- building ---------------------------------------------------------------------

    def _encode(self, value: object, what: str) -> bytes:
        try:
            return serde.encode(value, types=self.core.workflow.blueprint.registry)
        except SerializationError as exc:
            raise SerializationError(
                f"cannot save a checkpoint of session {self.core.id!r}: {what} cannot be "
                f"stored ({exc})"
            ) from exc

    def build(
        self,
        *,
        written: Mapping[str, Any],
        snapshots: Mapping[str, Any],
        queue: Queue,
        fanin: FanInBuffers,
        superstep: int,
        status: RunStatus,
        parent: str | None,
        pending: Mapping[str, Request] | None = None,
        full: bool = False,
        maps: MapBuffers | None = None,
        trace: Mapping[str, Any] | None = None,
    ) -> Checkpoint:
        """A checkpoint of the head plus `written` state keys and executor `snapshots`.

        `trace` tells what made it (`Checkpoint.trace`).
        """
        core = self.core
        bp = core.workflow.blueprint
        old = self.parts
        parts = dict(old)
        out = _Out()
        deleted = self._write_state(parts, written, out)
        self._write_snapshots(parts, snapshots, out)
        self._write_queues(
            parts, queue, fanin, core.content.pending if pending is None else pending, out
        )
        self._write_maps(parts, core.content.maps if maps is None else maps)
        depth = self.depth + 1
        is_full = full or parent is None or self.depth < 0 or depth >= FULL_EVERY
        changed = (
            None
            if is_full
            else frozenset(
                [n for n, b in parts.items() if old.get(n) != b]
                + [n for n in old if n not in parts and not _parts.is_state(n)]
            )
        )
        info = CheckpointInfo(
            id=core.ids(),
            parent_id=parent,
            session_id=core.id,
            superstep=superstep,
            created_at=core.clock(),
        )
        rel = out.relative
        relative = {n: r for n, r in rel.items() if n in changed} if rel and changed else _NONE
        self.staged = (info.id, out.tracks) if out.tracks else None
        return Checkpoint(
            info=info,
            graph_signature=bp.signature,
            graph=bp.description_json,
            status=status.name,
            parts=types.MappingProxyType(parts),
            changed=changed,
            deleted=frozenset(deleted) if not is_full else frozenset(),
            depth=0 if is_full else depth,
            types=bp.registry,
            chunks=types.MappingProxyType(out.chunks) if out.chunks else _NONE,
            relative=types.MappingProxyType(relative) if relative else _NONE,
            trace=trace,
        )

    def _put(self, parts: dict[str, bytes], name: str, value: Any, what: str, out: _Out) -> None:
        """Store `value` as part `name`: plain, or in a chunked form relative to the head's."""
        if not self.chunking or (type(value) is not list and type(value) is not dict):
            data = self._encode(value, what)  # the common case: a small plain value
            if not self.chunking or len(data) < _chunks.BLOB_MIN:
                parts[name] = data
                if name in self.tracks:
                    out.tracks[name] = None
                return
            stored = _chunk_writer.blob(data)
        else:
            stored = _chunk_writer.store(
                value, self.tracks.get(name), lambda v: self._encode(v, what)
            )
        parts[name] = stored.whole
        if stored.relative is not None:
            out.relative[name] = stored.relative
        if stored.chunks:
            out.chunks.update(stored.chunks)
        if stored.track is not None or name in self.tracks:
            out.tracks[name] = stored.track

    def _write_state(
        self, parts: dict[str, bytes], written: Mapping[str, Any], out: _Out
    ) -> set[str]:
        """Encode the written state keys into `parts`; returns the keys deleted."""
        deleted: set[str] = set()
        for key, value in written.items():
            name = _parts.state(key)
            if value is DELETED:
                if parts.pop(name, None) is not None:
                    deleted.add(key)
                if name in self.tracks:
                    out.tracks[name] = None
            else:
                self._put(parts, name, value, f"state[{key!r}]", out)
                deleted.discard(key)
        return deleted

    def _write_snapshots(
        self, parts: dict[str, bytes], snapshots: Mapping[str, Any], out: _Out
    ) -> None:
        """Encode executor snapshots (or an executor's own parts) into `parts`."""
        bp = self.core.workflow.blueprint
        index = bp.plan.index
        for eid, snap in snapshots.items():
            i = index[eid]
            if bp.own_parts[i]:
                keeper = typing.cast(_parts.StoresOwnParts, bp.prototypes[i])
                _put_own(parts, eid, keeper.snapshot_parts(snap))
            else:
                name = _parts.snapshot(eid)
                self._put(parts, name, snap, f"the snapshot of executor {eid!r}", out)

    def _write_queues(
        self,
        parts: dict[str, bytes],
        queue: Queue,
        fanin: FanInBuffers,
        pending: Mapping[str, Request],
        out: _Out,
    ) -> None:
        """Encode the queued messages, fan-in buffers and pending requests into `parts`."""
        ids = self.core.workflow.blueprint.plan.ids
        if self.chunking and queue and _has_long_list(queue):
            # A message that is a long list (an orchestration's conversation) is stored
            # relative to the one queued before it: the queue as one dict by message.
            flat = {
                _parts.queue_slot(ids[i], k): m for i, ms in queue.items() for k, m in enumerate(ms)
            }
            self._put(parts, _parts.QUEUE, flat, "a queued message", out)
            return self._write_waiting(parts, fanin, pending)
        if _parts.QUEUE in self.tracks:
            out.tracks[_parts.QUEUE] = None
        parts[_parts.QUEUE] = (
            self._encode({ids[i]: msgs for i, msgs in queue.items()}, "a queued message")
            if queue
            else _EMPTY_DICT
        )
        self._write_waiting(parts, fanin, pending)

    def _write_waiting(
        self, parts: dict[str, bytes], fanin: FanInBuffers, pending: Mapping[str, Request]
    ) -> None:
        """Encode the fan-in buffers and pending requests into `parts`."""
        parts[_parts.FANIN] = (
            self._encode([[g, bufs] for g, bufs in fanin.items()], "a fan-in buffer")
            if fanin
            else _EMPTY_LIST
        )
        parts[_parts.PENDING] = (
            self._encode(list(pending.values()), "a pending request") if pending else _EMPTY_LIST
        )

    def _write_maps(self, parts: dict[str, bytes], maps: MapBuffers | None) -> None:
        """Encode the maps in flight (once a map ran, an empty part says none is)."""
        if maps:
            parts[_parts.MAPS] = self._encode(maps.dump(), "a map's item or result")
        elif _parts.MAPS in parts:
            parts[_parts.MAPS] = _EMPTY_LIST

    async def save(self, cp: Checkpoint) -> None:
        """Persist `cp`; on success it becomes the head the next delta is built on.

        Raises:
            CheckpointError: the store failed (never swallowed: durability is not optional).
        """
        lease = self.lease
        try:
            if lease is None:
                await self.store.save(cp)
            else:  # fenced: refused if another process took the session over
                await self.store.save(cp, lease=lease)  # type: ignore[call-arg]  # a LeaseStore
        except CheckpointError:
            raise
        except Exception as exc:
            raise CheckpointError(
                f"saving checkpoint {cp.info.id!r} of session {cp.info.session_id!r} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.parts = cp.parts
        self.depth = cp.depth
        self.seen = cp.info.id
        staged, self.staged = self.staged, None
        if staged is not None and staged[0] == cp.info.id:
            for name, track in staged[1].items():
                if track is None:
                    self.tracks.pop(name, None)
                else:
                    self.tracks[name] = track

    def mark(self) -> tuple[Mapping[str, bytes], int, dict[str, _chunk_writer.Track]]:
        """The head as the next checkpoint builds on it (`rewind` puts it back)."""
        return self.parts, self.depth, dict(self.tracks)

    def rewind(self, mark: tuple[Mapping[str, bytes], int, dict[str, _chunk_writer.Track]]) -> None:
        """Put back a `mark` (after a failed save)."""
        self.parts, self.depth, self.tracks = mark

    def adopt(self, cp: Checkpoint) -> None:
        """Make `cp` (loaded, not saved by us) the base of the next delta.

        `cp.depth` is how many deltas its stored record is from the last full
        one, so reopening a session many times still writes a full checkpoint
        at least every `FULL_EVERY` saves and loads never walk far.
        """
        self.parts = cp.parts
        self.depth = cp.depth
        decoded, self.decoded = self.decoded, None
        self.tracks = dict(decoded[1]) if decoded is not None and decoded[0] == cp.info.id else {}

    def forget(self, *, keep_chunks: bool = False) -> None:
        """The next checkpoint is a full one (after a reset).

        With `keep_chunks`, what the head stores as chunks is still built on (a
        full checkpoint of the same content names the same chunks).
        """
        self.parts = types.MappingProxyType({})
        self.depth = -1
        if not keep_chunks:
            self.tracks = {}

    # -- restoring ------------------------------------------------------------------------

    async def decode(self, cp: Checkpoint) -> SessionContent:
        """Decode `cp` into fresh session content without touching the session.

        Whatever the stored bytes hold, the only errors are these two: a part
        of the wrong shape, a snapshot for an executor that keeps no state or
        an executor's `restore()` refusing its data is a `CheckpointDecodeError`.

        Raises:
            GraphMismatchError: `cp` was made by a different graph.
            CheckpointDecodeError: `cp` cannot be read back.
        """
        if cp.version > FORMAT_VERSION:
            raise CheckpointDecodeError(
                f"checkpoint {cp.info.id!r} has format version {cp.version}; this stepgraph "
                f"reads up to {FORMAT_VERSION}: open it with a newer stepgraph"
            )
        try:
            return await self._decode(cp)
        except CheckpointError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            raise CheckpointDecodeError(
                f"checkpoint {cp.info.id!r} of session {cp.info.session_id!r} is malformed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    async def _decode(self, cp: Checkpoint) -> SessionContent:
        bp = self.core.workflow.blueprint
        if cp.graph_signature != bp.signature:
            return await self._migrate(cp)
        check_graph(cp, bp.signature, bp.description)
        registry = bp.registry
        index = bp.plan.index

        read = read_parts(cp, bp)
        snapshots = read.snapshots
        for eid, stored in read.own.items():
            i = index[eid]
            keeper = typing.cast(_parts.StoresOwnParts, bp.prototypes[i])
            snapshots[i] = keeper.snapshot_from_parts(types.MappingProxyType(stored))
        queue = decode_queue(queue_value(cp, registry), index)
        fanin = decode_fanin(
            serde.decode(cp.parts.get(_parts.FANIN, _EMPTY_LIST), types=registry),
            bp.plan.fanin_sizes,
        )
        raw_maps = serde.decode(cp.parts.get(_parts.MAPS, _EMPTY_LIST), types=registry)
        maps = MapBuffers.load(raw_maps) if raw_maps else None
        pending = read_pending(cp, registry)
        executors: list[Executor | None] = [None] * len(bp.prototypes)
        for i, data in snapshots.items():
            ex = self.core.new_executor(i)
            await ex.restore(data)  # type: ignore[attr-defined]
            executors[i] = ex
        self.decoded = (cp.info.id, read.tracks) if read.tracks and self.chunking else None
        return SessionContent(
            len(bp.prototypes),
            state=read.state,
            executors=executors,
            queue=queue,
            fanin=fanin,
            maps=maps,
            pending=pending,
            superstep=cp.info.superstep,
            status=status_of(cp.status, queue),
        )

    async def _migrate(self, cp: Checkpoint) -> SessionContent:
        """Decode a checkpoint of another graph version through a registered migration."""
        wf = self.core.workflow
        bp = wf.blueprint
        try:
            loaded: Any = json.loads(cp.graph) if cp.graph else {}
        except (ValueError, RecursionError):
            loaded = {}
        saved: dict[str, Any] = (
            typing.cast(dict[str, Any], loaded) if isinstance(loaded, dict) else {}
        )
        old_version = saved.get("version")
        fn = bp.migrations.get(str(old_version)) if old_version is not None else None
        if fn is None:
            try:
                check_graph(cp, bp.signature, bp.description)
            except GraphMismatchError as exc:
                raise GraphMismatchError(
                    f"{exc}. The checkpoint is of graph version {old_version!r}, this workflow is "
                    f"{wf.version!r}: register a migration with WorkflowBuilder.migrate("
                    f"{old_version!r}, fn) that rewrites MigrationData for the new graph"
                ) from None
        assert fn is not None
        registry = bp.registry
        data = MigrationData(old_version if old_version is None else str(old_version))
        data.superstep = cp.info.superstep
        for name, blob in cp.parts.items():
            kind, subject, _ = _parts.parse(name)
            if kind is _parts.Kind.STATE:
                data.state[subject] = _chunks.decode(blob, cp.chunks, registry)
            elif kind is _parts.Kind.SNAPSHOT:
                data.executors[subject] = _chunks.decode(blob, cp.chunks, registry)
        queue = queue_value(cp, registry)
        data.queue = {str(k): list(v) for k, v in typing_items(typing.cast(dict[Any, Any], queue))}
        data.pending = list(
            typing_list(serde.decode(cp.parts.get(_parts.PENDING, _EMPTY_LIST), types=registry))
        )
        new = fn(data)
        index = bp.plan.index
        unknown = [e for e in (*new.executors, *new.queue) if e not in index]
        unknown += [
            r.executor_id for r in new.pending if r.executor_id.split("/", 1)[0] not in index
        ]
        if unknown:
            raise GraphMismatchError(
                f"the migration from version {old_version!r} left data for executors the new "
                f"graph does not have: {sorted(set(unknown))}"
            )
        executors: list[Executor | None] = [None] * len(bp.prototypes)
        for eid, snap in new.executors.items():
            ex = self.core.new_executor(index[eid])
            await ex.restore(snap)  # type: ignore[attr-defined]
            executors[index[eid]] = ex
        queue_new: Queue = {index[e]: list(m) for e, m in new.queue.items() if m}
        self.forget()  # the next checkpoint is a full one of the new graph
        return SessionContent(
            len(bp.prototypes),
            state=dict(new.state),
            executors=executors,
            queue=queue_new,
            pending={r.id: r for r in new.pending},
            superstep=new.superstep,
            status=status_of(cp.status, queue_new),
        )


def _has_long_list(queue: Queue) -> bool:
    """True when a queued message is a list stored in the chunked list form."""
    for messages in queue.values():
        for m in messages:
            if type(m) is list and len(m) >= _chunks.LIST_MIN:  # pyright: ignore[reportUnknownArgumentType]
                return True
    return False


class _Out:
    """What building one checkpoint produced besides its parts."""

    __slots__ = ("chunks", "relative", "tracks")

    def __init__(self) -> None:
        self.relative: dict[str, bytes] = {}
        self.chunks: dict[str, bytes] = {}
        self.tracks: dict[str, _chunk_writer.Track | None] = {}


_NONE: Mapping[str, bytes] = types.MappingProxyType({})


def _put_own(parts: dict[str, bytes], eid: str, own: Mapping[str, bytes] | None) -> None:
    """Replace the parts executor `eid` stores itself with `own`."""
    prefix = _parts.own_prefix(eid)
    for name in [n for n in parts if n.startswith(prefix)]:
        del parts[name]
    for name, data in (own or {}).items():
        parts[prefix + name] = data
