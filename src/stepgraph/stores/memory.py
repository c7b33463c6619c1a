"""`MemoryCheckpointStore`: checkpoints kept in this process (the engine's own, re-exported)."""

from __future__ import annotations

from .._memory import MemoryCheckpointStore

__all__ = ["MemoryCheckpointStore"]
