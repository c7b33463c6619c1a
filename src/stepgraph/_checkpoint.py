"""Checkpoints: everything needed to continue a session, as immutable encoded parts.

A `Checkpoint` holds its content as named parts, each the `serde` encoding of
one piece (their names and layout live in `_parts`): state values, executor
snapshots, queued messages, fan-in buffers, pending requests.
Parts are bytes, so a checkpoint never aliases live objects: restoring decodes
fresh values every time and later runs cannot change a stored checkpoint.

A checkpoint may be a delta: `changed` names the parts that differ from its
base (its parent), `deleted` the state keys removed since; any other part
removed since is stored as a tombstone (empty bytes). Stores persist
only those parts and rebuild the whole on `load`, with a full checkpoint at
least every `FULL_EVERY` saves of a chain so a load never walks far.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from . import _chunks, _parts, serde
from ._errors import CheckpointDecodeError, GraphMismatchError

__all__ = [
    "FORMAT_VERSION",
    "FULL_EVERY",
    "Checkpoint",
    "CheckpointInfo",
    "graph_difference",
]

FORMAT_VERSION = 2
"""Version of the checkpoint layout; bumped only with a migration and new golden files.

Version 2 added the stored forms of `_chunks` (chunked lists, blobs, relative
parts in delta records); version-1 records hold only plain parts and load as they are.
"""

FULL_EVERY = 32
"""A chain of deltas is cut by a full checkpoint at least this often."""

_EMPTY: Mapping[str, bytes] = types.MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """Where a checkpoint sits in its session's history.

    Attributes:
        id: the checkpoint id.
        parent_id: the session's head when it was saved (None for a root).
        session_id: the session it belongs to.
        superstep: supersteps the session had committed when it was saved.
        created_at: when it was saved (from the session's clock).
    """

    id: str
    parent_id: str | None
    session_id: str
    superstep: int
    created_at: datetime


@dataclass(frozen=True, slots=True, eq=False)
class Checkpoint:
    """A saved session: committed state, executor snapshots, queues, requests, lineage.

    Attributes:
        info: id, parent, session, superstep and time.
        graph_signature: `Workflow.signature` of the graph that saved it.
        graph: JSON description of that graph (for `GraphMismatchError` messages).
        status: name of the `RunStatus` the session had when saved.
        parts: every part of the content, encoded (see the module docstring).
        changed: names of the parts new since `info.parent_id`, or None for a full checkpoint.
        deleted: state keys removed since the parent (delta checkpoints only).
        depth: deltas since the last full checkpoint of the chain (0 = full).
        version: the layout version.
        chunks: content-addressed chunks by id. Saved: the ones this checkpoint
            introduces (a store keeps them per session, once); loaded: every
            chunk its parts reference.
        relative: for changed parts of a delta, their form relative to the
            parent's (what a store persists instead of the whole form).
        trace: what made this checkpoint, as plain JSON, or None: the save's `kind`
            (a run's `input`, `superstep`, `paused` or `cancelled`, each with the
            run's id `run`; `edit` from `update_state` with the keys `written` and
            `deleted`; `checkpoint`, `restore` with `from`, `reset`) and, after a
            superstep, its wall time in µs `us`,
            each activation's `[executor_id, start_us, duration_us(, map item)]` under
            `handlers`, and its events under `events` (see `stepgraph._trace`).
            Stored with the record; not part of the content (a restore ignores it).
    """

    info: CheckpointInfo
    graph_signature: str
    graph: str
    status: str
    parts: Mapping[str, bytes]
    changed: frozenset[str] | None = None
    deleted: frozenset[str] = frozenset()
    depth: int = 0
    version: int = FORMAT_VERSION
    types: serde.TypeRegistry | None = field(default=None, repr=False)
    chunks: Mapping[str, bytes] = field(default_factory=lambda: _EMPTY, repr=False)
    relative: Mapping[str, bytes] = field(default_factory=lambda: _EMPTY, repr=False)
    trace: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        """Shortcut for `info.id`."""
        return self.info.id

    @property
    def is_full(self) -> bool:
        """True when the checkpoint does not depend on its parent's stored parts."""
        return self.changed is None

    @property
    def state(self) -> dict[str, Any]:
        """The committed state, decoded afresh (a new object on every access).

        Raises:
            CheckpointDecodeError: a value's type is not known to this checkpoint's workflow.
        """
        registry = self.types if self.types is not None else ()
        chunks = self.chunks
        return {
            key: _chunks.decode(data, chunks, registry)
            for key, data in _parts.state_items(self.parts)
        }

    @property
    def encoded_state(self) -> dict[str, bytes]:
        """Each state value still encoded, by key (decode with `serde.decode`)."""
        chunks = self.chunks
        return {k: _chunks.plain(v, chunks) for k, v in _parts.state_items(self.parts)}

    def value(self, name: str) -> Any:
        """The decoded value of part `name` (a state value or an executor snapshot).

        Raises:
            KeyError: no such part.
            CheckpointDecodeError: it cannot be decoded.
        """
        registry = self.types if self.types is not None else ()
        return _chunks.decode(self.parts[name], self.chunks, registry)

    def snapshot(self, executor_id: str) -> Any:
        """The decoded snapshot of executor `executor_id` (what its `snapshot()` returned).

        Raises:
            KeyError: the checkpoint holds no snapshot of that executor (it keeps no
                state, has not run yet, or stores its parts itself, as `SubWorkflow` does).
            CheckpointDecodeError: it cannot be decoded.
        """
        return self.value(_parts.snapshot(executor_id))

    @property
    def snapshot_ids(self) -> tuple[str, ...]:
        """Ids of the executors whose snapshot this checkpoint holds."""
        found = (_parts.parse(name) for name in self.parts)
        kinds = (_parts.Kind.SNAPSHOT, _parts.Kind.OWN)
        return tuple(dict.fromkeys(subject for kind, subject, _ in found if kind in kinds))

    @property
    def has_queued_messages(self) -> bool:
        """True when it holds undelivered messages (resuming it continues a run)."""
        return _parts.has_queued(self.parts)

    @property
    def has_pending_requests(self) -> bool:
        """True when it holds requests waiting for answers."""
        return _parts.has_pending(self.parts)

    def part(self, name: str) -> bytes | None:
        """One encoded part, or None when absent."""
        return self.parts.get(name)

    def stored_parts(self) -> Mapping[str, bytes]:
        """The parts a store must persist: all of a full checkpoint, the changed ones of a delta."""
        if self.changed is None:
            return self.parts
        # A changed part that is gone from the whole content is stored as a tombstone: b"";
        # one stored relative to the parent's form (a list that grew) as that form.
        rel = self.relative
        return {name: rel.get(name) or self.parts.get(name, b"") for name in sorted(self.changed)}

    def chunk_ids(self) -> set[str]:
        """Ids of every chunk the whole content references."""
        marked = [d for d in self.parts.values() if d[:1] == b"\x00"]  # plain parts name none
        return {i for data in marked for i in _chunks.mentioned(data)}

    def whole(self, chunks: Mapping[str, bytes] | None = None) -> Checkpoint:
        """The same checkpoint standing alone (`as_full`), carrying `chunks` if given.

        One constructor call (cheaper than `dataclasses.replace`): stores keeping
        checkpoint objects call it on every save.
        """
        return Checkpoint(
            info=self.info,
            graph_signature=self.graph_signature,
            graph=self.graph,
            status=self.status,
            parts=self.parts,
            version=self.version,
            types=self.types,
            chunks=self.chunks if chunks is None else chunks,
            trace=self.trace,
        )

    def as_full(self) -> Checkpoint:
        """The same checkpoint, standing alone (used when its base is pruned)."""
        return replace(self, changed=None, deleted=frozenset(), depth=0, relative=_EMPTY)

    def with_types(self, registry: serde.TypeRegistry) -> Checkpoint:
        """The same checkpoint, decoding user types of `registry` in `state`."""
        return replace(self, types=registry)


def apply_delta(base: Checkpoint, delta: Checkpoint) -> Checkpoint:
    """Rebuild the whole of `delta` from its stored parts and its base's whole content.

    Raises:
        CheckpointDecodeError: the delta does not belong on that base.
    """
    if delta.changed is None:
        return delta
    if delta.info.parent_id != base.info.id:
        raise CheckpointDecodeError(
            f"checkpoint {delta.info.id!r} is a delta of {delta.info.parent_id!r}, "
            f"not of {base.info.id!r}; the store is inconsistent"
        )
    parts = dict(base.parts)
    for key in delta.deleted:
        parts.pop(_parts.state(key), None)
    for name in delta.changed:
        data = delta.parts.get(name, b"")
        if _chunks.is_relative(data):
            parts[name] = _chunks.apply(parts.get(name), data)
        elif data:
            parts[name] = data
        else:  # a tombstone: the part was removed
            parts.pop(name, None)
    return replace(delta, parts=types.MappingProxyType(parts))


def graph_difference(saved: str, current: Mapping[str, Any]) -> str:
    """Say what differs between a saved graph description and the current one."""
    try:
        return _difference(json.loads(saved), current)
    except (ValueError, RecursionError):
        return "the saved graph description is unreadable"
    except (TypeError, KeyError, AttributeError):
        return "the saved graph description is malformed"


def _difference(old: dict[str, Any], current: Mapping[str, Any]) -> str:
    lines: list[str] = []
    old_ex = {e["id"]: e for e in old.get("executors", [])}
    new_ex = {e["id"]: e for e in current.get("executors", [])}
    for eid in old_ex.keys() - new_ex.keys():
        lines.append(f"executor {eid!r} was removed")
    for eid in new_ex.keys() - old_ex.keys():
        lines.append(f"executor {eid!r} was added")
    for eid in old_ex.keys() & new_ex.keys():
        if old_ex[eid].get("type") != new_ex[eid].get("type"):
            lines.append(
                f"executor {eid!r} changed class: {old_ex[eid]['type']} -> {new_ex[eid]['type']}"
            )
        if old_ex[eid].get("child") != new_ex[eid].get("child"):
            lines.append(f"the child workflow of sub-workflow {eid!r} changed")
        if old_ex[eid].get("accepts") != new_ex[eid].get("accepts"):
            lines.append(
                f"executor {eid!r} handles {old_ex[eid].get('accepts')} before, "
                f"{new_ex[eid].get('accepts')} now"
            )
    old_edges = {json.dumps(e, sort_keys=True) for e in old.get("edges", [])}
    new_edges = {json.dumps(e, sort_keys=True) for e in current.get("edges", [])}
    for e in sorted(old_edges - new_edges):
        lines.append(f"edge removed: {e}")
    for e in sorted(new_edges - old_edges):
        lines.append(f"edge added: {e}")
    if old.get("start") != current.get("start"):
        lines.append(f"start changed: {old.get('start')!r} -> {current.get('start')!r}")
    return "; ".join(lines) or "the graph signature differs"


def check_graph(cp: Checkpoint, signature: str, description: Mapping[str, Any]) -> None:
    """Raise `GraphMismatchError` when `cp` was made by a different graph."""
    if cp.graph_signature != signature:
        raise GraphMismatchError(
            f"checkpoint {cp.info.id!r} of session {cp.info.session_id!r} was made by a "
            f"different graph: {graph_difference(cp.graph, description)}. Resume it with the "
            "workflow that made it, or start a new session"
        )


EMPTY_PARTS = _EMPTY
