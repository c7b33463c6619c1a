"""What the dev UI reads of each checkpoint, kept by id: checkpoints never change.

The checkpoint tree and the run history both list a session's checkpoints with
their status, and the page asks for both after every run. `Digests` loads a
checkpoint once and keeps its digest (its own status and trace, bounded
LRU); only the failure record of a `mid-run` checkpoint, which a later failed
run may add, is read each time (`stepgraph.stores.status_at`).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stepgraph as sg
from stepgraph.stores import checkpoint_status, failure_at

__all__ = ["Digest", "Digests"]


@dataclass(frozen=True, slots=True)
class Digest:
    """A checkpoint as the dev UI lists it."""

    info: sg.CheckpointInfo
    status: str
    trace: Mapping[str, Any] | None


class Digests:
    """Digests of the checkpoints the dev UI listed lately, by id (at most `size`)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._by_id: collections.OrderedDict[str, Digest] = collections.OrderedDict()

    async def of(self, store: sg.CheckpointStore, info: sg.CheckpointInfo) -> Digest:
        """The digest of the checkpoint `info` names, its status as `status_at` gives it.

        Raises:
            CheckpointNotFoundError: it was deleted (pruned) meanwhile.
        """
        found = self._by_id.get(info.id)
        if found is None:
            cp = await store.load(info.id)
            found = Digest(cp.info, checkpoint_status(cp), cp.trace)
            self._by_id[info.id] = found
            if len(self._by_id) > self._size:
                self._by_id.popitem(last=False)
        else:
            self._by_id.move_to_end(info.id)
        if found.status == "mid-run" and await failure_at(store, info.session_id, info.id):
            return Digest(found.info, "failed", found.trace)
        return found
