"""Activation records of `FileCheckpointStore`: one append-only records log per session.

Beside a session's checkpoint log `<name>.log` lies `<name>.rec`. A record is
one frame (`_files`) whose payload is

```
b"SGR1" | u32 base length | base | u32 key length | key | data     (base, key: UTF-8)
```

`save` appends it with one `os.write` and `os.fdatasync` while holding the
file's `flock` (the directory is fsynced when the file is created), so it is
durable on return; a failed save is truncated away. A later frame with the
same base and key replaces an earlier one.

Readers take a shared `flock` and read the whole file (it holds only the
records of unfinished supersteps). A frame that does not check out, a torn
append or the zeros a crash left, is skipped up to the next valid frame,
found by its magic, so a crash loses only the record being written and later
appends are still read. No index survives a call, so in-place truncation is
safe for other processes: their next call reads the file afresh.

Deleting the records of some bases rewrites the file atomically (temp file,
fsync, rename, directory fsync) when other records stay; when none stay (the
usual case: the one superstep in flight just committed) it truncates the file
in place and fdatasyncs it, so the next superstep's first record needs no
directory fsync. `drop` unlinks the file. Writers check, once they hold the
lock, that the path still names the inode they locked (see `file.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import struct
from collections.abc import Collection, Generator, Iterator

from .._errors import CheckpointDecodeError, CheckpointError
from ._files import FRAME, frame, frame_ok, fsync_dir, next_frame, open_file, pread, write_all

__all__ = ["MAGIC", "RecordLogs", "pack"]

MAGIC = b"SGR1"
_LEN = struct.Struct(">I")
_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC


def pack(base_id: str, key: str, data: bytes) -> bytes:
    """One record, framed."""
    base, name = _text(base_id), _text(key)
    return frame(b"".join((MAGIC, _LEN.pack(len(base)), base, _LEN.pack(len(name)), name, data)))


class RecordLogs:
    """The records logs of one directory; every method is synchronous and may raise `OSError`.

    Files are named by the caller (`<name>.rec`); nothing is cached between calls.
    """

    def __init__(self, directory: str) -> None:
        self._dir = directory

    def save(self, name: str, framed: bytes) -> None:
        """Append one record framed by `pack`, fdatasynced before returning."""
        with self._locked(name, create=True) as fd:
            assert fd is not None
            start = os.fstat(fd).st_size
            try:
                write_all(fd, framed)
                os.fdatasync(fd)
            except BaseException:
                with contextlib.suppress(OSError):  # a failed save must never be read back
                    os.ftruncate(fd, start)
                raise

    def load(self, name: str, base_id: str) -> dict[str, bytes]:
        """The records kept under `base_id`, by key; the last saved wins."""
        with self._locked(name, create=False, shared=True) as fd:
            if fd is None:
                return {}
            data = pread(fd, os.fstat(fd).st_size, 0)
        base = _text(base_id)
        return {key: bytes(value) for _, _, b, key, value in self._frames(name, data) if b == base}

    def delete(self, name: str, base_ids: Collection[str] | None) -> None:
        """Delete the records kept under `base_ids` (all of them when None), durably."""
        with self._locked(name, create=False) as fd:
            if fd is None or (size := os.fstat(fd).st_size) == 0:
                return
            if base_ids is not None:
                bases = {_text(b) for b in base_ids}
                data = pread(fd, size, 0)
                frames = [(start, end, base) for start, end, base, _, _ in self._frames(name, data)]
                keep = [(start, end) for start, end, base in frames if base not in bases]
                if len(keep) == len(frames):
                    return
                if keep:
                    self._rewrite(name, b"".join(data[start:end] for start, end in keep))
                    return
            os.ftruncate(fd, 0)
            os.fdatasync(fd)

    def drop(self, name: str) -> None:
        """Remove the file (a deleted session), durably."""
        with self._locked(name, create=False) as fd:
            if fd is not None:
                os.unlink(os.path.join(self._dir, name))
                fsync_dir(self._dir)

    @contextlib.contextmanager
    def _locked(self, name: str, *, create: bool, shared: bool = False) -> Generator[int | None]:
        """The file's descriptor with its `flock` held, or None when it does not exist."""
        path = os.path.join(self._dir, name)
        for _ in range(100):
            if (fd := open_file(self._dir, path, _FLAGS, create)) is None:
                yield None
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
                if _names(path, fd):
                    yield fd  # an error of the caller's block passes through, unchanged
                    return
            finally:
                os.close(fd)  # also drops the flock
            # replaced or removed while we waited for the lock: open what the path names now
        raise CheckpointError(f"the records log {name} in {self._dir} keeps being replaced")

    def _rewrite(self, name: str, kept: bytes) -> None:
        tmp = os.path.join(self._dir, f".{name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            write_all(fd, kept)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(self._dir, name))
        fsync_dir(self._dir)

    def _frames(self, name: str, data: bytes) -> Iterator[tuple[int, int, bytes, str, memoryview]]:
        """(start, end, base, key, data) of every valid frame; the others are skipped."""
        view, pos = memoryview(data), 0
        while pos < len(data):
            if not frame_ok(view, pos):
                if (pos := next_frame(data, pos, MAGIC)) == -1:
                    return
                continue
            end = pos + 8 + FRAME.unpack_from(view, pos)[0]
            try:
                base, key, value = _unpack(view[pos + 8 : end])
            except (struct.error, UnicodeDecodeError, ValueError) as exc:
                raise CheckpointDecodeError(
                    f"records log {os.path.join(self._dir, name)}, byte {pos}: a malformed "
                    f"record ({exc})"
                ) from None
            yield pos, end, base, key, value
            pos = end


def _names(path: str, fd: int) -> bool:
    """True when `path` still names the file open as `fd`."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _unpack(payload: memoryview) -> tuple[bytes, str, memoryview]:
    if bytes(payload[:4]) != MAGIC:
        raise ValueError("bad magic")
    (n,) = _LEN.unpack_from(payload, 4)
    base, pos = bytes(payload[8 : 8 + n]), 8 + n
    (m,) = _LEN.unpack_from(payload, pos)
    if pos + 4 + m > len(payload) or len(base) != n:
        raise ValueError("lengths overrun the record")
    key = bytes(payload[pos + 4 : pos + 4 + m]).decode("utf-8", "surrogatepass")
    return base, key, payload[pos + 4 + m :]


def _text(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")
