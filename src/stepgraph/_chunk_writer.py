"""Writing values in the stored forms of `_chunks`, remembering what each part stores.

A `Track` is what the previous save stored of a part (for a list: a shallow
copy of its items and its chunks and tail), so `store` writes a list that
extends it as the appended items only, merging chunks as `_chunks` describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from ._chunks import (
    BLOB,
    BLOB_MIN,
    DICT,
    DICT_DELTA,
    LIST,
    LIST_DELTA,
    LIST_MIN,
    MERGE,
    SEAL_BYTES,
    ChunkRef,
    Encoder,
    ListForm,
    chunk_id,
    dict_bytes,
    dict_fields,
    frame,
    with_header,
)

__all__ = ["DictTrack", "ListTrack", "Stored", "Track", "blob", "is_long_list", "store", "track_of"]


@dataclass(frozen=True, slots=True)
class ListTrack:
    """A list as stored: the committed items (a shallow copy) and their stored form."""

    items: list[Any]
    form: ListForm


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
        return Stored(BLOB + cid.encode(), None, {cid: data}, None)
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
        framed = frame([data])
        cid = chunk_id(framed)
        chunks[cid] = framed
        level, size = 0, SEAL_BYTES * MERGE
        while len(data) >= size:
            level, size = level + 1, size * MERGE
        form = ListForm(((cid, len(value), level),), ())
    else:
        form = ListForm((), (data,))
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
        framed = frame(segs)
        cid = chunk_id(framed)
        new_chunks[cid] = framed
        chunks = (*chunks, (cid, len(value) - sealed, 0))
        segs = ()
        chunks = _merge(chunks, value, enc, new_chunks)
        named = {c[0] for c in chunks}  # a chunk merged away at once is never stored
        new_chunks = {k: v for k, v in new_chunks.items() if k in named}
    form = ListForm(chunks, segs)
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
    relative = with_header(LIST_DELTA, header, segs[kept_segs:])
    return Stored(form.to_bytes(), relative, new_chunks, ListTrack(list(value), form))


def _merge(
    chunks: tuple[ChunkRef, ...], items: list[Any], enc: Encoder, out: dict[str, bytes]
) -> tuple[ChunkRef, ...]:
    """Merge trailing runs of `MERGE` chunks of one level, re-encoding their items once."""
    while len(chunks) >= MERGE and len({c[2] for c in chunks[-MERGE:]}) == 1:
        level = chunks[-1][2]
        count = sum(c[1] for c in chunks[-MERGE:])
        start = sum(c[1] for c in chunks[:-MERGE])
        framed = frame([enc(items[start : start + count])])
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
        dict_bytes(DICT, wholes),
        dict_bytes(DICT_DELTA, relative, bases) if track is not None else None,
        chunks,
        DictTrack(wholes, lists),
    )


def track_of(data: bytes, value: Any) -> Track | None:
    """What to remember of a stored whole form `data` that decoded to `value`."""
    mark = data[:2]
    if mark == LIST and type(value) is list:
        return ListTrack(list(cast(list[Any], value)), ListForm.parse(data))
    if mark == DICT and type(value) is dict:
        d = cast(dict[str, Any], value)
        wholes = dict_fields(data)
        lists: dict[str, ListTrack] = {}
        for name, whole in wholes.items():
            t = track_of(whole, d.get(name))
            if isinstance(t, ListTrack):
                lists[name] = t
        return DictTrack(wholes, lists)
    return None
