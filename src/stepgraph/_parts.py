"""The layout of a checkpoint's parts: the one home of their names (format version 1).

A checkpoint's content is a mapping of named parts, each the `serde`
encoding of one piece (see `Checkpoint`):

* `s:<key>`: a state value;
* `e:<executor id>`: an executor's snapshot, one encoded value;
* `c:<executor id>/<name>`: parts an executor stores itself (an executor
  implementing `StoresOwnParts`, such as `SubWorkflow`, whose child checkpoint's
  parts are kept as they are, so only the changed ones are written);
* `q`: the queued messages (`{executor id: [message, ...]}`; in a store that
  keeps chunks, when a message is a long list, a `_chunks` dict form of
  `{queue_slot(executor id, k): message}`); `f`: the fan-in buffers; `r`: the
  pending requests;
* `m`: the batches of maps in flight (absent: none; written once a map ran).

Everything that reads or writes part names (the checkpointer, retention,
the CLI, the conformance suite) goes through this module.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from typing import Any, Final, Protocol, runtime_checkable

from . import serde

__all__ = [
    "EMPTY_LIST",
    "EMPTY_MAPPING",
    "FANIN",
    "MAPS",
    "PENDING",
    "QUEUE",
    "Kind",
    "StoresOwnParts",
    "has_pending",
    "has_queued",
    "is_state",
    "own",
    "own_prefix",
    "parse",
    "queue_slot",
    "queue_slot_owner",
    "snapshot",
    "state",
    "state_items",
]

QUEUE: Final = "q"
"""The queued messages: `{executor id: [message, ...]}`."""
FANIN: Final = "f"
"""The fan-in buffers: `[[group, [[message, ...] per source]], ...]`."""
PENDING: Final = "r"
"""The pending requests: `[Request, ...]` in issue order."""
MAPS: Final = "m"
"""The map buffers: `MapBuffers.dump()`'s form, or an empty list for none."""

_STATE: Final = "s:"
_SNAPSHOT: Final = "e:"
_OWN: Final = "c:"

EMPTY_MAPPING: Final = serde.encode({})
"""The encoding of an empty queue."""
EMPTY_LIST: Final = serde.encode([])
"""The encoding of no fan-in buffers or no pending requests."""


class Kind(enum.Enum):
    """What a part holds."""

    STATE = "state"
    SNAPSHOT = "snapshot"
    OWN = "own"
    QUEUE = "queue"
    FANIN = "fanin"
    PENDING = "pending"
    MAPS = "maps"
    UNKNOWN = "unknown"


def state(key: str) -> str:
    """The name of state value `key`'s part."""
    return _STATE + key


def snapshot(executor_id: str) -> str:
    """The name of an executor's snapshot part."""
    return _SNAPSHOT + executor_id


def own_prefix(executor_id: str) -> str:
    """The prefix of the parts an executor stores itself."""
    return f"{_OWN}{executor_id}/"


def own(executor_id: str, name: str) -> str:
    """The name of part `name` that executor `executor_id` stores itself."""
    return own_prefix(executor_id) + name


def parse(name: str) -> tuple[Kind, str, str]:
    """`(kind, subject, rest)`: the state key or executor id a part is about, and the
    own part's name after the executor id (empty for other kinds).
    """
    if name.startswith(_STATE):
        return Kind.STATE, name[2:], ""
    if name.startswith(_SNAPSHOT):
        return Kind.SNAPSHOT, name[2:], ""
    if name.startswith(_OWN):
        eid, _, rest = name[2:].partition("/")
        return Kind.OWN, eid, rest
    kind = {QUEUE: Kind.QUEUE, FANIN: Kind.FANIN, PENDING: Kind.PENDING, MAPS: Kind.MAPS}.get(
        name, Kind.UNKNOWN
    )
    return kind, "", ""


def queue_slot(executor_id: str, k: int) -> str:
    """The key of the `k`-th message queued for an executor, in the chunked queue form."""
    return f"{executor_id}\x1f{k}"


def queue_slot_owner(slot: str) -> str:
    """The executor id of a `queue_slot` key."""
    return slot.rpartition("\x1f")[0]


def is_state(name: str) -> bool:
    """True for a state value's part."""
    return name.startswith(_STATE)


def state_items(parts: Mapping[str, bytes]) -> Iterator[tuple[str, bytes]]:
    """`(key, encoded value)` of every state part."""
    for name, data in parts.items():
        if name.startswith(_STATE):
            yield name[2:], data


def has_queued(parts: Mapping[str, bytes]) -> bool:
    """True when the checkpoint holds undelivered messages."""
    return parts.get(QUEUE, EMPTY_MAPPING) != EMPTY_MAPPING


def has_pending(parts: Mapping[str, bytes]) -> bool:
    """True when the checkpoint holds pending requests."""
    return parts.get(PENDING, EMPTY_LIST) != EMPTY_LIST


@runtime_checkable
class StoresOwnParts(Protocol):
    """An executor whose snapshot is stored as parts of its own, not as one encoded value.

    `SubWorkflow` keeps its child's latest checkpoint this way, so a parent
    checkpoint writes only the child parts that changed.
    """

    def snapshot_parts(self, snapshot: Any) -> Mapping[str, bytes] | None:
        """The parts to store for `snapshot` (what `snapshot()` returned); None for none."""
        ...

    def snapshot_from_parts(self, parts: Mapping[str, bytes]) -> Any:
        """The snapshot `restore()` takes, rebuilt from the stored parts.

        Raises:
            CheckpointDecodeError: the parts are malformed.
        """
        ...
