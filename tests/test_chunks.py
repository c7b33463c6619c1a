"""`_chunks`: the stored forms of long lists, dicts holding them and large values."""

from __future__ import annotations

import contextlib
import json
import math
import random
import struct
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from stepgraph import CheckpointDecodeError, _chunk_writer, _chunks, serde
from stepgraph._chunk_writer import ListTrack
from stepgraph._chunks import BLOB_MIN, LIST_MIN, MERGE, SEAL_BYTES


def enc(value: Any) -> bytes:
    return serde.encode(value)


def item(i: int, tag: str = "item", size: int = 200) -> str:
    head = f"{tag} {i:06d} "
    return head + "é" * 20 + "x" * (size - len(head) - 40)


class Reader:
    """What a store keeps of one part: the chunks so far and the whole form of the last save."""

    def __init__(self, types: Any = ()) -> None:
        self.chunks: dict[str, bytes] = {}
        self.whole: bytes | None = None
        self.types = types

    def save(self, stored: _chunk_writer.Stored) -> None:
        """Keep `stored` as a store would: the relative form applied on the previous whole."""
        for cid, data in stored.chunks.items():
            assert _chunks.chunk_id(data) == cid
            self.chunks.setdefault(cid, data)
        if stored.relative is not None:
            assert _chunks.is_relative(stored.relative)
            assert _chunks.apply(self.whole, stored.relative) == stored.whole
        assert not _chunks.is_relative(stored.whole)
        assert set(_chunks.mentioned(stored.whole)) <= self.chunks.keys()
        self.whole = stored.whole

    def value(self) -> Any:
        assert self.whole is not None
        return _chunks.decode(self.whole, self.chunks, self.types)


def save(
    reader: Reader, value: Any, track: _chunk_writer.Track | None, e: Any = enc
) -> _chunk_writer.Stored:
    stored = _chunk_writer.store(value, track, e)
    reader.save(stored)
    assert reader.value() == value
    assert _chunks.plain(stored.whole, reader.chunks) == e(value)
    return stored


# -- lists --------------------------------------------------------------------------------


def test_a_list_that_grows_stores_what_it_gained() -> None:
    reader, track, items = Reader(), None, []
    for i in range(300):
        items = [*items, item(i)]
        stored = save(reader, items, track)
        if len(items) < LIST_MIN:
            assert stored.whole == enc(items)
            assert stored.track is None
            continue
        assert stored.whole[:2] == b"\x00L"
        if track is None:
            assert stored.relative is None  # the first long form is whole
        else:
            assert stored.relative is not None
            assert stored.relative[:2] == b"\x00D"
            # One item of 200-odd bytes and a header naming at most a few new chunks.
            assert len(stored.relative) < 700, (i, len(stored.relative))
        track = stored.track
    assert len(reader.whole or b"") < 2_000  # chunk ids and a tail, not 60 KB of items
    assert sum(map(len, reader.chunks.values())) > 300 * 200


def test_appending_several_items_at_once_and_nothing() -> None:
    reader = Reader()
    items = [item(i) for i in range(LIST_MIN)]
    track = save(reader, items, None).track
    for n in (1, 5, 40, 0, 3):
        items = [*items, *(item(len(items) + k) for k in range(n))]
        stored = save(reader, items, track)
        if n == 0:
            assert stored.relative is None
            assert stored.chunks == {}
        track = stored.track


@pytest.mark.parametrize(
    "change",
    [
        lambda xs: [*xs[:50], "edited", *xs[51:]],  # an edit in the middle
        lambda xs: xs[:-1],  # shrink by one
        lambda xs: xs[: LIST_MIN + 1],  # shrink a lot
        lambda xs: [item(-1), *xs],  # prepend
        lambda xs: list(reversed(xs)),
    ],
)
def test_a_list_that_does_not_extend_the_stored_one_is_stored_whole(change: Any) -> None:
    reader = Reader()
    items = [item(i) for i in range(100)]
    stored = save(reader, items, None)
    stored = save(reader, [*items, item(100)], stored.track)
    changed = change([*items, item(100)])
    again = save(reader, changed, stored.track)
    assert again.relative is None
    assert isinstance(again.track, ListTrack)
    assert again.track.items == changed
    more = save(reader, [*changed, "after"], again.track)  # and goes on from the new one
    assert more.relative is not None


def test_short_to_long_to_short_to_empty() -> None:
    reader, track = Reader(), None
    for value in ([], [1], [item(i) for i in range(50)], [1, 2], [], [item(i) for i in range(9)]):
        stored = save(reader, value, track)
        track = stored.track
        assert (track is None) == (len(value) < LIST_MIN)


def test_the_same_list_object_mutated_in_place_is_still_stored_exactly() -> None:
    reader = Reader()
    items = [item(i) for i in range(20)]
    stored = save(reader, items, None)
    items.append(item(20))  # the track holds a copy: this is an append, not a no-op
    stored = save(reader, items, stored.track)
    assert stored.relative is not None
    items[3] = "edited"  # an edit of the same object: stored whole
    stored = save(reader, items, stored.track)
    assert stored.relative is None


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


def test_user_types_registered_through_a_type_registry() -> None:
    registry = serde.TypeRegistry([Turn])

    def e(value: Any) -> bytes:
        return serde.encode(value, types=registry)

    reader, track = Reader(registry), None
    turns: list[Turn] = []
    for i in range(120):
        turns = [*turns, Turn("user" if i % 2 else "assistant", item(i))]
        stored = save(reader, turns, track, e)
        track = stored.track
    got = reader.value()
    assert all(type(t) is Turn for t in got)
    with pytest.raises(CheckpointDecodeError):
        _chunks.decode(reader.whole or b"", reader.chunks, ())  # the class is not known


def test_merges_keep_chunks_logarithmic_and_encode_each_item_a_bounded_number_of_times() -> None:
    encoded: Counter[str] = Counter()

    def counting(value: Any) -> bytes:
        if type(value) is list:
            encoded.update(value)
        return enc(value)

    reader, track, items = Reader(), None, []
    n_total = 5_000
    most_chunks = 0
    for i in range(n_total):
        items = [*items, f"{i:06d}" + "y" * 94]  # about 100 bytes: 40 items to a chunk
        if len(items) == LIST_MIN:
            encoded.clear()  # short lists are encoded whole each time, as plain values
        stored = _chunk_writer.store(items, track, counting)
        reader.chunks.update(stored.chunks)
        if stored.relative is not None:
            reader.whole = _chunks.apply(reader.whole, stored.relative)
            assert reader.whole == stored.whole
        else:
            reader.whole = stored.whole
        track = stored.track
        if isinstance(track, ListTrack):
            n_chunks = len(track.form.chunks)
            seals = max(1, len(items) * 103 // SEAL_BYTES)
            bound = (MERGE - 1) * (1 + math.ceil(math.log(seals, MERGE)))
            assert n_chunks <= bound, (len(items), n_chunks, bound)
            most_chunks = max(most_chunks, n_chunks)
    assert reader.value() == items
    assert isinstance(track, ListTrack)
    assert max(c[2] for c in track.form.chunks) >= 2  # two levels of merges happened
    levels = 1 + math.ceil(math.log(n_total * 103 / SEAL_BYTES, MERGE))
    assert max(encoded.values()) <= 1 + levels, encoded.most_common(3)  # a tail + each merge
    assert min(encoded[x] for x in items) >= 1
    assert most_chunks < 3 * MERGE


# -- dicts, blobs, plain -------------------------------------------------------------------


def test_a_dict_snapshot_stores_its_long_list_relative_and_unchanged_fields_empty() -> None:
    reader, track = Reader(), None
    conversation = [item(i) for i in range(30)]
    snap = {"conversation": conversation, "n": 0, "meta": {"model": "m" * 300}}
    stored = save(reader, snap, None)
    assert stored.whole[:2] == b"\x00M"
    assert stored.relative is None
    track = stored.track
    for n in range(1, 40):
        conversation = [*conversation, item(100 + n)]
        snap = {**snap, "conversation": conversation, "n": n}
        stored = save(reader, snap, track)
        track = stored.track
        assert stored.relative is not None
        assert stored.relative[:2] == b"\x00E"
        fields = _chunks.dict_fields(stored.relative)
        assert fields["meta"] == b""  # unchanged
        assert fields["n"] == enc(n)  # small fields whole
        assert fields["conversation"][:2] == b"\x00D"  # the list relative
        assert len(stored.relative) < 800
    # A field added, one removed, the list replaced: still exact.
    snap = {"conversation": conversation[:20], "new": [1, 2, 3]}
    stored = save(reader, snap, track)
    assert _chunks.dict_fields(stored.relative or b"")["conversation"][:2] == b"\x00L"


def test_dicts_serde_does_not_write_as_plain_objects_are_stored_plain() -> None:
    long = [item(i) for i in range(20)]
    for value in ({"!": "tuple", "v": long}, {1: long, "a": long}, {"!": long}):
        reader = Reader()
        stored = save(reader, value, None)
        assert stored.whole[:2] != b"\x00M"
        assert type(reader.value()) is dict


def test_blobs() -> None:
    big = "z" * BLOB_MIN
    reader = Reader()
    stored = save(reader, big, None)
    data = enc(big)
    cid = _chunks.chunk_id(data)
    assert stored.whole == b"\x00B" + cid.encode()
    assert stored.chunks == {cid: data}
    assert _chunks.mentioned(stored.whole) == [cid]
    assert stored.track is None
    small = "z" * (BLOB_MIN - 10)
    assert _chunk_writer.store(small, None, enc).whole == enc(small)
    assert _chunk_writer.store({"a": big}, None, enc).whole[:2] == b"\x00B"  # a dict without lists


VALUES: list[Any] = [
    [],
    [1, 2],
    list(range(LIST_MIN)),
    [None, True, 1.5, 2**80, 'é\n\x00"', b"\x00\xff", (1, 2), {3, 4}, {"k": [1]}, {1: 2}, []] * 3,
    [[i, [i]] for i in range(300)],
    ["[]", "[", "]", ",", ""] * 10,
    {"conversation": [{"role": "u", "text": item(i)} for i in range(200)], "é": 1, "": None},
    {"a": [1] * 9, "b": [[]] * 9, "c": "x" * 5000},
    "s" * 10_000,
    {"big": "b" * 10_000},
    42,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_plain_is_the_serde_encoding_byte_for_byte(value: Any) -> None:
    reader = Reader()
    stored = save(reader, value, None)
    assert _chunks.plain(stored.whole, reader.chunks) == enc(value)
    if type(value) is list and len(value) >= LIST_MIN:  # and after growing
        grown = [*value, *value[:30], "end"]
        again = save(reader, grown, stored.track)
        assert _chunks.plain(again.whole, reader.chunks) == enc(grown)


# -- malformed and hostile forms -------------------------------------------------------


def header_form(mark: bytes, header: Any, body: bytes = b"") -> bytes:
    head = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return mark + struct.pack(">I", len(head)) + head + body


HOSTILE: list[bytes] = [
    b"\x00",
    b"\x00L",
    b"\x00L\x00\x00",
    b"\x00L\xff\xff\xff\xff{}",
    header_form(b"\x00L", b"{not json"),
    header_form(b"\x00L", b"[" * 100_000),
    header_form(b"\x00L", []),
    header_form(b"\x00L", 5),
    header_form(b"\x00L", {"c": None, "s": []}),
    header_form(b"\x00L", {"c": [["x", "nan", 0]], "s": []}),
    header_form(b"\x00L", b'{"c": [["x", 1e999, 0]], "s": []}'),
    header_form(b"\x00L", b'{"c": [], "s": [1e999]}'),
    header_form(b"\x00L", {"c": [], "s": [-1]}, b"[]"),
    header_form(b"\x00L", {"c": [], "s": [5]}, b"[]"),
    header_form(b"\x00L", {"c": [], "s": [2]}, b"[]trailing"),
    header_form(b"\x00L", {"c": [], "s": [2]}, b"{}"),
    header_form(b"\x00L", {"c": [], "s": [3]}, b"[1,"),
    header_form(b"\x00L", {"c": [["missing", 1, 0]], "s": []}),
    header_form(b"\x00L", {"c": [[{}, 1, 0]], "s": []}),
    header_form(b"\x00L", {"c": [{"0": 1}], "s": []}),
    header_form(b"\x00M", {"f": [["a", 2]]}, b"[1]"),
    header_form(b"\x00M", {"f": [["a", 6]]}, b"\x00D\x00\x00\x00\x00"),
    header_form(b"\x00M", {"f": "ab"}, b""),
    header_form(b"\x00M", {"f": [["a", 3]]}, b"\x00Zx"),
    header_form(b"\x00M", {"f": [["a", 6]]}, header_form(b"\x00M", {})),
    b"\x00B",
    b"\x00Bmissing",
    b"\x00B\xff\xfe",
    b"\x00Z" + b"x" * 20,
    b"\x00D" + b"x" * 20,
    b"\x00E" + b"x" * 20,
    b"not json",
    b"",
]


def _try(fn: Any, *args: Any) -> None:
    with contextlib.suppress(CheckpointDecodeError):
        fn(*args)


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_forms_raise_checkpoint_decode_error_only(data: bytes) -> None:
    chunks = {"x": b"\x00\x00\x00\x02[]", "c" * 32: b"\x00\x00"}
    with pytest.raises(CheckpointDecodeError):
        _chunks.decode(data, chunks, ())
    _try(_chunks.plain, data, chunks)
    _try(_chunks.mentioned, data)
    _try(_chunks.apply, data, data)


def _valid_forms() -> tuple[list[bytes], dict[str, bytes]]:
    reader = Reader()
    forms: list[bytes] = []
    track = None
    value: dict[str, Any] = {"conversation": [item(-i) for i in range(LIST_MIN)], "n": 0}
    for i in range(60):
        value = {"conversation": [*value["conversation"], item(i)], "n": i}
        stored = save(reader, value, track)
        forms += [stored.whole, *([stored.relative] if stored.relative else [])]
        forms.append(_chunks.dict_fields(stored.whole)["conversation"])
        track = stored.track
    forms.append(save(reader, "b" * BLOB_MIN, None).whole)
    return forms, reader.chunks


def test_damaged_forms_and_chunks_raise_checkpoint_decode_error_only() -> None:
    forms, chunks = _valid_forms()
    rng = random.Random(20260101)
    raised = 0
    for n in range(3_000):
        data = bytearray(rng.choice(forms))
        how = n % 4
        if how == 0 and len(data) > 2:
            del data[rng.randrange(2, len(data)) :]
        elif how == 1:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif how == 2:
            pos = rng.randrange(2, len(data))
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        damaged_chunks = dict(chunks)
        if how == 3:  # damage a chunk instead, or lose one
            cid = rng.choice(sorted(chunks))
            blob = bytearray(chunks[cid])
            if n % 8 == 3:
                del damaged_chunks[cid]
            else:
                blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
                damaged_chunks[cid] = bytes(blob)
        try:
            whole = _chunks.apply(rng.choice(forms), bytes(data))
            _chunks.mentioned(whole)
            _chunks.decode(whole, damaged_chunks, ())
            _chunks.plain(whole, damaged_chunks)
        except CheckpointDecodeError:
            raised += 1
    assert raised > 1_000  # the damage is mostly noticed (some flips only change a letter)


def test_a_missing_chunk_names_itself() -> None:
    reader = Reader()
    stored = save(reader, [item(i) for i in range(100)], None)
    (cid,) = stored.chunks
    with pytest.raises(CheckpointDecodeError, match=cid):
        _chunks.decode(stored.whole, {}, ())
    with pytest.raises(CheckpointDecodeError, match=cid):
        _chunks.plain(stored.whole, {})


def test_a_relative_form_needs_the_parent_form_it_extends() -> None:
    reader = Reader()
    items = [item(i) for i in range(10)]
    first = save(reader, items, None)
    second = save(reader, [*items, "more"], first.track)
    assert second.relative is not None
    for base in (None, b"", enc(items), b"\x00B" + b"0" * 32):
        with pytest.raises(CheckpointDecodeError):
            _chunks.apply(base, second.relative)
    snap = save(Reader(), {"c": items}, None)
    rel = _chunk_writer.store({"c": items, "d": 1}, snap.track, enc).relative
    assert rel is not None
    with pytest.raises(CheckpointDecodeError):
        _chunks.apply(first.whole, rel)
    keep_missing = _chunks.dict_bytes(b"\x00E", {"absent": b""})
    with pytest.raises(CheckpointDecodeError, match="absent"):
        _chunks.apply(snap.whole, keep_missing)
    assert _chunks.apply(None, enc(1)) == enc(1)  # a whole form is itself


# -- mentioned -----------------------------------------------------------------------------


def test_mentioned_names_the_chunks_of_every_form() -> None:
    reader = Reader()
    items = [item(i) for i in range(100)]
    first = save(reader, {"conversation": items, "blob": "x"}, None)
    assert set(_chunks.mentioned(first.whole)) == set(first.chunks) != set()
    grown = [*items, *(item(100 + i) for i in range(30))]
    second = save(reader, {"conversation": grown, "blob": "x"}, first.track)
    assert second.relative is not None
    new = set(second.chunks)
    assert new
    assert set(_chunks.mentioned(second.relative)) == new  # a delta names what it adds
    assert set(_chunks.mentioned(second.whole)) >= new | set(first.chunks)
    assert _chunks.mentioned(enc(items)) == []
    blob = save(Reader(), "b" * BLOB_MIN, None)
    assert _chunks.mentioned(blob.whole) == list(blob.chunks)
    unchanged = _chunk_writer.store({"conversation": grown, "blob": "y"}, second.track, enc)
    assert _chunks.mentioned(unchanged.relative or b"") == []  # the list field kept as is


def test_track_of_rebuilds_what_a_reader_needs_to_go_on() -> None:
    reader = Reader()
    snap = {"conversation": [item(i) for i in range(100)], "n": 1}
    stored = save(reader, snap, None)
    track = _chunk_writer.track_of(stored.whole, reader.value())
    assert track == stored.track
    more = {"conversation": [*snap["conversation"], "next"], "n": 2}
    again = save(reader, more, track)
    assert again.relative is not None
    assert len(again.relative) < 300
    assert _chunk_writer.track_of(enc(1), 1) is None
