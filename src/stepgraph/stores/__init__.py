"""Checkpoint stores: the protocols, the shipped backends and store URLs.

* `_store`: the `CheckpointStore` protocol every backend implements
* `_lease`: `LeaseStore`, `Lease` and the rules of session leases and fencing tokens
* `memory`: `MemoryCheckpointStore`, checkpoints kept in this process
* `file`: `FileCheckpointStore(dir)`, an append-only log per session, fsync per save
* `sqlite`: `SqliteCheckpointStore(path)`, the embedded default (WAL, one transaction per
  save), with `_sqlite_leases` for its leases
* `postgres`: `PostgresCheckpointStore(dsn)` (extra `postgres`; import it from there)
* `_urls`: `open_store(url)` and `StoreURL`, the store URLs of the CLI and the server
* `_record`: the binary record layout the durable stores share

Every store passes `stepgraph.testing.check_checkpoint_store(factory)`.
"""

from __future__ import annotations

from .._checkpoint import Checkpoint, CheckpointInfo
from .._lease import Lease, LeaseLostError, LeaseStore, lease_store
from .._store import CheckpointStore
from ._urls import StoreURL, open_store
from .file import FileCheckpointStore
from .memory import MemoryCheckpointStore
from .sqlite import SqliteCheckpointStore

__all__ = [
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointStore",
    "FileCheckpointStore",
    "Lease",
    "LeaseLostError",
    "LeaseStore",
    "MemoryCheckpointStore",
    "SqliteCheckpointStore",
    "StoreURL",
    "lease_store",
    "open_store",
]
