r"""Stored forms of large values: growing lists cost what they gained, not what they hold.

A checkpoint part (a state value or an executor snapshot) is stored in one
of these forms; the plain one is a `serde` encoding (tagged JSON, never
starting with a NUL byte), the others start with NUL and a letter:

* plain: `serde.encode(value)`;
* `\0B<id>`: a blob: a plain encoding of at least `BLOB_MIN` bytes kept as
  one content-addressed chunk, so full checkpoints repeat 34 bytes, not the value;
* `\0L`: a list of at least `LIST_MIN` items: content-addressed chunks of
  items (`[[id, count, level], ...]`) and a tail of segments (each a
  `serde`-encoded list of the items one save appended). A tail of
  `SEAL_BYTES` becomes a chunk, and `MERGE` chunks of one level become one
  of the next level (an LSM-like binary counter), so a list of n items has
  O(log n) chunks and each item is re-written O(log n) times in all;
* `\0M`: a dict with str keys, some of whose values are such lists: each
  value stored in its own form (an agent's snapshot holding its conversation);

and, in the stored records of delta checkpoints only, two relative forms
applied to the part's form in the parent (`apply`):

* `\0D`: a list that extends the parent's: chunks and tail segments kept,
  the new ones appended (what one `append` costs: the new items);
* `\0E`: a dict whose fields are stored relative to the parent's fields
  (an empty field: unchanged; a list field may extend another field of the
  parent, named in the header's `b`: a conversation queued for the next
  speaker extends the one queued for the last).

`_chunk_writer` writes values in these forms, remembering what each part
stores. A chunk is a sequence of frames (`u32 length | serde-encoded list`); its id
is the BLAKE2b-128 of its bytes in hex. A checkpoint carries the chunks it
introduces (`Checkpoint.chunks`), the store keeps them per session, and
`load` returns a checkpoint with every chunk its parts reference.

A list extends the committed one when its first items compare equal (`==`)
to the committed items (state values are shared, not copied).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from . import serde
from ._errors import CheckpointDecodeError

__all__ = [
    "BLOB",
    "BLOB_MIN",
    "DICT",
    "DICT_DELTA",
    "LIST",
    "LIST_DELTA",
    "LIST_MIN",
    "MERGE",
    "SEAL_BYTES",
    "ChunkRef",
    "Encoder",
    "ListForm",
    "apply",
    "chunk_id",
    "decode",
    "dict_bytes",
    "dict_fields",
    "frame",
    "is_relative",
    "mentioned",
    "plain",
    "with_header",
]

LIST_MIN: Final = 8
"""Lists with fewer items are stored plain."""
SEAL_BYTES: Final = 4096
"""A list's tail becomes a chunk once its segments take this many bytes."""
MERGE: Final = 8
"""This many trailing chunks of one level are merged into one chunk of the next."""
BLOB_MIN: Final = 4096
"""A plain encoding this large is kept as a content-addressed chunk."""

BLOB, LIST, DICT, LIST_DELTA, DICT_DELTA = b"\x00B", b"\x00L", b"\x00M", b"\x00D", b"\x00E"
"""The marks of the stored forms (module docstring); `_chunk_writer` writes them."""
_LEN = struct.Struct(">I")

Encoder = Callable[[Any], bytes]
ChunkRef = tuple[str, int, int]  # (chunk id, items, level)


def chunk_id(data: bytes) -> str:
    """The content address of a chunk."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def frame(pieces: Iterable[bytes]) -> bytes:
    out: list[bytes] = []
    for p in pieces:
        out.append(_LEN.pack(len(p)))
        out.append(p)
    return b"".join(out)


def _unframe(data: bytes) -> list[bytes]:
    out: list[bytes] = []
    pos, end = 0, len(data)
    while pos < end:
        (n,) = _LEN.unpack_from(data, pos) if pos + 4 <= end else (end,)
        pos += 4
        if pos + n > end:
            raise CheckpointDecodeError("a chunk or tail frame is truncated")
        out.append(data[pos : pos + n])
        pos += n
    return out


def with_header(mark: bytes, header: object, body: Iterable[bytes]) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([mark, _LEN.pack(len(head)), head, *body])


def _split(data: bytes) -> tuple[Any, bytes]:
    """The header and the body of a NUL-marked form."""
    if len(data) < 6:
        raise CheckpointDecodeError("a stored value's form is truncated")
    (n,) = _LEN.unpack_from(data, 2)
    if 6 + n > len(data):
        raise CheckpointDecodeError("a stored value's header is truncated")
    try:
        header = json.loads(data[6 : 6 + n])
    except (ValueError, RecursionError):
        raise CheckpointDecodeError("a stored value's header is not JSON") from None
    return header, data[6 + n :]


def _cut(body: bytes, lengths: list[int]) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    for n in lengths:  # callers pass ints; a hostile header's other values fail here
        if not isinstance(n, int) or n < 0 or pos + n > len(body):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise CheckpointDecodeError("a stored value's pieces do not match its header")
        out.append(body[pos : pos + n])
        pos += n
    if pos != len(body):
        raise CheckpointDecodeError("a stored value has trailing bytes")
    return out


@dataclass(frozen=True, slots=True)
class ListForm:
    chunks: tuple[ChunkRef, ...]
    segs: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        header = {"c": [list(c) for c in self.chunks], "s": [len(s) for s in self.segs]}
        return with_header(LIST, header, self.segs)

    @staticmethod
    def parse(data: bytes) -> ListForm:
        header, body = _split(data)
        try:
            chunks = tuple((str(c[0]), int(c[1]), int(c[2])) for c in header["c"])
            lengths = [int(n) for n in header["s"]]
        except (TypeError, KeyError, ValueError, IndexError, OverflowError):
            raise CheckpointDecodeError("a stored list's header is malformed") from None
        return ListForm(chunks, tuple(_cut(body, lengths)))


def dict_fields(data: bytes) -> dict[str, bytes]:
    header, body = _split(data)
    try:
        names = [str(f[0]) for f in header["f"]]
        lengths = [int(f[1]) for f in header["f"]]
    except (TypeError, KeyError, ValueError, IndexError, OverflowError):
        raise CheckpointDecodeError("a stored dict's header is malformed") from None
    return dict(zip(names, _cut(body, lengths), strict=True))


def dict_bytes(
    mark: bytes, fields: Mapping[str, bytes], bases: Mapping[str, str] | None = None
) -> bytes:
    header: dict[str, Any] = {"f": [[k, len(v)] for k, v in fields.items()]}
    if bases:
        header["b"] = dict(bases)
    return with_header(mark, header, fields.values())


def is_relative(data: bytes) -> bool:
    """True for a form stored relative to the parent's part (`apply` resolves it)."""
    return data[:2] in (LIST_DELTA, DICT_DELTA)


def apply(base: bytes | None, data: bytes) -> bytes:
    """The whole form of a part stored as `data` on top of `base`, its form in the parent.

    Raises:
        CheckpointDecodeError: `data` is relative and `base` is not what it extends.
    """
    mark = data[:2]
    if mark == LIST_DELTA:
        if base is None or base[:2] != LIST:
            raise CheckpointDecodeError("a list delta's parent part is not a stored list")
        old = ListForm.parse(base)
        header, body = _split(data)
        try:
            keep, kept_segs = int(header["k"]), int(header["t"])
            new = tuple((str(c[0]), int(c[1]), int(c[2])) for c in header["c"])
            lengths = [int(n) for n in header["s"]]
        except (TypeError, KeyError, ValueError, IndexError, OverflowError):
            raise CheckpointDecodeError("a list delta's header is malformed") from None
        if not (0 <= keep <= len(old.chunks) and 0 <= kept_segs <= len(old.segs)):
            raise CheckpointDecodeError("a list delta keeps more than its parent holds")
        segs = old.segs[:kept_segs] + tuple(_cut(body, lengths))
        return ListForm(old.chunks[:keep] + new, segs).to_bytes()
    if mark == DICT_DELTA:
        if base is None or base[:2] != DICT:
            raise CheckpointDecodeError("a dict delta's parent part is not a stored dict")
        old_fields = dict_fields(base)
        header, _ = _split(data)
        raw: object = cast(dict[str, Any], header).get("b", {}) if isinstance(header, dict) else {}
        if not isinstance(raw, dict):
            raise CheckpointDecodeError("a dict delta's bases are malformed")
        bases = {str(k): str(v) for k, v in cast(dict[Any, Any], raw).items()}
        fields: dict[str, bytes] = {}
        for name, value in dict_fields(data).items():
            if not value:
                if name not in old_fields:
                    raise CheckpointDecodeError(f"a dict delta keeps field {name!r} it lacks")
                fields[name] = old_fields[name]
            elif is_relative(value):
                fields[name] = apply(old_fields.get(bases.get(name, name)), value)
            else:
                fields[name] = value
        return dict_bytes(DICT, fields)
    return data


def mentioned(data: bytes) -> list[str]:
    """Ids of the chunks a stored form (whole or relative) names."""
    mark = data[:2]
    if mark == BLOB:
        return [data[2:].decode("ascii", "replace")]
    if mark == LIST:
        return [c[0] for c in ListForm.parse(data).chunks]
    if mark == LIST_DELTA:
        header, _ = _split(data)
        try:
            return [str(c[0]) for c in header["c"]]
        except (TypeError, KeyError, IndexError):
            raise CheckpointDecodeError("a list delta's header is malformed") from None
    if mark in (DICT, DICT_DELTA):
        return [i for v in dict_fields(data).values() if v for i in mentioned(v)]
    return []


def _chunk(chunks: Mapping[str, bytes], cid: str) -> bytes:
    if (data := chunks.get(cid)) is None:
        raise CheckpointDecodeError(f"the checkpoint references chunk {cid!r}, which is missing")
    return data


def decode(data: bytes, chunks: Mapping[str, bytes], types: serde.TypeRegistry | Any) -> Any:
    """The value a whole stored form holds.

    Raises:
        CheckpointDecodeError: the form is malformed or a chunk is missing.
    """
    mark = data[:2]
    if data[:1] != b"\x00":
        return serde.decode(data, types=types)
    if mark == BLOB:
        return serde.decode(_chunk(chunks, data[2:].decode("ascii", "replace")), types=types)
    if mark == LIST:
        form = ListForm.parse(data)
        out: list[Any] = []
        for cid, count, _ in form.chunks:
            before = len(out)
            for frame in _unframe(_chunk(chunks, cid)):
                out.extend(_items(frame, types))
            if len(out) - before != count:
                raise CheckpointDecodeError(f"chunk {cid!r} holds the wrong number of items")
        for seg in form.segs:
            out.extend(_items(seg, types))
        return out
    if mark == DICT:
        return {k: decode(v, chunks, types) for k, v in dict_fields(data).items()}
    raise CheckpointDecodeError(f"unknown stored form {mark!r}")


def _items(data: bytes, types: Any) -> list[Any]:
    value = serde.decode(data, types=types)
    if type(value) is not list:
        raise CheckpointDecodeError("a list chunk or segment does not hold a list")
    return cast(list[Any], value)


def plain(data: bytes, chunks: Mapping[str, bytes]) -> bytes:
    """The plain `serde` encoding of a whole stored form (assembled, not decoded)."""
    mark = data[:2]
    if data[:1] != b"\x00":
        return data
    if mark == BLOB:
        return _chunk(chunks, data[2:].decode("ascii", "replace"))
    if mark == LIST:
        form = ListForm.parse(data)
        frames = [f for cid, _, _ in form.chunks for f in _unframe(_chunk(chunks, cid))]
        inner = [f[1:-1] for f in (*frames, *form.segs) if f != b"[]"]
        return b"[" + b",".join(inner) + b"]"
    if mark == DICT:
        fields = dict_fields(data).items()
        inner = [serde.encode(k) + b":" + plain(v, chunks) for k, v in fields]
        return b"{" + b",".join(inner) + b"}"
    raise CheckpointDecodeError(f"unknown stored form {mark!r}")
