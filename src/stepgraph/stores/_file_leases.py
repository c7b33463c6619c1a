"""Leases for `FileCheckpointStore`: one runner per session among the processes of a machine.

Implements the `LeaseStore` rules of `stepgraph._lease` with one lease file per
session, `<stem>.lease` beside its log `<stem>.log` (`_files.file_stem`), one
line of JSON a person can read:

```
{"owner": "host:4242:9f3a1c2e", "token": 7, "expires_at": 1767225600.25}
```

`owner` is null once released; a missing or empty file is a session never
leased (token 0). Every call opens the file, takes an exclusive `flock` on it,
checks that the path still names the locked inode, reads it, rewrites it in
place if it changes (`pwrite` at 0, then `ftruncate`) and closes it, which
unlocks it. The
store never replaces or deletes a lease file (`delete_session` keeps it), so
tokens never go back. Time is `time.time()`: a machine's processes share its clock.

* acquire: granted when the file says released, expired, held by the same
  owner, or held by a process of this host that no longer exists
  (`owner_is_gone`: a crash, taken over at once rather than after its ttl);
  the token becomes the file's + 1. Otherwise `ConcurrentRunError`.
* fenced save: `fenced` holds the lease file's lock while the store appends
  to the log (under the log's own lock) and fdatasyncs it: the check that
  `lease` is current (same token and owner; expiry alone never matters) and
  the write are one critical section. A takeover needs the same lock, so it
  waits for an in-flight fenced save and then sees it. Measured here, a fenced
  save costs ~15 us more than a plain one (~220 us): open, lock, read, close,
  and a prefix check of the line instead of a JSON parse (~9 us after an fsync).
* Lock order: a session's lease file, then its log. Nothing that holds a log's
  or a records file's lock takes a lease file's, and no call holds two lease
  files, so processes cannot deadlock.
* renew / release: rewrite the file only while it names the lease's token and
  owner (renew extends even an expired lease nobody took; release keeps the
  token); else `LeaseLostError`, or nothing for release.
* wait: processes share no notification channel, so a waiting `acquire`
  sleeps between attempts: `MIN_PAUSE` first, doubling, capped by `pause()`
  (`MAX_PAUSE`, the holder's remaining time, the deadline). A release is seen
  within `MAX_PAUSE`; the deadline is on the store's monotonic clock.
* No fsync: a lease matters only among live processes, and a kernel crash or
  power loss ends every holder along with the locks (flock is this kernel's).
  So lease writes skip the ~150 us fdatasync; a file that comes back older
  after such a crash is read as it is, one that does not parse as released
  with token 0: no live process holds a token from before the crash, and a
  fenced save compares the owner (unique per run) as well as the token.

One machine only: flock on a local file system. Over NFS, flock is local to
each client or emulated with byte-range locks depending on the client, and
`owner_is_gone` can only see this host's processes: not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from .._checkpoint import CheckpointInfo
from .._errors import CheckpointError, ConcurrentRunError
from .._lease import (
    MAX_PAUSE,
    MIN_PAUSE,
    Lease,
    LeaseLostError,
    check_ttl,
    held_message,
    owner_is_gone,
    pause,
)
from ._files import file_stem, pread

__all__ = ["FileLeases", "LeaseFiles", "lease_name"]

_T = TypeVar("_T")
_SUFFIX = ".lease"
_FLAGS = os.O_RDWR | os.O_CLOEXEC
_READ = 512  # bytes read first: a lease line is ~100 (a longer one is read whole)


def lease_name(session_id: str) -> str:
    """The file name of a session's lease (see the module docstring)."""
    return file_stem(session_id) + _SUFFIX


@dataclass(frozen=True, slots=True)
class Held:
    """What a lease file says: its owner (None: released or never leased), token, expiry."""

    owner: str | None
    token: int
    expires_at: float


_NEVER = Held(None, 0, 0.0)


class LeaseFiles:
    """The lease files of one directory; every method is synchronous and may raise `OSError`.

    Nothing is cached between calls: each opens, locks, reads and closes the file.
    """

    def __init__(self, directory: str) -> None:
        self._dir = directory

    def acquire(self, session_id: str, owner: str, ttl: float) -> tuple[Lease | None, Held]:
        """One attempt: the new lease, or None and what the file says (another holder)."""
        with self._locked(lease_name(session_id), create=True) as locked:
            assert locked is not None
            fd, held = locked
            now = time.time()
            if (
                held.owner is not None
                and held.owner != owner
                and held.expires_at > now
                and not owner_is_gone(held.owner)  # a crashed process of this host: take over
            ):
                return None, held
            new = Held(owner, held.token + 1, now + ttl)
            _write(fd, new)
            return Lease(session_id, owner, new.token, new.expires_at), new

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend `lease` to `ttl` seconds from now; `LeaseLostError` unless it is current."""
        with self._locked(lease_name(lease.session_id), create=False) as locked:
            if locked is None or not _names(locked[1], lease):
                raise LeaseLostError(
                    f"the lease of session {lease.session_id!r} held by {lease.owner!r} (token "
                    f"{lease.token}) was taken over or released; stop this run"
                )
            expires = time.time() + ttl
            _write(locked[0], Held(lease.owner, lease.token, expires))
            return Lease(lease.session_id, lease.owner, lease.token, expires)

    def release(self, lease: Lease) -> None:
        """End `lease` if it is still current, keeping its token; a no-op otherwise."""
        with self._locked(lease_name(lease.session_id), create=False) as locked:
            if locked is not None and _names(locked[1], lease):
                _write(locked[0], Held(None, lease.token, 0.0))

    def fenced(
        self, info: CheckpointInfo, lease: Lease, where: str, write: Callable[[], None]
    ) -> None:
        """Call `write` (which saves `info`'s checkpoint) holding the session's lease file
        locked; `LeaseLostError`, nothing written, unless `lease` is the current lease.
        """
        if lease.session_id != info.session_id:
            raise LeaseLostError(
                f"checkpoint {info.id!r} belongs to session {info.session_id!r}, but the "
                f"lease given is for session {lease.session_id!r}; it was not saved"
            )
        fd = _open_locked(self._dir, os.path.join(self._dir, lease_name(lease.session_id)), False)
        try:
            if fd is None or not _is_current(_line(fd), lease):
                raise LeaseLostError(
                    f"checkpoint {info.id!r} was not saved: lease token {lease.token} of "
                    f"{lease.owner!r} is no longer the current lease of session "
                    f"{info.session_id!r} in {where}"
                )
            write()
        finally:
            if fd is not None:
                os.close(fd)  # drops the flock, once the write is durable

    @contextlib.contextmanager
    def _locked(self, name: str, create: bool) -> Generator[tuple[int, Held] | None]:
        """The file's descriptor, exclusively flock'ed, and what it says; None when it is
        missing and not `create`. Unlocked (closed) when the block ends.
        """
        path = os.path.join(self._dir, name)
        fd = _open_locked(self._dir, path, create)
        if fd is None:
            yield None
            return
        try:
            yield fd, _parse(_line(fd))
        finally:
            os.close(fd)  # drops the flock


class FileLeases:
    """The lease methods; the store provides `_io`, its `_lease_files` and `_clock`."""

    _lease_files: LeaseFiles
    _clock: Callable[[], float]

    def _io(self, doing: str, fn: Callable[..., _T], *args: object) -> _T:
        raise NotImplementedError

    async def acquire(
        self, session_id: str, owner: str, ttl: float, *, wait: float | None = None
    ) -> Lease:
        """Take the session's lease for `ttl` seconds (rules in `stepgraph._lease`).

        Raises `ConcurrentRunError` while another owner holds it; with `wait`, only
        after trying that long, looking again after pauses from `MIN_PAUSE` doubling
        up to `MAX_PAUSE` (there is no wake-up between processes). A holder that was
        a process of this host and is gone (a crash) is taken over at once.
        """
        ttl = check_ttl(ttl)
        deadline = None if wait is None else self._clock() + max(wait, 0.0)
        doing = f"acquire the lease of session {session_id!r}"
        nap = MIN_PAUSE
        while True:
            got, held = self._io(doing, self._lease_files.acquire, session_id, owner, ttl)
            if got is not None:
                return got
            remaining = held.expires_at - time.time()
            left = 0.0 if deadline is None else deadline - self._clock()
            if left <= 0:
                raise ConcurrentRunError(
                    held_message(session_id, held.owner or "?", held.token, remaining)
                )
            await asyncio.sleep(min(nap, pause(left, remaining)))
            nap = min(nap * 2, MAX_PAUSE)

    async def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend `lease` to `ttl` seconds from now; `LeaseLostError` if taken over or released."""
        ttl = check_ttl(ttl)
        doing = f"renew the lease of session {lease.session_id!r}"
        return self._io(doing, self._lease_files.renew, lease, ttl)

    async def release(self, lease: Lease) -> None:
        """End `lease` if it is still current (a no-op otherwise); its token is kept."""
        doing = f"release the lease of session {lease.session_id!r}"
        self._io(doing, self._lease_files.release, lease)


def _names(held: Held, lease: Lease) -> bool:
    """True when the file names `lease` as the current one (its token and owner)."""
    return held.owner == lease.owner and held.token == lease.token


def _is_current(line: bytes, lease: Lease) -> bool:
    """`_names` for a fenced save, without parsing the line when `_write` wrote it
    (a JSON parse costs ~9 us after an fsync, the prefix check well under 1 us).
    """
    return line.startswith(_prefix(lease.owner, lease.token)) or _names(_parse(line), lease)


def _prefix(owner: str | None, token: int) -> bytes:
    """How the lease line naming `owner` and `token` starts (JSON, keys in this order)."""
    return b'{"owner": %s, "token": %d,' % (json.dumps(owner).encode(), token)


def _open_locked(directory: str, path: str, create: bool) -> int | None:
    """A descriptor of `path`, exclusively flock'ed, on the inode the path names once locked."""
    for _ in range(100):
        try:
            fd = os.open(path, _FLAGS | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            if not create:
                return None
            os.makedirs(directory, exist_ok=True)  # the store's directory, on first use
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass  # removed (by hand) while we waited: open whatever the path names now
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise CheckpointError(f"the lease file {path} keeps being replaced")


def _line(fd: int) -> bytes:
    """The locked file's first line."""
    data = os.pread(fd, _READ, 0)
    if len(data) == _READ and b"\n" not in data:
        data = pread(fd, os.fstat(fd).st_size, 0)
    return data.partition(b"\n")[0]


def _parse(line: bytes) -> Held:
    """What a lease line says; an empty line, or one that does not parse (a torn write
    after a power loss), reads as never leased.
    """
    if not line:
        return _NEVER
    try:
        doc: Any = json.loads(line)
        owner, token, expires = doc["owner"], doc["token"], doc["expires_at"]
    except (ValueError, TypeError, KeyError):
        return _NEVER
    if not (
        (owner is None or isinstance(owner, str))
        and isinstance(token, int)
        and isinstance(expires, int | float)
    ):
        return _NEVER
    return Held(owner, max(token, 0), float(expires))


def _line_of(held: Held) -> bytes:
    """The lease line of `held`, newline included (`json.dumps` of the three keys)."""
    expires = json.dumps(held.expires_at).encode()
    return b'%s "expires_at": %s}\n' % (_prefix(held.owner, held.token), expires)


def _write(fd: int, held: Held) -> None:
    """Replace the locked file's line in place (no fsync: see the module docstring)."""
    data = _line_of(held)
    view = memoryview(data)
    offset = 0
    while offset < len(data):
        offset += os.pwrite(fd, view[offset:], offset)
    os.ftruncate(fd, len(data))
