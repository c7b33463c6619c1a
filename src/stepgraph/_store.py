"""The `CheckpointStore` protocol: what a session saves its checkpoints through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ._checkpoint import Checkpoint, CheckpointInfo

__all__ = ["CheckpointStore"]


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
