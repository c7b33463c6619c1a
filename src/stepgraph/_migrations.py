"""Graph versions and migrations: carrying paused sessions across a changed graph.

A workflow built with `build(version=...)` records its version in every full
checkpoint. Resuming a checkpoint of another graph needs a migration
registered with `WorkflowBuilder.migrate(from_version, fn)`: `fn` gets the old
checkpoint's content as `MigrationData` and returns it as the new graph needs
it. Fan-in buffers are not carried over (their groups belong to the old graph).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._requests import Request

__all__ = ["Migration", "MigrationData"]


@dataclass(slots=True)
class MigrationData:
    """The content of a checkpoint, by executor id, for a migration to rewrite.

    Attributes:
        version: the graph version the data comes from (None when unversioned).
        state: the committed shared state.
        executors: executor snapshots by executor id.
        queue: undelivered messages by target executor id.
        pending: pending requests (their `executor_id` must name an executor of the new graph).
        superstep: the session's superstep count.
    """

    version: str | None
    state: dict[str, Any] = field(default_factory=dict[str, Any])
    executors: dict[str, Any] = field(default_factory=dict[str, Any])
    queue: dict[str, list[Any]] = field(default_factory=dict[str, list[Any]])
    pending: list[Request] = field(default_factory=list[Request])
    superstep: int = 0


Migration = Callable[[MigrationData], MigrationData]
"""Rewrites the content of an old checkpoint for the current graph."""
