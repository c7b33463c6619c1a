"""The checkpoint logs of `FileCheckpointStore`: their names, and the index of one log.

A log `<stem>.log` is a sequence of frames (`_files`), each holding one record
(`_record.pack`). `Log` is one open log with its index: checkpoint id -> where
its record is, in save order (a re-saved id keeps its place, pointing at its
newest frame). `scan` extends the index past what it has read, stopping at a
torn tail; `head` is the info of the newest entry, what `latest` loads.
Synchronous, may raise `OSError`; the locking rules are the store's (`file.py`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .._checkpoint import CheckpointInfo
from .._errors import CheckpointDecodeError
from . import _record
from ._files import FRAME, file_stem, frame_ok, next_frame, open_file, pread

__all__ = [
    "SUFFIX", "Entry", "Log", "head", "infos", "log_name", "read_head", "records_of", "scan",
    "stem", "unpack",
]  # fmt: skip

SUFFIX = ".log"
"""The suffix of a checkpoint log's file name."""
_RECORDS = ".rec"  # the session's activation records, beside its log


def log_name(session_id: str) -> str:
    """The file name of a session's log (see `file.py`'s docstring)."""
    return file_stem(session_id) + SUFFIX


def stem(log: str) -> str:
    """The file stem of checkpoint log `log` (its session's, see `_files.file_stem`)."""
    return log.removesuffix(SUFFIX)


def records_of(log: str) -> str:
    """The name of the records log beside checkpoint log `log`."""
    return log.removesuffix(SUFFIX) + _RECORDS


class Entry(NamedTuple):
    """Where one checkpoint's record is in its log."""

    offset: int  # of the record, just past its frame header
    length: int
    info: CheckpointInfo | None  # None until `list` needs it: a scan reads ids only


@dataclass(slots=True, eq=False)
class Log:
    """One open checkpoint log and its index."""

    name: str
    path: str
    fd: int
    ino: int
    size: int = 0  # file size when last looked at
    end: int = 0  # end of the last good frame; [end, size) is a torn tail
    entries: dict[str, Entry] = field(default_factory=dict[str, Entry])  # in save order
    chunks: set[str] = field(default_factory=set[str])  # ids known on disk while this is the log


def scan(log: Log) -> list[str]:
    """Index frames past `log.end`; stop at a torn tail, raise on corruption.

    Returns the ids of the frames it read, in log order.
    """
    size = os.fstat(log.fd).st_size
    if size == log.size == log.end:
        return []
    if size < log.end:  # impossible for an append-only inode: start over
        log.entries.clear()
        log.end = 0
    base, data = log.end, pread(log.fd, size - log.end, log.end)
    view, pos = memoryview(data), 0
    seen: list[str] = []
    while pos < len(data):
        if not frame_ok(view, pos):
            if next_frame(data, pos, _record.MAGIC) != -1:
                raise CheckpointDecodeError(
                    f"checkpoint log {log.path} is corrupt: bad frame at byte {base + pos} "
                    "followed by valid ones"
                )
            break  # a torn tail: a crash during the last append
        length = FRAME.unpack_from(view, pos)[0]
        cid = _record.record_id(view[pos + 8 : pos + 8 + length])
        log.entries[cid] = Entry(base + pos + 8, length, None)
        seen.append(cid)
        pos += 8 + length
    log.end, log.size = base + pos, size
    return seen


def head(log: Log) -> CheckpointInfo | None:
    """The info of the log's newest entry (its session's head), or None when it is empty."""
    if not log.entries:
        return None
    return infos(log, [log.entries[next(reversed(log.entries))]])[0]


def read_head(directory: str, name: str) -> CheckpointInfo | None:
    """`head` of the log `name` in `directory`, read through a descriptor of its own.

    None when the log is absent or empty. The descriptor is closed on return, so
    a caller's cache of open logs is left as it is.
    """
    path = os.path.join(directory, name)
    if (fd := open_file(directory, path, os.O_RDONLY | os.O_CLOEXEC, False)) is None:
        return None
    try:
        log = Log(name, path, fd, os.fstat(fd).st_ino)
        scan(log)
        return head(log)
    finally:
        os.close(fd)


def infos(log: Log, entries: list[Entry]) -> list[CheckpointInfo]:
    """The infos of `entries` of `log`, reading the headers a scan skipped (and keeping them)."""
    out: list[CheckpointInfo] = []
    for e in entries:
        if e.info is None:
            record = memoryview(pread(log.fd, e.length, e.offset))
            e = e._replace(info=unpack(log, e.offset - 8, record, whole=False))
            log.entries[e.info.id] = e  # pyright: ignore[reportOptionalMemberAccess]
        out.append(e.info)  # pyright: ignore[reportArgumentType]
    return out


def unpack(log: Log, offset: int, record: memoryview, whole: bool = True) -> Any:
    """The checkpoint (or, not `whole`, the info) of a record; errors name the file."""
    try:
        return _record.unpack(bytes(record)) if whole else _record.info(record)
    except CheckpointDecodeError as exc:
        raise CheckpointDecodeError(f"checkpoint log {log.path}, byte {offset}: {exc}") from None
