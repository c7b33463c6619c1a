"""Checkpoint stores: the protocols, the shipped backends and store URLs.

* `_store`: the `CheckpointStore` protocol every backend implements, `RecordStore`
  for the activation records that keep finished work from running twice, and
  `SessionLister` for listing the sessions a store holds (every shipped store)
* `_lease`: `LeaseStore`, `Lease` and the rules of session leases and fencing tokens
* `memory`: `MemoryCheckpointStore`, checkpoints kept in this process
* `file`: `FileCheckpointStore(dir)`, an append-only log per session, fsync per save
* `sqlite`: `SqliteCheckpointStore(path)`, the embedded default (WAL, one transaction per
  save), with `_sqlite_leases` for its leases and `_sqlite_chunks` for its chunks
  (a `ChunkStore`)
* `postgres`: `PostgresCheckpointStore(dsn)` (extra `postgres`; import it from there),
  with its SQL in `_postgres_sql` and `_postgres_chunks` (a `ChunkStore`) and its
  leases in `_postgres_leases`
* `_file_logs`: the checkpoint logs of `FileCheckpointStore` and their index,
  `_file_records` its activation records, one log per session, `_file_leases` its
  session leases (a lease file per session), and `_files`, the file names, frames and
  file plumbing they share
* `_urls`: `open_store(url)` and `StoreURL`, the store URLs of the CLI and the server
* `_record`: the binary layout of a checkpoint, which the durable stores share

Every store passes `stepgraph.testing.check_checkpoint_store(factory)`, record checks included.
"""

from __future__ import annotations

from .._checkpoint import Checkpoint, CheckpointInfo
from .._lease import Lease, LeaseLostError, LeaseStore, lease_store
from .._store import (
    FAILED_RECORD,
    CheckpointStore,
    ChunkStore,
    RecordStore,
    SessionLister,
    checkpoint_status,
    chunk_store,
    failure_at,
    record_store,
    session_lister,
    status_at,
)
from ._urls import StoreURL, open_store
from .file import FileCheckpointStore
from .memory import MemoryCheckpointStore
from .sqlite import SqliteCheckpointStore

__all__ = [
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointStore",
    "ChunkStore",
    "FAILED_RECORD",
    "FileCheckpointStore",
    "Lease",
    "LeaseLostError",
    "LeaseStore",
    "MemoryCheckpointStore",
    "RecordStore",
    "SessionLister",
    "SqliteCheckpointStore",
    "StoreURL",
    "checkpoint_status",
    "chunk_store",
    "failure_at",
    "lease_store",
    "open_store",
    "record_store",
    "session_lister",
    "status_at",
]
