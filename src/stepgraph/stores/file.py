"""`FileCheckpointStore`: an append-only log per session, one `fdatasync` per save.

Each session has `<directory>/<name>.log`, `<name>` being the session id with
every character but `[a-z0-9_-]` percent-encoded as UTF-8 (reversible, and
safe on case-insensitive file systems; past 200 characters, `~<sha256>`).
A save appends one frame, `u32 length | u32 crc32 | record` (big-endian,
record = `_record.pack(cp)`), with one `os.write` and `os.fdatasync`; the
directory is fsynced when a log is created. Measured here, that costs ~175 us
where temp file + fsync + rename + directory fsync costs ~525 us.

Crashes can only tear the *last* frame (frames are appended whole, one writer
at a time): readers ignore a torn tail and the next writer truncates it, so a
completed save is never lost and a half-written one never read (a damaged last
frame looks the same, and is dropped too). A bad frame followed by a valid one
is corruption: `CheckpointDecodeError` naming the file.
`delete`/`delete_session` (rare) rewrite the log atomically (temp file, fsync,
rename, directory fsync) or unlink it. A process killed mid-rewrite leaves its
temp file (`.<log name>.<16 hex>.tmp`); the first call of a store object sweeps
those whose log nobody holds locked (a live rewrite holds its log's flock from
before it creates the temp file until after the rename).

A log is scanned once into memory (id -> offset, in save order; a record's
other header fields are read when `list` needs them) with its descriptor held
open, so its inode cannot be reused meanwhile. Each call stats the path:
another inode: rewritten or deleted by another process (rescan); larger: appended.
The index and its scan are in `_file_logs`.

`list_sessions` (a `SessionLister`) lists the `*.log` files, each read for its
head's info (the header of one record; a log not held open is scanned for its
ids through a descriptor of its own, then closed). Logs have no save order across
sessions, so sessions are ordered by their head's `created_at`, then session id,
newest first; the session id comes from the record (a long id's file name is a hash).

Writers `flock` the log, then check that the path still names the locked
inode. All file I/O runs inline, start to finish without an `await`, so in a
process the event loop itself serializes operations (no `asyncio.Lock` is
needed). Inline: ~185 us per save, against ~240-315 us through a thread (the
wake-up after a blocking fsync dominates). The price: the loop blocks for the
fsync, and while another process holds the log's lock. POSIX only; a store
object is not thread-safe.

Activation records (`RecordStore`) live beside each log in `<name>.rec`, a log
of their own (`_file_records`); `delete` drops the records kept under the
checkpoints it deletes, and `delete_session` both files. Frames and the file
plumbing both logs share are in `_files`.

The store is a `ChunkStore`: a session's chunks are files `<name>.chunks/<id>`
(`_file_chunks`), made durable under the log's lock before the record naming
them is appended; `load` reads those its checkpoint references. `delete`
sweeps the chunks no remaining record names once the log is rewritten, still
holding the old log's lock and the new one's; `delete_session` removes the
directory. A store directory from before chunks has none and reads as it is.

The store is a `LeaseStore`: sessions sharing a directory among the processes
of one machine (a local file system, not NFS) take a lease per session, kept
in `<name>.lease` (`_file_leases`; `delete_session` keeps it), and fence their
saves with it. Lock order: a session's lease file, then its log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TypeVar

from .._checkpoint import Checkpoint, CheckpointInfo
from .._errors import CheckpointDecodeError, CheckpointError, CheckpointNotFoundError
from .._lease import Lease, LeaseStore
from .._store import SessionLister, page_sessions
from . import _file_records, _record
from ._file_chunks import ChunkFiles
from ._file_leases import FileLeases, LeaseFiles
from ._file_logs import (
    SUFFIX,
    Entry,
    Log,
    head,
    infos,
    log_name,
    read_head,
    records_of,
    scan,
    stem,
    unpack,
)
from ._files import (
    file_stem,
    frame,
    frame_ok,
    fsync_dir,
    open_file,
    pread,
    sweep_temps,
    write_all,
)

__all__ = ["FileCheckpointStore"]

_T = TypeVar("_T")
_MAX_OPEN = 128  # open logs (descriptors) kept; the least recently used is closed
_MAX_CHAIN = 10_000  # a longer parent walk means a cycle in the stored data
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
_Chunks = tuple[Mapping[str, bytes], set[str]]  # a save's new chunks, and every chunk it needs


class FileCheckpointStore(FileLeases, LeaseStore, SessionLister):
    """Checkpoints in a directory, one append-only log per session (see the module docstring).

    Args:
        directory: where the logs live; created on the first save.
        clock: monotonic seconds, for the deadline of `acquire(wait=...)`.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._dir: str = os.path.abspath(os.fspath(directory))
        self._logs: OrderedDict[str, Log] = OrderedDict()  # by file name, least recent first
        self._where: dict[str, str] = {}  # checkpoint id -> log name it was last seen in
        self._records = _file_records.RecordLogs(self._dir)
        self._chunks = ChunkFiles(self._dir)
        self._lease_files = LeaseFiles(self._dir)
        self._clock = clock
        self._closed = False
        self._swept = False  # orphan temp files removed (once, at first use)

    @property
    def directory(self) -> str:
        """The absolute path of the store's directory."""
        return self._dir

    async def save(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        """Append `checkpoint` to its session's log, fdatasynced (an existing id is replaced).

        With `lease`, the save is fenced: `LeaseLostError`, and nothing written, unless
        the lease is still the session's current one (checked under the lease file's
        lock, held until the append is durable). The chunks it introduces are made
        durable first (`_file_chunks`).
        """
        info = checkpoint.info
        framed = frame(_record.pack(checkpoint))
        name = log_name(info.session_id)
        needed = checkpoint.chunk_ids()
        chunks = (checkpoint.chunks, needed) if needed else None
        if lease is None:
            self._io(f"save {info.id!r}", self._append, name, info, framed, chunks)
        else:
            self._io(f"save {info.id!r}", self._fenced_append, name, info, framed, chunks, lease)

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """The whole checkpoint; raises `CheckpointNotFoundError` for an unknown id."""
        return self._io(f"load {checkpoint_id!r}", self._load, checkpoint_id, None)

    async def list(self, session_id: str, limit: int | None = None) -> list[CheckpointInfo]:
        """The session's checkpoints, newest first by save order, at most `limit`."""
        log = self._io(f"read session {session_id!r}", self._current, log_name(session_id))
        if log is None:
            return []
        entries = list(reversed(log.entries.values()))
        entries = entries if limit is None else entries[: max(limit, 0)]
        return self._io(f"read session {session_id!r}", infos, log, entries)

    async def latest(self, session_id: str) -> Checkpoint | None:
        """The session's most recently saved checkpoint, or None."""

        def latest() -> Checkpoint | None:
            log = self._current(log_name(session_id))
            if log is None or not log.entries:
                return None
            return self._load(next(reversed(log.entries)), log.name)

        return self._io(f"read session {session_id!r}", latest)

    async def list_sessions(
        self, *, limit: int | None = None, before: str | None = None
    ) -> list[CheckpointInfo]:
        """The head of each session, newest first by its `created_at`, then session id.

        Logs have no save order across sessions, so the heads' times stand in for
        it (see `SessionLister`). Reads the ids of every log (a log this store does
        not hold open is scanned, then closed) and the header of each head only.
        """

        def heads() -> list[CheckpointInfo]:
            try:
                names = sorted(n for n in os.listdir(self._dir) if n.endswith(SUFFIX))
            except FileNotFoundError:
                names = []
            found = [info for name in names if (info := self._head(name)) is not None]
            return sorted(found, key=lambda i: (i.created_at.timestamp(), i.session_id))[::-1]

        return page_sessions(self._io("list sessions", heads), limit, before, self._dir)

    async def delete(self, checkpoint_ids: Sequence[str]) -> None:
        """Delete checkpoints by id (rewriting the logs that hold them); unknown ids are ignored."""

        def delete() -> None:
            doomed: dict[str, set[str]] = {}
            for cid in checkpoint_ids:
                if (found := self._find(cid, None)) is not None:
                    doomed.setdefault(found[0].name, set()).add(cid)
            for name, ids in doomed.items():
                self._records.delete(records_of(name), ids)  # first: no orphans on a crash
                self._rewrite(name, ids)

        self._io("delete checkpoints", delete)

    async def delete_session(self, session_id: str) -> None:
        """Delete every checkpoint, record and chunk of the session (unlinking its files)."""

        def delete() -> None:
            self._records.drop(records_of(log_name(session_id)))
            # Chunks without a log (a crash before the first record): lock a new log to drop them.
            self._rewrite(log_name(session_id), None, self._chunks.held(file_stem(session_id)))

        self._io(f"delete session {session_id!r}", delete)

    async def load_chunks(self, session_id: str, ids: Collection[str]) -> dict[str, bytes]:
        """The session's chunks among `ids`, by id (unknown ids are left out)."""
        doing = f"load the chunks of session {session_id!r}"
        return self._io(doing, self._chunks.read, file_stem(session_id), ids)

    async def save_record(self, session_id: str, base_id: str, key: str, data: bytes) -> None:
        """Append one activation record to the session's records log, fdatasynced."""
        framed = _file_records.pack(base_id, key, data)
        name = records_of(log_name(session_id))
        self._io(f"save record {key!r} of session {session_id!r}", self._records.save, name, framed)

    async def load_records(self, session_id: str, base_id: str) -> dict[str, bytes]:
        """The session's records under checkpoint `base_id`, by key (one read of its log)."""
        name = records_of(log_name(session_id))
        doing = f"load the records of session {session_id!r}"
        return self._io(doing, self._records.load, name, base_id)

    async def delete_records(self, session_id: str, base_id: str | None = None) -> None:
        """Delete the session's records under `base_id`, or all of them when None."""
        name = records_of(log_name(session_id))
        bases = None if base_id is None else (base_id,)
        self._io(f"delete the records of session {session_id!r}", self._records.delete, name, bases)

    async def aclose(self) -> None:
        """Close every open log; the store refuses use afterwards."""
        self._closed = True
        for name in list(self._logs):
            self._forget(name)

    async def __aenter__(self) -> FileCheckpointStore:
        self._io("open", lambda: None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing: everything below is synchronous --------------------------------------

    def _io(self, doing: str, fn: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise CheckpointError(f"this FileCheckpointStore ({self._dir}) is closed")
        try:
            if not self._swept:
                sweep_temps(self._dir)
                self._swept = True
            return fn(*args)
        except OSError as exc:
            raise CheckpointError(f"could not {doing} in {self._dir}: {exc}") from exc

    def _forget(self, name: str) -> None:
        log = self._logs.pop(name, None)
        if log is not None:
            os.close(log.fd)  # also drops our flock, if held

    def _open(self, name: str, create: bool) -> Log | None:
        """The cached log, or a newly opened (with `create`, created) one; None if absent."""
        if (log := self._logs.get(name)) is not None:
            self._logs.move_to_end(name)
            return log
        path = os.path.join(self._dir, name)
        if (fd := open_file(self._dir, path, _OPEN_FLAGS, create)) is None:
            return None
        self._logs[name] = log = Log(name, path, fd, os.fstat(fd).st_ino)
        while len(self._logs) > _MAX_OPEN:
            self._forget(next(iter(self._logs)))
        return log

    def _current(self, name: str) -> Log | None:
        """The log with its index up to date; None when it does not exist."""
        try:
            ino = os.stat(os.path.join(self._dir, name)).st_ino
        except FileNotFoundError:
            self._forget(name)
            return None
        if (log := self._logs.get(name)) is not None and log.ino != ino:
            self._forget(name)  # another process rewrote or deleted and re-created it
        if (log := self._open(name, create=False)) is not None:
            self._scan(log)
        return log

    def _head(self, name: str) -> CheckpointInfo | None:
        """The info of a log's head: from the cache when the log is open, else read
        through a descriptor of its own (listing does not evict the logs in use).
        """
        if name in self._logs:
            log = self._current(name)
            return head(log) if log is not None else None
        return read_head(self._dir, name)

    def _locked(self, name: str, create: bool) -> Log | None:
        """`_current`, holding an exclusive flock on the very inode the path names."""
        for _ in range(100):
            if (log := self._open(name, create)) is None:
                return None
            fcntl.flock(log.fd, fcntl.LOCK_EX)
            try:
                if os.stat(log.path).st_ino == log.ino:
                    self._scan(log)
                    return log
            except FileNotFoundError:
                pass
            except BaseException:
                self._forget(name)
                raise
            self._forget(name)  # replaced while we waited for the lock
        raise CheckpointError(f"the log {name} in {self._dir} keeps being replaced")

    def _scan(self, log: Log) -> None:
        """Index frames past `log.end` (`_file_logs.scan`), noting where each id is."""
        for cid in scan(log):
            self._where[cid] = log.name

    def _append(
        self, name: str, info: CheckpointInfo, framed: bytes, chunks: _Chunks | None
    ) -> None:
        log = self._locked(name, create=True)
        assert log is not None
        start = log.end
        try:
            if chunks is not None:  # first, and under the log's lock (see `_file_chunks`)
                self._chunks.write(stem(name), chunks[0], chunks[1], log.chunks)
            if log.size > start:
                os.ftruncate(log.fd, start)  # drop the torn tail a crash left
            write_all(log.fd, framed)
            os.fdatasync(log.fd)
        except BaseException:
            with contextlib.suppress(OSError):  # a failed save must never be read back
                os.ftruncate(log.fd, start)
            self._forget(name)
            raise
        log.entries[info.id] = Entry(start + 8, len(framed) - 8, info)
        log.end = log.size = start + len(framed)
        self._where[info.id] = name
        fcntl.flock(log.fd, fcntl.LOCK_UN)

    def _fenced_append(
        self, name: str, info: CheckpointInfo, framed: bytes, chunks: _Chunks | None, lease: Lease
    ) -> None:
        # Lock order: the lease file, then the log (inside `_append`).
        append = lambda: self._append(name, info, framed, chunks)  # noqa: E731
        self._lease_files.fenced(info, lease, self._dir, append)

    def _find(self, cid: str, prefer: str | None) -> tuple[Log, Entry] | None:
        """Locate a checkpoint: in `prefer`'s log, where it was last seen, else in every log."""
        hints = [n for n in dict.fromkeys((prefer, self._where.get(cid))) if n is not None]
        for pass_ in (hints, None):
            if pass_ is None:
                try:
                    pass_ = sorted(n for n in os.listdir(self._dir) if n.endswith(SUFFIX))
                except FileNotFoundError:
                    return None
            for name in pass_:
                if (log := self._current(name)) is not None and cid in log.entries:
                    return log, log.entries[cid]
        return None

    def _load(self, checkpoint_id: str, prefer: str | None) -> Checkpoint:
        chain: list[Checkpoint] = []
        cid: str | None = checkpoint_id
        found: tuple[Log, Entry] | None = None
        while cid is not None and len(chain) < _MAX_CHAIN:
            if found is None or (entry := found[0].entries.get(cid)) is None:
                found = self._find(cid, prefer)  # stats and refreshes; parents share the snapshot
            else:
                found = found[0], entry
            if found is None:
                if not chain:
                    raise CheckpointNotFoundError(f"no checkpoint {cid!r} in {self._dir}")
                raise CheckpointDecodeError(
                    f"checkpoint {chain[-1].id!r} is a delta of {cid!r}, missing from {self._dir}"
                )
            log, entry = found
            data = pread(log.fd, entry.length + 8, entry.offset - 8)
            if not frame_ok(memoryview(data), 0) or len(data) != entry.length + 8:
                raise CheckpointDecodeError(f"checkpoint log {log.path}: {cid!r} changed on disk")
            cp = unpack(log, entry.offset - 8, memoryview(data)[8:])
            if cp.id != cid:
                raise CheckpointDecodeError(f"checkpoint log {log.path}: {cid!r} is misplaced")
            chain.append(cp)
            if cp.is_full:
                return self._attach(_record.resolve(chain))
            cid, prefer = cp.info.parent_id, log.name
        raise CheckpointDecodeError(f"checkpoint {checkpoint_id!r} has no full base")

    def _attach(self, cp: Checkpoint) -> Checkpoint:
        """`cp` carrying the chunks it references, read from its session's chunk files."""
        if not (needed := cp.chunk_ids()):
            return cp
        found = self._chunks.read(file_stem(cp.info.session_id), needed)
        if needed - found.keys() and self._find(cp.id, None) is None:
            # deleted (and its chunks swept) by another process while we read it
            raise CheckpointNotFoundError(f"no checkpoint {cp.id!r} in {self._dir}")
        return _record.attach(cp, found)

    def _rewrite(self, name: str, doomed: set[str] | None, create: bool = False) -> None:
        """Drop `doomed` ids (all, when None) from a log: atomic rewrite, or unlink when empty.

        Then sweep the session's chunks no kept record names, holding the locks of
        the old log and of the new one (its temp file's), so no save runs meanwhile.
        """
        if (log := self._locked(name, create)) is None:
            return
        fd, tmp = -1, ""
        try:
            keep = [e for cid, e in log.entries.items() if doomed is not None and cid not in doomed]
            if doomed is not None and len(keep) == len(log.entries):
                return
            session = stem(name)
            chunked = self._chunks.held(session)
            if keep or chunked:
                tmp = os.path.join(self._dir, f".{name}.{secrets.token_hex(8)}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                fcntl.flock(fd, fcntl.LOCK_EX)  # a save that opens the new log waits for the sweep
                live = self._copy(log, keep, fd, chunked)
                os.fsync(fd)
                os.replace(tmp, log.path)
                tmp = ""
                fsync_dir(self._dir)
                if chunked and keep:  # after the rename: a crash before leaves orphans, no gap
                    self._chunks.sweep(session, live)
                elif chunked:
                    self._chunks.drop(session)
            if not keep:
                os.unlink(log.path)
                fsync_dir(self._dir)
            for cid in log.entries:
                if self._where.get(cid) == name:
                    del self._where[cid]
        finally:
            if fd != -1:
                os.close(fd)
            if tmp:  # failed before the rename
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            self._forget(name)  # unlocks; the next use reopens whatever the path names

    def _copy(self, log: Log, keep: list[Entry], fd: int, chunked: bool) -> set[str]:
        """Write the `keep` frames of `log` to `fd`; the chunk ids they name (when `chunked`)."""
        live: set[str] = set()
        for e in keep:
            data = pread(log.fd, e.length + 8, e.offset - 8)
            write_all(fd, data)
            if chunked:
                live |= _record.mentioned(unpack(log, e.offset - 8, memoryview(data)[8:]))
        return live
