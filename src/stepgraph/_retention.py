"""Retention: which checkpoints of a session to keep, as a pure plan.

The checkpoints of a session form a tree through `parent_id`. A branch is
the path from a leaf up to the root. `plan_prune` keeps the newest
`keep_last` checkpoints of every branch, the head, and every checkpoint that
holds pending requests; the rest may go. A kept checkpoint whose parent goes
must first be saved whole, since a delta needs its parent to be read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._checkpoint import CheckpointInfo

if TYPE_CHECKING:
    from ._store import CheckpointStore

__all__ = ["PrunePlan", "Retention", "plan_prune", "prune"]


@dataclass(frozen=True, slots=True)
class Retention:
    """A session's retention policy: keep the newest `keep_last` checkpoints of each branch.

    The head and checkpoints holding pending requests are always kept.
    """

    keep_last: int

    def __post_init__(self) -> None:
        if not isinstance(self.keep_last, int) or self.keep_last < 1:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f"keep_last must be a positive int, got {self.keep_last!r}")


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What `Session.prune` does: re-save `rebase` whole, then delete `delete`."""

    delete: tuple[str, ...]
    rebase: tuple[str, ...]


def plan_prune(
    infos: Sequence[CheckpointInfo],
    keep_last: int,
    *,
    head: str | None,
    pinned: Iterable[str] = (),
) -> PrunePlan:
    """Decide which checkpoints go. `infos` is newest first (save order)."""
    by_id = {i.id: i for i in infos}
    has_child = {i.parent_id for i in infos if i.parent_id is not None}
    keep: set[str] = set(pinned) & by_id.keys()
    if head is not None and head in by_id:
        keep.add(head)
    for leaf in (i for i in infos if i.id not in has_child):
        node: CheckpointInfo | None = leaf
        for _ in range(keep_last):
            if node is None:
                break
            keep.add(node.id)
            node = by_id.get(node.parent_id) if node.parent_id is not None else None
    delete = [i.id for i in infos if i.id not in keep]
    gone = set(delete)
    rebase = [i.id for i in infos if i.id in keep and i.parent_id in gone]
    return PrunePlan(tuple(delete), tuple(rebase))


async def prune(
    store: CheckpointStore, session_id: str, head: str | None, keep_last: int
) -> list[str]:
    """Apply a retention policy to one session of `store`; returns the deleted ids.

    Checkpoints holding pending requests are kept; a kept delta whose base goes is
    re-saved whole first.
    """
    infos = await store.list(session_id)
    pinned: list[str] = []
    for cid in plan_prune(infos, keep_last, head=head).delete:
        cp = await store.load(cid)
        if cp.has_pending_requests:
            pinned.append(cid)
    plan = plan_prune(infos, keep_last, head=head, pinned=pinned)
    for cid in plan.rebase:
        await store.save((await store.load(cid)).as_full())
    await store.delete(plan.delete)
    return list(plan.delete)
