"""`MemoryCheckpointStore`: checkpoints and activation records kept in this process.

For tests and previews: nothing is durable, nothing survives the process.
"""

from __future__ import annotations

import types
from collections.abc import Collection, Mapping, Sequence

from ._checkpoint import Checkpoint, CheckpointInfo
from ._errors import CheckpointError, CheckpointNotFoundError
from ._store import SessionLister, page_sessions

__all__ = ["MemoryCheckpointStore"]

_NONE: Mapping[str, bytes] = types.MappingProxyType({})


class MemoryCheckpointStore(SessionLister):
    """Keeps checkpoints in a dict. Checkpoints are immutable bytes, so nothing aliases.

    Saving is O(1): the checkpoint object itself is kept, whole, sharing the
    session's chunks (a `ChunkStore`: each chunk is held once per session). It
    is a `RecordStore`: activation records are kept by session, then base, and
    a `SessionLister`: each id keeps the number of its first save, its place in
    the save order across sessions.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, Checkpoint] = {}
        self._sessions: dict[str, dict[str, None]] = {}  # session -> ids in save order
        self._records: dict[str, dict[str, dict[str, bytes]]] = {}  # session -> base -> key
        self._chunks: dict[str, dict[str, bytes]] = {}  # session -> chunk id -> bytes
        self._seq: dict[str, int] = {}  # id -> place in the save order of every session
        self._saves = 0  # the last place given
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise CheckpointError("this MemoryCheckpointStore is closed")

    async def save(self, checkpoint: Checkpoint) -> None:
        """Keep `checkpoint` (replacing one with the same id)."""
        self._check()
        cid = checkpoint.info.id
        order = self._sessions.setdefault(checkpoint.info.session_id, {})
        needed = checkpoint.chunk_ids()
        found: Mapping[str, bytes] = _NONE
        if needed or checkpoint.chunks:
            held = self._chunks.setdefault(checkpoint.info.session_id, {})
            for i, data in checkpoint.chunks.items():
                held.setdefault(i, data)  # one already held is kept
            missing = needed - held.keys()
            if missing:
                raise CheckpointError(
                    f"checkpoint {cid!r} references chunks neither it nor its session "
                    f"holds: {sorted(missing)[:3]}"
                )
            found = types.MappingProxyType({i: held[i] for i in needed})
        whole = checkpoint.whole(found)
        order[cid] = None  # a re-saved id keeps its place in the save order
        if cid not in self._seq:
            self._saves += 1
            self._seq[cid] = self._saves
        self._by_id[cid] = whole

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint with that id."""
        self._check()
        try:
            return self._by_id[checkpoint_id]
        except KeyError:
            raise CheckpointNotFoundError(
                f"no checkpoint {checkpoint_id!r} in this store"
            ) from None

    async def list(self, session_id: str, limit: int | None = None) -> list[CheckpointInfo]:
        """The session's checkpoints, newest first."""
        self._check()
        ids = list(reversed(self._sessions.get(session_id, {})))
        if limit is not None:
            ids = ids[: max(limit, 0)]
        return [self._by_id[i].info for i in ids]

    async def latest(self, session_id: str) -> Checkpoint | None:
        """The session's newest checkpoint, or None."""
        self._check()
        order = self._sessions.get(session_id)
        if not order:
            return None
        return self._by_id[next(reversed(order))]

    async def list_sessions(
        self, *, limit: int | None = None, before: str | None = None
    ) -> list[CheckpointInfo]:
        """The head of each session, newest first by save order (see `SessionLister`)."""
        self._check()
        heads = [next(reversed(order)) for order in self._sessions.values() if order]
        heads.sort(key=self._seq.__getitem__, reverse=True)
        infos = [self._by_id[cid].info for cid in heads]
        return page_sessions(infos, limit, before, "this MemoryCheckpointStore")

    async def delete(self, checkpoint_ids: Sequence[str]) -> None:
        """Delete checkpoints by id."""
        self._check()
        freed: set[str] = set()
        for cid in checkpoint_ids:
            cp = self._by_id.pop(cid, None)
            self._seq.pop(cid, None)
            if cp is not None:
                self._sessions.get(cp.info.session_id, {}).pop(cid, None)
                self._records.get(cp.info.session_id, {}).pop(cid, None)
                if cp.chunks:
                    freed.add(cp.info.session_id)
        for session_id in freed:
            self._free_chunks(session_id)

    def _free_chunks(self, session_id: str) -> None:
        held = self._chunks.get(session_id)
        if not held:
            return
        live = {i for cid in self._sessions.get(session_id, {}) for i in self._by_id[cid].chunks}
        for i in [i for i in held if i not in live]:
            del held[i]

    async def load_chunks(self, session_id: str, ids: Collection[str]) -> dict[str, bytes]:
        """The session's chunks among `ids`."""
        self._check()
        held = self._chunks.get(session_id, {})
        return {i: held[i] for i in ids if i in held}

    async def delete_session(self, session_id: str) -> None:
        """Delete every checkpoint and record of the session."""
        self._check()
        for cid in self._sessions.pop(session_id, {}):
            self._by_id.pop(cid, None)
            self._seq.pop(cid, None)
        self._records.pop(session_id, None)
        self._chunks.pop(session_id, None)

    async def save_record(self, session_id: str, base_id: str, key: str, data: bytes) -> None:
        """Keep one activation record under checkpoint `base_id` (replacing a same key)."""
        self._check()
        self._records.setdefault(session_id, {}).setdefault(base_id, {})[key] = bytes(data)

    async def load_records(self, session_id: str, base_id: str) -> dict[str, bytes]:
        """The session's records under checkpoint `base_id`, by key (a copy)."""
        self._check()
        return dict(self._records.get(session_id, {}).get(base_id, {}))

    async def delete_records(self, session_id: str, base_id: str | None = None) -> None:
        """Delete the session's records under `base_id`, or all of them when None."""
        self._check()
        if base_id is None:
            self._records.pop(session_id, None)
        elif (bases := self._records.get(session_id)) is not None:
            bases.pop(base_id, None)
            if not bases:
                del self._records[session_id]

    async def aclose(self) -> None:
        """Close the store."""
        self._closed = True

    async def __aenter__(self) -> MemoryCheckpointStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
