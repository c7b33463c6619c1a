"""The `ChunkStore` checks of the store conformance suite (`stepgraph.testing` exports them).

Each check opens stores through the suite's factory (a location name in, an
open store out; a used name reopens the same storage) and raises
`AssertionError` naming the rule of `ChunkStore` a store broke. The
checkpoints carry real stored forms: values stored by `_chunk_writer.store`
relative to what the previous save stored, as a session saving to a
`ChunkStore` builds them (chunked lists that grow and merge, blobs, dicts
with a long list field, relative parts in delta records).
"""

from __future__ import annotations

import types
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import cast

from . import _chunk_writer, _chunks, _parts, serde
from ._checkpoint import FULL_EVERY, Checkpoint, CheckpointInfo
from ._errors import CheckpointError
from ._store import CheckpointStore, ChunkStore, chunk_store

__all__ = [
    "CHUNK_CHECKS", "CHUNK_REOPEN_CHECKS", "check_chunks_closed_store",
    "check_chunks_delete_session", "check_chunks_freed_by_delete", "check_chunks_kept_once",
    "check_chunks_load_chunks", "check_chunks_relative_deltas", "check_chunks_reopen",
    "check_chunks_round_trip", "check_chunks_shared_location", "keeps_chunks",
]  # fmt: skip

Factory = Callable[[str], Awaitable[CheckpointStore]]

_START = datetime(2026, 1, 1, tzinfo=UTC)
_GRAPH = '{"executors":[{"id":"agent","type":"t.A"}],"edges":[],"start":"agent"}'
HISTORY = _parts.state("history")
BLOB = _parts.state("blob")
SMALL = _parts.state("n")
AGENT = _parts.snapshot("agent")


def _name(check: str) -> str:
    return f"{check}_{uuid.uuid4().hex[:8]}"


def _items(tag: str, start: int, n: int) -> list[str]:
    """`n` items of about 200 bytes (20 fill a chunk), distinct per `tag`."""
    return [f"{tag} {i:05d} " + "ü" * 40 + "x" * 140 for i in range(start, start + n)]


def _blob(tag: str) -> str:
    """A value whose encoding is large enough to be stored as a blob chunk."""
    return f"{tag}: " + "blob " * (_chunks.BLOB_MIN // 4)


@asynccontextmanager
async def _chunk_store(factory: Factory, name: str) -> AsyncGenerator[ChunkStore]:
    store = await factory(name)
    try:
        chunks = chunk_store(store)
        assert chunks is not None, (
            f"{type(store).__name__} is not a ChunkStore: its class lacks load_chunks"
        )
        yield chunks
    finally:
        await store.aclose()


async def keeps_chunks(factory: Factory) -> bool:
    """True when the factory's stores are `ChunkStore`s (the suite then runs the checks)."""
    store = await factory(_name("keeps_chunks"))
    try:
        return chunk_store(store) is not None
    finally:
        await store.aclose()


@dataclass(frozen=True, slots=True)
class _Head:
    parts: dict[str, bytes]
    tracks: dict[str, _chunk_writer.Track]
    values: dict[str, object]
    depth: int


class _Chunked:
    """Checkpoints of one session whose values are stored in `_chunks` forms.

    Each is a delta of the previous one (with a full one at least every
    `FULL_EVERY`) unless `full`; `fork` goes back to an earlier checkpoint
    to save a branch on it, as `Session.restore` does.
    """

    def __init__(self, session_id: str, prefix: str = "ck") -> None:
        self.session_id, self.prefix = session_id, prefix
        self.head: str | None = None
        self.at = _Head({}, {}, {}, 0)
        self.saved: dict[str, Checkpoint] = {}  # id -> as saved (whole parts)
        self.heads: dict[str, _Head] = {}
        self.made: dict[str, bytes] = {}  # every chunk any checkpoint introduced

    def fork(self, checkpoint_id: str) -> None:
        self.head, self.at = checkpoint_id, self.heads[checkpoint_id]

    def next(self, values: Mapping[str, object], *, full: bool = False) -> Checkpoint:
        old = self.at
        parts, tracks = dict(old.parts), dict(old.tracks)
        relative: dict[str, bytes] = {}
        chunks: dict[str, bytes] = {}
        for name, value in values.items():
            stored = _chunk_writer.store(value, old.tracks.get(name), serde.encode)
            parts[name] = stored.whole
            chunks.update(stored.chunks)
            if stored.relative is not None:
                relative[name] = stored.relative
            if stored.track is None:
                tracks.pop(name, None)
            else:
                tracks[name] = stored.track
        n = len(self.saved)
        info = CheckpointInfo(
            f"{self.prefix}-{n:04d}", self.head, self.session_id, n, _START + timedelta(seconds=n)
        )
        cp = Checkpoint(
            info,
            "sig-1",
            _GRAPH,
            "idle",
            types.MappingProxyType(parts),
            chunks=types.MappingProxyType(chunks),
        )
        if not full and self.head is not None and old.depth + 1 < FULL_EVERY:
            changed = frozenset(k for k, v in parts.items() if old.parts.get(k) != v)
            rel = {k: v for k, v in relative.items() if k in changed}
            cp = replace(
                cp, changed=changed, depth=old.depth + 1, relative=types.MappingProxyType(rel)
            )
        self.head = info.id
        self.at = _Head(parts, tracks, {**old.values, **values}, cp.depth)
        self.heads[info.id] = self.at
        self.saved[info.id] = cp
        self.made.update(chunks)
        return cp

    def values(self, checkpoint_id: str) -> dict[str, object]:
        return self.heads[checkpoint_id].values

    def named(self, ids: Collection[str]) -> set[str]:
        """Every chunk the whole content of those checkpoints references."""
        return {i for cid in ids for i in self.saved[cid].chunk_ids()}


def _grow(line: _Chunked, steps: int, tag: str = "item", per_step: int = 10) -> list[Checkpoint]:
    """`steps` checkpoints appending `per_step` items to the history and the agent's list."""
    out: list[Checkpoint] = []
    for _ in range(steps):
        history = cast(list[str], line.at.values.get(HISTORY, []))
        start = len(history)
        grown = [*history, *_items(tag, start, per_step)]
        changes: dict[str, object] = {HISTORY: grown, SMALL: start}
        changes[AGENT] = {"conversation": list(grown), "turns": start // per_step}
        out.append(line.next(changes))
    return out


async def _same(store: ChunkStore, line: _Chunked, cid: str, what: str) -> None:
    """Check that `load(cid)` gives the whole checkpoint with every chunk it references."""
    want = line.saved[cid]
    got = await store.load(cid)
    what = f"{what}: load({cid!r})"
    assert got.info == want.info, f"{what}: info {got.info} differs from the saved {want.info}"
    assert got.is_full, f"{what} must return a whole checkpoint (changed=None)"
    gp, wp = dict(got.parts), dict(want.parts)
    diff = sorted(k for k in gp.keys() | wp.keys() if gp.get(k) != wp.get(k))
    assert not diff, f"{what}: parts {diff} are missing, unexpected or changed"
    needed = want.chunk_ids()
    missing = sorted(needed - set(got.chunks))
    assert not missing, f"{what}: lacks chunks {missing[:3]} its parts reference"
    wrong = sorted(i for i in needed if got.chunks[i] != line.made[i])
    assert not wrong, f"{what}: chunks {wrong[:3]} come back changed"
    for name, value in line.values(cid).items():
        assert got.value(name) == value, f"{what}: part {name!r} decodes to another value"


async def _held(store: ChunkStore, line: _Chunked, ids: Collection[str] = ()) -> dict[str, bytes]:
    asked = {*line.made, *ids, "0" * 32, "not-a-chunk"}
    got = await store.load_chunks(line.session_id, asked)
    assert isinstance(got, dict), f"load_chunks must return a dict, not {type(got).__name__}"
    bad = sorted(i for i, v in got.items() if type(v) is not bytes)
    assert not bad, f"load_chunks must give bytes; {bad[:3]} are not"
    unasked = sorted(set(got) - asked)
    assert not unasked, f"load_chunks returned chunks {unasked[:3]} it was not asked for"
    return got


def _uses_every_form(cps: Collection[Checkpoint]) -> None:
    """The test's own data holds what it means to check (not a store's fault)."""
    stored = [d for cp in cps for d in cp.stored_parts().values()]
    marks = {d[:2] for d in stored}
    assert {b"\x00L", b"\x00D", b"\x00E", b"\x00B", b"\x00M"} <= marks, f"forms: {marks}"


async def check_chunks_round_trip(factory: Factory) -> None:
    """Checkpoints carrying chunks (lists that grow and merge, blobs) load with all of them."""
    async with _chunk_store(factory, _name("chunks_round_trip")) as store:
        line = _Chunked("tenant/ü 1..\\%2F")
        cps = [line.next({BLOB: _blob("first"), SMALL: -1})]
        cps += _grow(line, 12)
        cps.append(line.next({BLOB: _blob("second")}, full=True))
        cps += _grow(line, 12)
        _uses_every_form(cps)
        track = line.at.tracks[HISTORY]
        assert isinstance(track, _chunk_writer.ListTrack), "the test's list is not chunked"
        assert any(c[2] > 0 for c in track.form.chunks), "the test's list never merged"
        for cp in cps:
            await store.save(cp)
            await _same(store, line, cp.id, "right after saving it")
        for cp in cps:
            await _same(store, line, cp.id, "after saving the chain")
        latest = await store.latest(line.session_id)
        assert latest is not None, "latest() lost the session"
        assert latest.id == cps[-1].id, f"latest() is {latest.id!r}"
        assert line.named([latest.id]) <= set(latest.chunks), "latest() lacks chunks"


async def check_chunks_relative_deltas(factory: Factory) -> None:
    """A delta whose parts are stored relative to the parent's (`relative`) loads whole."""
    async with _chunk_store(factory, _name("chunks_relative_deltas")) as store:
        line = _Chunked("relative")
        first = line.next({HISTORY: _items("a", 0, 9), AGENT: {"conversation": _items("b", 0, 9)}})
        await store.save(first)
        second = line.next({HISTORY: _items("a", 0, 11)})  # two items appended: a list delta
        third = line.next({AGENT: {"conversation": _items("b", 0, 12), "turns": 1}})
        fourth = line.next({AGENT: {"conversation": _items("b", 0, 12), "turns": 2}})
        for cp, mark in ((second, b"\x00D"), (third, b"\x00E"), (fourth, b"\x00E")):
            stored = cp.stored_parts()
            name = HISTORY if cp is second else AGENT
            assert not cp.is_full, "the test's delta is a full checkpoint"
            assert stored[name][:2] == mark, "the test's delta stores the part whole"
            assert len(stored[name]) < len(cp.parts[name]), "the test's relative form is whole"
            await store.save(cp)
            await _same(store, line, cp.id, f"a delta storing {name!r} relative")
        for cp in (first, second, third, fourth):
            await _same(store, line, cp.id, "after saving the relative deltas")


async def check_chunks_load_chunks(factory: Factory) -> None:
    """`load_chunks` gives the session's chunks among the ids asked, no others' and no unknowns."""
    async with _chunk_store(factory, _name("chunks_load_chunks")) as store:
        line = _Chunked("mine")
        for cp in [line.next({BLOB: _blob("mine")}), *_grow(line, 6)]:
            await store.save(cp)
        got = await _held(store, line)
        assert got == line.made, (
            f"load_chunks gave {len(got)} of the {len(line.made)} chunks the session's "
            "checkpoints introduced, or changed bytes"
        )
        some = sorted(line.made)[:3]
        part = await store.load_chunks(line.session_id, [*some, "unknown"])
        assert part == {i: line.made[i] for i in some}, "load_chunks of a few ids"
        assert await store.load_chunks(line.session_id, []) == {}, "load_chunks of no ids"
        other = await store.load_chunks("other", list(line.made))
        assert other == {}, f"load_chunks of another session gave {len(other)} chunks"
        assert await store.load_chunks("nobody", ["0" * 32]) == {}, "an unknown session"


async def check_chunks_freed_by_delete(factory: Factory) -> None:
    """`delete` frees exactly the chunks no remaining checkpoint needs; survivors still load."""
    async with _chunk_store(factory, _name("chunks_freed_by_delete")) as store:
        line = _Chunked("gc")
        main = [line.next({BLOB: _blob("old")}), *_grow(line, 10)]
        main.append(line.next({BLOB: _blob("new")}))
        main += _grow(line, 8)
        line.fork(main[3].id)
        branch = _grow(line, 4, tag="branch")
        for cp in main + branch:
            await store.save(cp)
        other = _Chunked("gc-other", "other")
        theirs = [other.next({BLOB: _blob("old")}), *_grow(other, 4, tag="branch")]
        for cp in theirs:
            await store.save(cp)
        assert await _held(store, line) == line.made, "chunks before any delete"
        cut = 14  # keep main[cut:]; as Session.prune does, re-save the first kept one whole
        await store.save(main[cut].as_full())
        gone = [cp.id for cp in main[:cut] + branch]
        await store.delete(gone)
        kept = [cp.id for cp in main[cut:]]
        want = line.named(kept)
        assert len(want) < len(line.made), "the test deletes nothing only they name"
        assert line.named([b.id for b in branch]) - want, "the test's branch names no own chunk"
        got = await _held(store, line)
        extra, lost = sorted(set(got) - want), sorted(want - set(got))
        assert not lost, f"delete freed chunks {lost[:3]} a remaining checkpoint references"
        assert not extra, f"delete left {len(extra)} chunks no remaining checkpoint references"
        for cid in kept:
            await _same(store, line, cid, "a checkpoint kept by delete")
        await store.save(line.saved[kept[-1]].as_full())  # as prune does: its base goes
        await store.delete(kept[:-1])
        got = await _held(store, line)
        assert set(got) == line.named(kept[-1:]), "deleting the rest but the head"
        await _same(store, line, kept[-1], "the only checkpoint left")
        assert await _held(store, other) == other.made, "delete freed another session's chunks"
        for cp in theirs:
            await _same(store, other, cp.id, "another session after a delete")


async def check_chunks_delete_session(factory: Factory) -> None:
    """`delete_session` frees every chunk of the session, and no other session's."""
    async with _chunk_store(factory, _name("chunks_delete_session")) as store:
        a, b = _Chunked("a", "a"), _Chunked("b", "b")
        for line in (a, b):  # the same content: the same chunk ids in both sessions
            for cp in [line.next({BLOB: _blob("same")}), *_grow(line, 6)]:
                await store.save(cp)
        assert set(a.made) == set(b.made), "the test's sessions differ"
        await store.delete_session("a")
        left = await _held(store, a)
        assert left == {}, f"delete_session left {len(left)} of its chunks"
        assert await _held(store, b) == b.made, "delete_session freed another session's chunks"
        for cid in b.saved:
            await _same(store, b, cid, "another session after delete_session")
        again = _Chunked("a", "again")
        cps = [again.next({BLOB: _blob("same")}), *_grow(again, 3)]
        for cp in cps:
            await store.save(cp)
        for cp in cps:
            await _same(store, again, cp.id, "a session saved to after delete_session")
        assert await _held(store, again) == again.made, "chunks saved after delete_session"


async def check_chunks_kept_once(factory: Factory) -> None:
    """A chunk already held is kept as it is: re-saves neither change nor lose it."""
    async with _chunk_store(factory, _name("chunks_kept_once")) as store:
        line = _Chunked("once")
        cps = [line.next({BLOB: _blob("once")}), *_grow(line, 6)]
        for cp in cps:
            await store.save(cp)
        before = await _held(store, line)
        for cp in cps:  # the same checkpoints again, carrying their chunks again
            await store.save(cp)
        again = line.next({BLOB: _blob("once"), HISTORY: line.at.values[HISTORY]}, full=True)
        assert set(again.chunks) & set(before), "the test's re-save carries no held chunk"
        await store.save(again)
        # A checkpoint carrying other bytes under a held id: the chunk already held stays.
        held = sorted(before)[0]
        forged = replace(
            line.next({SMALL: -2}), chunks=types.MappingProxyType({held: b"not the chunk"})
        )
        await store.save(forged)
        after = await _held(store, line)
        assert after == before, "re-saving changed, added or lost chunks already held"
        infos = [info.id for info in await store.list(line.session_id)]
        assert sorted(infos) == sorted(line.saved), f"after re-saves, list() gave {infos}"
        for cid in line.saved:
            await _same(store, line, cid, "after re-saves")


async def check_chunks_closed_store(factory: Factory) -> None:
    """Once the store is closed, `load_chunks` raises `CheckpointError` too."""
    async with _chunk_store(factory, _name("chunks_closed_store")) as store:
        line = _Chunked("closed")
        await store.save(line.next({BLOB: _blob("closed")}))
    try:
        await store.load_chunks("closed", list(line.made))
    except CheckpointError:
        return
    raise AssertionError("load_chunks() on a closed store did not raise CheckpointError")


async def check_chunks_reopen(factory: Factory) -> None:
    """Chunks are durable: they survive closing and reopening the store, as do their frees."""
    name = _name("chunks_reopen")
    line = _Chunked("r/1")
    async with _chunk_store(factory, name) as store:
        cps = [line.next({BLOB: _blob("reopen")}), *_grow(line, 8)]
        for cp in cps:
            await store.save(cp)
    async with _chunk_store(factory, name) as store:
        assert await _held(store, line) == line.made, "chunks after reopening"
        for cp in cps:
            await _same(store, line, cp.id, "after reopening")
        await store.save(cps[-1].as_full())
        await store.delete([cp.id for cp in cps[:-1]])
    async with _chunk_store(factory, name) as store:
        got = await _held(store, line)
        assert set(got) == line.named([cps[-1].id]), "frees undone (or not made) by reopening"
        await _same(store, line, cps[-1].id, "the checkpoint kept, reopened")


async def check_chunks_shared_location(factory: Factory) -> None:
    """Two stores on one location (two processes) see each other's chunks and frees."""
    name = _name("chunks_shared_location")
    async with _chunk_store(factory, name) as a, _chunk_store(factory, name) as b:
        line = _Chunked("shared")
        cps = [line.next({BLOB: _blob("shared")}), *_grow(line, 6)]
        for i, cp in enumerate(cps):
            writer, reader = (a, b) if i % 2 else (b, a)
            await writer.save(cp)
            await _same(reader, line, cp.id, f"checkpoint {i} read through the other store")
        await a.delete_session("shared")
        assert await _held(b, line) == {}, "chunks of a session deleted by the other store"


_Check = Callable[[Factory], Awaitable[None]]

CHUNK_CHECKS: tuple[_Check, ...] = (
    check_chunks_round_trip, check_chunks_relative_deltas, check_chunks_load_chunks,
    check_chunks_freed_by_delete, check_chunks_delete_session, check_chunks_kept_once,
    check_chunks_closed_store,
)  # fmt: skip
"""Checks every `ChunkStore` must pass."""

CHUNK_REOPEN_CHECKS: tuple[_Check, ...] = (check_chunks_reopen, check_chunks_shared_location)
"""Checks for durable `ChunkStore`s, whose factory reopens a location by name."""
