"""File plumbing of `FileCheckpointStore`: file names, frames, whole reads and writes, fsyncs.

A session's files share one stem (`file_stem`): its checkpoint log
`<stem>.log`, its activation records `<stem>.rec`, its lease `<stem>.lease`
and its chunks directory `<stem>.chunks/`. `sweep_temps` removes the temp
files of log rewrites a killed process left.
Both logs are sequences of frames, `u32 length | u32 crc32 | payload`
(big-endian), each payload starting with a 4-byte magic naming its layout.
Synchronous, POSIX only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import struct
import zlib

__all__ = [
    "FRAME",
    "file_stem",
    "fsync_dir",
    "frame",
    "frame_ok",
    "next_frame",
    "open_file",
    "pread",
    "sweep_temps",
    "write_all",
]

FRAME = struct.Struct(">II")
"""A frame's header: payload length, CRC-32 of the payload."""

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_STEM = 200
_LOG_TMP = re.compile(r"\.(.+\.log)\.[0-9a-f]{16}\.tmp")  # a log rewrite's temp file


def file_stem(session_id: str) -> str:
    """The stem of a session's file names: the session id with every character but
    `[a-z0-9_-]` percent-encoded as UTF-8 (reversible, and safe on case-insensitive
    file systems); past 200 characters, `~<sha256 of the id>`.
    """
    raw = "".join(
        c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in session_id
    )
    if len(raw) > _MAX_STEM:
        raw = "~" + hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
    return raw


def frame(payload: bytes) -> bytes:
    """`payload` framed: its length and CRC-32, then itself."""
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def frame_ok(view: memoryview, pos: int) -> bool:
    """True when a whole frame with a matching checksum starts at `pos`."""
    if len(view) - pos < 8:
        return False
    length, crc = FRAME.unpack_from(view, pos)
    end = pos + 8 + length
    return length >= 4 and end <= len(view) and zlib.crc32(view[pos + 8 : end]) == crc


def next_frame(data: bytes, pos: int, magic: bytes) -> int:
    """Where the first valid frame after `pos` whose payload opens with `magic` starts, or -1."""
    at = data.find(magic, pos + 9)
    while at != -1 and not frame_ok(memoryview(data), at - 8):
        at = data.find(magic, at + 1)
    return at - 8 if at != -1 else -1


def open_file(directory: str, path: str, flags: int, create: bool) -> int | None:
    """A descriptor of `path` (in `directory`); None when absent and not `create`.

    A file it creates is made durable: the directory (made, with its parent
    fsynced, if missing) is fsynced after the file is created.
    """
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        if not create:
            return None
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
        fsync_dir(os.path.dirname(directory))
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return os.open(path, flags)
    fsync_dir(directory)
    return fd


def fsync_dir(path: str) -> None:
    """Make the entries of directory `path` durable (a created, renamed or removed file)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pread(fd: int, n: int, offset: int) -> bytes:
    """Up to `n` bytes at `offset` (fewer only at the end of the file)."""
    chunks: list[bytes] = []
    while n > 0 and (chunk := os.pread(fd, n, offset)):
        chunks.append(chunk)
        n, offset = n - len(chunk), offset + len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` (`os.write` may write less)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def sweep_temps(directory: str) -> None:
    """Remove the temp files of rewrites that a killed process left in `directory`.

    A temp file is an orphan when its log is absent or can be flock'ed at once: a live
    rewrite holds that lock from before it creates the file until after the rename.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for tmp in names:
        match = _LOG_TMP.fullmatch(tmp)
        if match is None:
            continue
        try:
            fd = os.open(os.path.join(directory, match[1]), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a rewrite in progress in another process
            with contextlib.suppress(FileNotFoundError):  # renamed or swept meanwhile
                os.unlink(os.path.join(directory, tmp))
        finally:
            if fd is not None:
                os.close(fd)
