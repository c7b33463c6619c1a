"""The `CheckpointStore` protocol: what a session saves its checkpoints through."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol, cast, runtime_checkable

from ._checkpoint import Checkpoint, CheckpointInfo
from ._errors import CheckpointNotFoundError

__all__ = [
    "FAILED_RECORD",
    "CheckpointStore",
    "ChunkStore",
    "RecordStore",
    "SessionLister",
    "checkpoint_status",
    "chunk_store",
    "failure_at",
    "not_listed",
    "page_sessions",
    "record_store",
    "session_lister",
    "status_at",
]

FAILED_RECORD = "!failed"
"""The record a failed run leaves under its base: the error, as UTF-8 text."""


@runtime_checkable
class CheckpointStore(Protocol):
    """Where sessions save checkpoints. Every method is async; none binds to a loop early.

    A checkpoint handed to `save` always carries its whole content in `parts`;
    when `changed` is set, only those parts differ from its parent, and a
    store may persist just them (the parent is always saved first). `load`
    and `latest` return whole checkpoints.
    """

    async def save(self, checkpoint: Checkpoint) -> None:
        """Persist `checkpoint` durably before returning (saving an existing id replaces it)."""
        ...

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The whole checkpoint; raises `CheckpointNotFoundError` for an unknown id."""
        ...

    async def list(self, session_id: str, limit: int | None = None) -> list[CheckpointInfo]:
        """The session's checkpoints, newest first by save order, at most `limit`."""
        ...

    async def latest(self, session_id: str) -> Checkpoint | None:
        """The session's most recently saved checkpoint, or None."""
        ...

    async def delete(self, checkpoint_ids: Sequence[str]) -> None:
        """Delete checkpoints by id; unknown ids are ignored.

        Deleting a checkpoint other checkpoints are deltas of is the caller's
        business: `Session.prune` first re-saves such dependents whole.
        """
        ...

    async def delete_session(self, session_id: str) -> None:
        """Delete every checkpoint of the session."""
        ...

    async def aclose(self) -> None:
        """Release resources; the store refuses use afterwards."""
        ...


@runtime_checkable
class RecordStore(CheckpointStore, Protocol):
    """A checkpoint store that also keeps activation records: the journal of a superstep.

    While a superstep runs, each finished activation (one handler call on one
    message) and each finished `ctx.step` is recorded under the superstep's
    base (the checkpoint the session stood on when it started), so a failed,
    cancelled or crashed superstep resumes without running finished work
    again. Records are opaque bytes to the store. Rules:

    * `save_record` is durable when it returns; saving a key again replaces it.
    * `load_records` returns every record of the session under that base.
    * `delete_records(session_id, base_id)` deletes those; with `base_id`
      None, every record of the session (a reset).
    * `delete(ids)` also deletes the records kept under each deleted
      checkpoint, and `delete_session` every record of the session.
    * Records never change a checkpoint, and `list`/`load`/`latest` never
      show them.
    * A closed store refuses the record methods too (`CheckpointError`).

    `stepgraph.testing.RECORD_CHECKS` (run by `check_checkpoint_store`) checks
    these rules. A store that is not a `RecordStore` still works: finished
    activations of an interrupted superstep then run again.
    """

    async def save_record(self, session_id: str, base_id: str, key: str, data: bytes) -> None:
        """Persist one record under checkpoint `base_id` durably before returning."""
        ...

    async def load_records(self, session_id: str, base_id: str) -> dict[str, bytes]:
        """Every record of the session kept under checkpoint `base_id`, by key."""
        ...

    async def delete_records(self, session_id: str, base_id: str | None = None) -> None:
        """Delete the session's records under `base_id`, or all of them when None."""
        ...


@runtime_checkable
class ChunkStore(CheckpointStore, Protocol):
    """A checkpoint store that keeps content-addressed chunks, so checkpoints cost what changed.

    A session saving to a `ChunkStore` stores long lists (a growing
    conversation) as chunks plus the items each save appended, and large
    values as chunks named by their hash (see `Checkpoint.chunks`). Rules:

    * `save(cp)` persists every chunk of `cp.chunks` for `cp.info.session_id`
      (one already held is kept), atomically with the record, or at least
      durably before it.
    * `load`/`latest` return a checkpoint whose `chunks` hold every chunk its
      parts reference (`Checkpoint.chunk_ids()`); a missing one raises
      `CheckpointDecodeError`.
    * `delete(ids)` frees the session's chunks no remaining record names
      (`stores._record.mentioned`); `delete_session` frees all of them.
    * `load_chunks` returns the session's chunks among `ids` (unknown ids are left out).

    `stepgraph.testing.check_checkpoint_store` checks these rules for a store
    that implements this protocol. A store that does not still works: its
    sessions store every value plain.
    """

    async def load_chunks(self, session_id: str, ids: Collection[str]) -> dict[str, bytes]:
        """The session's chunks among `ids`, by id."""
        ...


@runtime_checkable
class SessionLister(CheckpointStore, Protocol):
    """A checkpoint store that can list the sessions it holds, newest first.

    So a dev UI or a CLI can show every session of a store, including those that
    scripts outside the server wrote. Rules:

    * One `CheckpointInfo` per session: the info of its head, the checkpoint
      `latest()` returns (the first of `list()`).
    * Newest first by the save order of those heads (the order `list()` uses,
      across sessions). A store without a global save order says what it orders
      by instead (`FileCheckpointStore`: the head's `created_at`, then session id).
    * A session without checkpoints (after `delete_session`, or `delete` of all
      of them) is not listed.
    * Reads headers or columns only: it never loads whole checkpoints.

    `stepgraph.testing.SESSION_CHECKS` (run by `check_checkpoint_store`) checks
    these rules. Every shipped store implements it.
    """

    async def list_sessions(
        self, *, limit: int | None = None, before: str | None = None
    ) -> list[CheckpointInfo]:
        """The head of each session, newest first, at most `limit` of them.

        Args:
            limit: the most to return (None: all; 0 or less: none).
            before: a session id (the last of the previous page) to page on from:
                only sessions whose head is older than that session's head now.
                A session saved to since an earlier page moves to the front, so
                pages can repeat a session; callers showing pages dedupe by id.

        Raises:
            CheckpointNotFoundError: `before` names no session of the store (one
                deleted since the previous page, say): there is no place to page on
                from, and an empty page would wrongly say the listing is over.
        """
        ...


def session_lister(store: object) -> SessionLister | None:
    """`store` as a `SessionLister` when its class implements the protocol, else None."""
    return cast(SessionLister, store) if issubclass(type(store), SessionLister) else None


def page_sessions(
    heads: Sequence[CheckpointInfo], limit: int | None, before: str | None, where: str
) -> list[CheckpointInfo]:
    """One page of `heads` (one per session, newest first), for stores that sort in Python.

    Raises:
        CheckpointNotFoundError: `before` is not among `heads` (`where` names the store).
    """
    if before is not None:
        at = next((n for n, info in enumerate(heads) if info.session_id == before), None)
        if at is None:
            raise CheckpointNotFoundError(not_listed(before, where))
        heads = heads[at + 1 :]
    return list(heads if limit is None else heads[: max(limit, 0)])


def not_listed(session_id: str, where: str) -> str:
    """The message of `list_sessions(before=session_id)` for a session the store lacks."""
    return (
        f"list_sessions(before={session_id!r}): no session {session_id!r} in {where} to page "
        "on from (deleted since the previous page?); list again from the first page"
    )


def chunk_store(store: object) -> ChunkStore | None:
    """`store` as a `ChunkStore` when its class implements the protocol, else None."""
    return cast(ChunkStore, store) if issubclass(type(store), ChunkStore) else None


def record_store(store: object) -> RecordStore | None:
    """`store` as a `RecordStore` when its class implements the protocol, else None.

    Decided by the class (`issubclass`, cached by `abc`), like `lease_store`.
    """
    return cast(RecordStore, store) if issubclass(type(store), RecordStore) else None


async def failure_at(store: object, session_id: str, checkpoint_id: str) -> str | None:
    """The error of a run that failed on checkpoint `checkpoint_id`, or None.

    A failed superstep commits nothing, so the session's head stays the checkpoint
    it started from; the failure is a record under it (in a `RecordStore`), which is
    how a reopened session, or `stepgraph checkpoints list`, tells FAILED from
    INTERRUPTED (a crash).
    """
    records = record_store(store)
    if records is None:
        return None
    data = (await records.load_records(session_id, checkpoint_id)).get(FAILED_RECORD)
    return data.decode("utf-8", "replace") if data is not None else None


def checkpoint_status(cp: Checkpoint) -> str:
    """Where a session restored to `cp` would stand, read from `cp` alone.

    `mid-run` (messages queued: resuming it continues the run), `failed`
    (queued after a known failure), `paused` (queued, stopped at a
    breakpoint), `waiting` (requests pending), `cancelled` or `idle`.
    `status_at` also reads the failure records a store keeps.
    """
    if cp.has_queued_messages:
        return {"FAILED": "failed", "PAUSED": "paused"}.get(cp.status, "mid-run")
    if cp.has_pending_requests:
        return "waiting"
    return "cancelled" if cp.status == "CANCELLED" else "idle"


async def status_at(store: object, cp: Checkpoint) -> str:
    """`checkpoint_status(cp)`, and `failed` for a mid-run checkpoint a run failed on
    (its failure record, `failure_at`; a crash leaves none: it stays `mid-run`).
    """
    status = checkpoint_status(cp)
    if status == "mid-run" and await failure_at(store, cp.info.session_id, cp.id) is not None:
        return "failed"
    return status
