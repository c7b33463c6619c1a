"""Chunks of `FileCheckpointStore`: one file per content-addressed chunk, per session.

A session's chunks (`Checkpoint.chunks`, see `stepgraph._chunks`) live in
`<stem>.chunks/<id>` beside its log `<stem>.log`, `<id>` being the chunk's
BLAKE2b-128 in hex (32 characters; nothing else is ever read as a chunk). A
directory written before chunks existed simply has no `.chunks` directory:
its records hold plain values only, and load as they are.

* Written first: a save writes the chunks its checkpoint introduces while
  holding its log's `flock`, before it appends the record that names them.
  Each missing chunk goes to `.<id>.<16 hex>.tmp`, is fsynced and renamed to
  `<id>`; then the chunks directory is fsynced once (and the store's
  directory, when the chunks directory was just made). A chunk already on
  disk is not rewritten (same name, same bytes). A crash leaves at worst an
  orphan chunk or temp file, never a record naming a missing chunk.
* Checked: a save also makes sure the chunks its checkpoint references but
  does not introduce are on disk (a stat each, remembered per log inode while
  that inode is the session's log), else `CheckpointError` and nothing appended.
* Read without a lock, and verified: a chunk whose bytes do not hash to its
  name raises `CheckpointDecodeError` naming the file.
* Swept by `delete`: once the log is rewritten (or emptied), every file of the
  chunks directory that no remaining record names (`_record.mentioned`) is
  removed, orphans and temp files included, then the directory is fsynced.
  The sweep holds the old log's lock *and* the lock of the new log's inode
  (taken on the temp file before it is renamed into place), so no save, which
  writes chunks only under the lock of the inode its log path names, runs
  meanwhile: a chunk a save found on disk stays until its record is written,
  and then that record names it. `delete_session` removes the directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Collection, Iterable, Mapping

from .._errors import CheckpointDecodeError, CheckpointError
from ._files import fsync_dir, write_all

__all__ = ["ChunkFiles", "chunks_name", "is_chunk_id"]

_SUFFIX = ".chunks"
_ID = re.compile(r"[0-9a-f]{32}")


def chunks_name(stem: str) -> str:
    """The name of a session's chunks directory, beside `<stem>.log`."""
    return stem + _SUFFIX


def is_chunk_id(name: str) -> bool:
    """True when `name` can name a chunk (32 lowercase hex digits)."""
    return _ID.fullmatch(name) is not None


class ChunkFiles:
    """The chunks directories of one store directory; synchronous, may raise `OSError`.

    Callers pass a session's file stem (`_files.file_stem`) and hold the rules
    of the module docstring: `write` and `sweep` only under the log's lock.
    """

    def __init__(self, directory: str) -> None:
        self._dir = directory

    def path(self, stem: str) -> str:
        """The session's chunks directory."""
        return os.path.join(self._dir, chunks_name(stem))

    def held(self, stem: str) -> bool:
        """True when the session has a chunks directory (it may be empty)."""
        return os.path.isdir(self.path(stem))

    def write(
        self, stem: str, chunks: Mapping[str, bytes], needed: set[str], known: set[str]
    ) -> None:
        """Make the `needed` chunks of `chunks` durable, and check the others are on disk.

        `known` holds ids known to be on disk (it is updated); nothing is written
        when a needed chunk is neither in `chunks` nor on disk. A chunk of `chunks`
        that is not needed (one a save made, then merged into another) is skipped.

        Raises:
            CheckpointError: a chunk id is malformed, or a needed chunk is missing.
        """
        where = self.path(stem)
        for cid in needed:
            if not is_chunk_id(cid):
                raise CheckpointError(f"malformed chunk id {cid!r}: not 32 lowercase hex digits")
        missing = [
            cid
            for cid in needed
            if cid not in known and cid not in chunks and not _exists(where, cid)
        ]
        if missing:
            raise CheckpointError(
                f"the checkpoint references {len(missing)} chunk(s) neither it nor its "
                f"session holds in {where} (e.g. {min(missing)!r})"
            )
        known.update(cid for cid in needed if cid not in chunks)
        fresh = [cid for cid in chunks if cid in needed and cid not in known]
        if not fresh:
            return
        if not os.path.isdir(where):
            os.makedirs(self._dir, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(where)
            fsync_dir(self._dir)
        wrote = False
        for cid in fresh:
            if not _exists(where, cid):
                _write_one(where, cid, chunks[cid])
                wrote = True
        if wrote:
            fsync_dir(where)
        known.update(fresh)

    def read(self, stem: str, ids: Iterable[str]) -> dict[str, bytes]:
        """The session's chunks among `ids`, verified; absent or malformed ids are left out.

        Raises:
            CheckpointDecodeError: a chunk file's bytes do not hash to its name.
        """
        where = self.path(stem)
        found: dict[str, bytes] = {}
        for cid in ids:
            if not is_chunk_id(cid):
                continue
            path = os.path.join(where, cid)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            if hashlib.blake2b(data, digest_size=16).hexdigest() != cid:
                raise CheckpointDecodeError(f"chunk file {path} is corrupt: its bytes changed")
            found[cid] = data
        return found

    def sweep(self, stem: str, live: Collection[str]) -> None:
        """Remove the session's chunk files not in `live`, and every temp file; durably."""
        where = self.path(stem)
        try:
            names = os.listdir(where)
        except FileNotFoundError:
            return
        removed = False
        for name in names:
            if name not in live:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(where, name))
                removed = True
        if removed:
            fsync_dir(where)

    def drop(self, stem: str) -> None:
        """Remove the session's chunks directory and everything in it, durably."""
        where = self.path(stem)
        if not os.path.isdir(where):
            return
        self.sweep(stem, ())
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(where)
        fsync_dir(self._dir)


def _exists(where: str, cid: str) -> bool:
    return os.path.exists(os.path.join(where, cid))


def _write_one(where: str, cid: str, data: bytes) -> None:
    tmp = os.path.join(where, f".{cid}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, data)
        os.fdatasync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, os.path.join(where, cid))
