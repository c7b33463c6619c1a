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

A chunk is a sequence of frames (`u32 length | serde-encoded list`); its id
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
    "BLOB_MIN",
    "LIST_MIN",
    "MERGE",
    "SEAL_BYTES",
    "DictTrack",
    "ListTrack",
    "Stored",
    "Track",
    "apply",
    "blob",
    "chunk_id",
    "decode",
    "is_long_list",
    "is_relative",
    "mentioned",
    "plain",
    "store",
    "track_of",
]

LIST_MIN: Final = 8
"""Lists with fewer items are stored plain."""
SEAL_BYTES: Final = 4096
"""A list's tail becomes a chunk once its segments take this many bytes."""
MERGE: Final = 8
"""This many trailing chunks of one level are merged into one chunk of the next."""
BLOB_MIN: Final = 4096
"""A plain encoding this large is kept as a content-addressed chunk."""

_BLOB, _LIST, _DICT, _LIST_DELTA, _DICT_DELTA = b"\x00B", b"\x00L", b"\x00M", b"\x00D", b"\x00E"
_LEN = struct.Struct(">I")

Encoder = Callable[[Any], bytes]
ChunkRef = tuple[str, int, int]  # (chunk id, items, level)


def chunk_id(data: bytes) -> str:
    """The content address of a chunk."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _frame(pieces: Iterable[bytes]) -> bytes:
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


def _with_header(mark: bytes, header: object, body: Iterable[bytes]) -> bytes:
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
class _ListForm:
    chunks: tuple[ChunkRef, ...]
    segs: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        header = {"c": [list(c) for c in self.chunks], "s": [len(s) for s in self.segs]}
        return _with_header(_LIST, header, self.segs)

    @staticmethod
    def parse(data: bytes) -> _ListForm:
        header, body = _split(data)
        try:
            chunks = tuple((str(c[0]), int(c[1]), int(c[2])) for c in header["c"])
            lengths = [int(n) for n in header["s"]]
        except (TypeError, KeyError, ValueError, IndexError, OverflowError):
            raise CheckpointDecodeError("a stored list's header is malformed") from None
        return _ListForm(chunks, tuple(_cut(body, lengths)))


def _dict_fields(data: bytes) -> dict[str, bytes]:
    header, body = _split(data)
    try:
        names = [str(f[0]) for f in header["f"]]
        lengths = [int(f[1]) for f in header["f"]]
    except (TypeError, KeyError, ValueError, IndexError, OverflowError):
        raise CheckpointDecodeError("a stored dict's header is malformed") from None
    return dict(zip(names, _cut(body, lengths), strict=True))


def _dict_bytes(
    mark: bytes, fields: Mapping[str, bytes], bases: Mapping[str, str] | None = None
) -> bytes:
    header: dict[str, Any] = {"f": [[k, len(v)] for k, v in fields.items()]}
    if bases:
        header["b"] = dict(bases)
    return _with_header(mark, header, fields.values())


def is_relative(data: bytes) -> bool:
    """True for a form stored relative to the parent's part (`apply` resolves it)."""
    return data[:2] in (_LIST_DELTA, _DICT_DELTA)


def apply(base: bytes | None, data: bytes) -> bytes:
    """The whole form of a part stored as `data` on top of `base`, its form in the parent.

    Raises:
        CheckpointDecodeError: `data` is relative and `base` is not what it extends.
    """
    mark = data[:2]
    if mark == _LIST_DELTA:
        if base is None or base[:2] != _LIST:
            raise CheckpointDecodeError("a list delta's parent part is not a stored list")
        old = _ListForm.parse(base)
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
        return _ListForm(old.chunks[:keep] + new, segs).to_bytes()
    if mark == _DICT_DELTA:
        if base is None or base[:2] != _DICT:
            raise CheckpointDecodeError("a dict delta's parent part is not a stored dict")
        old_fields = _dict_fields(base)
        header, _ = _split(data)
        raw: object = cast(dict[str, Any], header).get("b", {}) if isinstance(header, dict) else {}
        if not isinstance(raw, dict):
            raise CheckpointDecodeError("a dict delta's bases are malformed")
        bases = {str(k): str(v) for k, v in cast(dict[Any, Any], raw).items()}
        fields: dict[str, bytes] = {}
        for name, value in _dict_fields(data).items():
            if not value:
                if name not in old_fields:
                    raise CheckpointDecodeError(f"a dict delta keeps field {name!r} it lacks")
                fields[name] = old_fields[name]
            elif is_relative(value):
                fields[name] = apply(old_fields.get(bases.get(name, name)), value)
            else:
                fields[name] = value
        return _dict_bytes(_DICT, fields)
    return data


def mentioned(data: bytes) -> list[str]:
    """Ids of the chunks a stored form (whole or relative) names."""
    mark = data[:2]
    if mark == _BLOB:
        return [data[2:].decode("ascii", "replace")]
    if mark == _LIST:
        return [c[0] for c in _ListForm.parse(data).chunks]
    if mark == _LIST_DELTA:
        header, _ = _split(data)
        try:
            return [str(c[0]) for c in header["c"]]
        except (TypeError, KeyError, IndexError):
            raise CheckpointDecodeError("a list delta's header is malformed") from None
    if mark in (_DICT, _DICT_DELTA):
        return [i for v in _dict_fields(data).values() if v for i in mentioned(v)]
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
    if mark == _BLOB:
        return serde.decode(_chunk(chunks, data[2:].decode("ascii", "replace")), types=types)
    if mark == _LIST:
        form = _ListForm.parse(data)
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
    if mark == _DICT:
        return {k: decode(v, chunks, types) for k, v in _dict_fields(data).items()}
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
    if mark == _BLOB:
        return _chunk(chunks, data[2:].decode("ascii", "replace"))
    if mark == _LIST:
        form = _ListForm.parse(data)
        frames = [f for cid, _, _ in form.chunks for f in _unframe(_chunk(chunks, cid))]
        inner = [f[1:-1] for f in (*frames, *form.segs) if f != b"[]"]
        return b"[" + b",".join(inner) + b"]"
    if mark == _DICT:
        fields = _dict_fields(data).items()
        inner = [serde.encode(k) + b":" + plain(v, chunks) for k, v in fields]
        return b"{" + b",".join(inner) + b"}"
    raise CheckpointDecodeError(f"unknown stored form {mark!r}")


# -- writing with memory of what is stored ----------------------------------------------


@dataclass(frozen=True, slots=True)
class ListTrack:
    """A list as stored: the committed items (a shallow copy) and their stored form."""

    items: list[Any]
    form: _ListForm


@dataclass(frozen=True, slots=True)
class DictTrack:
    """A dict as stored: each field's whole form, and the tracks of its list fields."""

    wholes: dict[str, bytes]
    lists: dict[str, ListTrack]


Track = ListTrack | DictTrack


@dataclass(frozen=True, slots=True)
class Stored:
    """How one value is stored: its whole form, the form relative to the previous one
    (None: store the whole), the chunks it introduces, and what to remember of it.
    """

    whole: bytes
    relative: bytes | None
    chunks: dict[str, bytes]
    track: Track | None


def is_long_list(value: object) -> bool:
    """True for a list stored in the chunked list form."""
    return type(value) is list and len(cast(list[Any], value)) >= LIST_MIN


def store(value: Any, track: Track | None, enc: Encoder) -> Stored:
    """The stored form of `value`, relative to `track` (what the previous save stored)."""
    if is_long_list(value):
        return _store_list(value, track if isinstance(track, ListTrack) else None, enc)
    if type(value) is dict:
        d = cast(dict[Any, Any], value)
        # Only a dict `serde` writes as a plain JSON object (str keys, none the tag
        # key "!"): `plain` assembles the form back into exactly that encoding.
        plain_keys = all(type(k) is str for k in d) and "!" not in d
        if plain_keys and any(is_long_list(v) for v in d.values()):
            return _store_dict(d, track if isinstance(track, DictTrack) else None, enc)
    return blob(enc(value))


def blob(data: bytes) -> Stored:
    """How a plain encoding is stored: as a blob chunk from `BLOB_MIN` bytes, else as it is."""
    if len(data) >= BLOB_MIN:
        cid = chunk_id(data)
        return Stored(_BLOB + cid.encode(), None, {cid: data}, None)
    return Stored(data, None, {}, None)


def _extends(value: list[Any], track: ListTrack | None) -> bool:
    """True when `value` starts with the items `track` stored."""
    if track is None:
        return False
    n = len(track.items)
    return (
        n <= len(value)
        and (n == 0 or value[n - 1] == track.items[-1])
        and (value[:n] == track.items)
    )


def _store_list(value: list[Any], track: ListTrack | None, enc: Encoder) -> Stored:
    if track is not None and _extends(value, track):
        return _extend(value, track, enc)
    data = enc(value)
    chunks: dict[str, bytes] = {}
    if len(data) >= SEAL_BYTES:  # stored whole as one chunk, levelled by its size
        framed = _frame([data])
        cid = chunk_id(framed)
        chunks[cid] = framed
        level, size = 0, SEAL_BYTES * MERGE
        while len(data) >= size:
            level, size = level + 1, size * MERGE
        form = _ListForm(((cid, len(value), level),), ())
    else:
        form = _ListForm((), (data,))
    return Stored(form.to_bytes(), None, chunks, ListTrack(list(value), form))


def _extend(value: list[Any], track: ListTrack, enc: Encoder) -> Stored:
    old = track.form
    added = value[len(track.items) :]
    if not added:
        return Stored(old.to_bytes(), None, {}, track)
    segs = (*old.segs, enc(added))
    chunks = old.chunks
    new_chunks: dict[str, bytes] = {}
    if sum(map(len, segs)) >= SEAL_BYTES:
        sealed = sum(c[1] for c in chunks)
        framed = _frame(segs)
        cid = chunk_id(framed)
        new_chunks[cid] = framed
        chunks = (*chunks, (cid, len(value) - sealed, 0))
        segs = ()
        chunks = _merge(chunks, value, enc, new_chunks)
        named = {c[0] for c in chunks}  # a chunk merged away at once is never stored
        new_chunks = {k: v for k, v in new_chunks.items() if k in named}
    form = _ListForm(chunks, segs)
    keep = 0
    while keep < min(len(chunks), len(old.chunks)) and chunks[keep] == old.chunks[keep]:
        keep += 1
    kept_segs = len(old.segs) if segs else 0
    header = {
        "k": keep,
        "c": [list(c) for c in chunks[keep:]],
        "t": kept_segs,
        "s": [len(s) for s in segs[kept_segs:]],
    }
    relative = _with_header(_LIST_DELTA, header, segs[kept_segs:])
    return Stored(form.to_bytes(), relative, new_chunks, ListTrack(list(value), form))


def _merge(
    chunks: tuple[ChunkRef, ...], items: list[Any], enc: Encoder, out: dict[str, bytes]
) -> tuple[ChunkRef, ...]:
    """Merge trailing runs of `MERGE` chunks of one level, re-encoding their items once."""
    while len(chunks) >= MERGE and len({c[2] for c in chunks[-MERGE:]}) == 1:
        level = chunks[-1][2]
        count = sum(c[1] for c in chunks[-MERGE:])
        start = sum(c[1] for c in chunks[:-MERGE])
        framed = _frame([enc(items[start : start + count])])
        cid = chunk_id(framed)
        out[cid] = framed
        chunks = (*chunks[:-MERGE], (cid, count, level + 1))
    return chunks


def _store_dict(value: dict[str, Any], track: DictTrack | None, enc: Encoder) -> Stored:
    wholes: dict[str, bytes] = {}
    lists: dict[str, ListTrack] = {}
    relative: dict[str, bytes] = {}
    chunks: dict[str, bytes] = {}
    bases: dict[str, str] = {}
    for name, field in value.items():
        if is_long_list(field):
            prev = track.lists.get(name) if track is not None else None
            if track is not None and not _extends(field, prev):
                other = next((k for k, t in track.lists.items() if _extends(field, t)), None)
                if other is not None:
                    prev = track.lists[other]
                    bases[name] = other
            s = _store_list(field, prev, enc)
            assert isinstance(s.track, ListTrack)
            lists[name] = s.track
            chunks.update(s.chunks)
            whole, rel = s.whole, s.relative
        else:
            whole = enc(field)
            rel = None
        wholes[name] = whole
        if track is not None and track.wholes.get(name) == whole:
            relative[name] = b""
        else:
            relative[name] = rel if rel is not None else whole
    for name in [n for n in bases if relative[n] is wholes[n]]:
        del bases[name]  # stored whole after all
    return Stored(
        _dict_bytes(_DICT, wholes),
        _dict_bytes(_DICT_DELTA, relative, bases) if track is not None else None,
        chunks,
        DictTrack(wholes, lists),
    )


def track_of(data: bytes, value: Any) -> Track | None:
    """What to remember of a stored whole form `data` that decoded to `value`."""
    mark = data[:2]
    if mark == _LIST and type(value) is list:
        return ListTrack(list(cast(list[Any], value)), _ListForm.parse(data))
    if mark == _DICT and type(value) is dict:
        d = cast(dict[str, Any], value)
        wholes = _dict_fields(data)
        lists: dict[str, ListTrack] = {}
        for name, whole in wholes.items():
            t = track_of(whole, d.get(name))
            if isinstance(t, ListTrack):
                lists[name] = t
        return DictTrack(wholes, lists)
    return None
