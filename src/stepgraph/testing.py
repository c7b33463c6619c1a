"""Test helpers for users and backend authors: the store conformance suite, a clock, ids.

`check_checkpoint_store(factory)` runs every check a `CheckpointStore` must
pass, and when the store is a `RecordStore` (it keeps activation records),
every check of those too, and when it is a `ChunkStore` (it keeps
content-addressed chunks), the chunk checks; `STORE_CHECKS`, `REOPEN_CHECKS`,
`RECORD_CHECKS`, `RECORD_REOPEN_CHECKS`, `CHUNK_CHECKS`,
`CHUNK_REOPEN_CHECKS`, and for a `SessionLister`, `SESSION_CHECKS` and
`SESSION_REOPEN_CHECKS`, hold them one by one (coroutine functions taking the
factory, raising `AssertionError`) for a test runner to parametrize over.
The chunk checks save checkpoints in the stored forms a session writes to a
`ChunkStore` (chunked lists that grow, blobs, parts relative to the
parent's) and check that loads carry every chunk referenced, that
`load_chunks` answers per session, that `delete` frees exactly the chunks no
remaining checkpoint references and `delete_session` all, and that a chunk
already held is kept as it is.
The factory is an async callable taking a location name and returning an
open store: a new name gives a fresh, empty location; a used name opens the
same storage again (the first store may still be open), which is how the
reopen checks model a restart and a second process. Names match
`[a-z_]+_[0-9a-f]{8}`. For example
`async def factory(name): return SqliteCheckpointStore(tmp_path / f"{name}.db")`.
"""

from __future__ import annotations

import asyncio
import json
import types
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

from . import _parts, serde
from ._checkpoint import FULL_EVERY, Checkpoint, CheckpointInfo
from ._chunk_checks import (
    CHUNK_CHECKS,
    CHUNK_REOPEN_CHECKS,
    check_chunks_closed_store,
    check_chunks_delete_session,
    check_chunks_freed_by_delete,
    check_chunks_kept_once,
    check_chunks_load_chunks,
    check_chunks_relative_deltas,
    check_chunks_reopen,
    check_chunks_round_trip,
    check_chunks_shared_location,
    keeps_chunks,
)
from ._clock import SleepingClock
from ._errors import CheckpointError, CheckpointNotFoundError
from ._record_checks import (
    RECORD_CHECKS,
    RECORD_REOPEN_CHECKS,
    check_records_closed_store,
    check_records_concurrent_writers,
    check_records_deleted_with_checkpoints,
    check_records_hidden,
    check_records_isolation,
    check_records_reopen,
    check_records_round_trip,
    check_records_shared_location,
    keeps_records,
)
from ._session_checks import (
    SESSION_CHECKS,
    SESSION_REOPEN_CHECKS,
    check_sessions_deleted,
    check_sessions_newest_first,
    check_sessions_paging,
    check_sessions_reopen,
    lists_sessions,
)
from .stores import CheckpointStore

__all__ = [
    "CHUNK_CHECKS", "CHUNK_REOPEN_CHECKS", "check_chunks_closed_store",
    "check_chunks_delete_session", "check_chunks_freed_by_delete", "check_chunks_kept_once",
    "check_chunks_load_chunks", "check_chunks_relative_deltas", "check_chunks_reopen",
    "check_chunks_round_trip", "check_chunks_shared_location", "keeps_chunks",
    "ManualClock", "RECORD_CHECKS", "RECORD_REOPEN_CHECKS", "REOPEN_CHECKS", "STORE_CHECKS",
    "SequentialIds", "SleepingClock", "StoreFactory", "check_checkpoint_store",
    "check_closed_store", "check_concurrent_writers", "check_delete", "check_delete_session",
    "check_deltas", "check_list_order", "check_missing", "check_records_closed_store",
    "check_records_concurrent_writers", "check_records_deleted_with_checkpoints",
    "check_records_hidden", "check_records_isolation", "check_records_reopen",
    "check_records_round_trip", "check_records_shared_location", "check_reopen",
    "check_replace", "check_round_trip", "check_session_isolation", "check_shared_location",
    "SESSION_CHECKS", "SESSION_REOPEN_CHECKS", "check_sessions_deleted",
    "check_sessions_newest_first", "check_sessions_paging", "check_sessions_reopen",
    "lists_sessions",
]  # fmt: skip

StoreFactory = Callable[[str], Awaitable[CheckpointStore]]
"""Opens a store on a named location (see the module docstring)."""


class ManualClock:
    """A clock for tests: aware UTC datetimes from `start` (2026-01-01T00:00:00Z), moved by hand.

    A `SleepingClock`: retry delays of a session using it advance it instead of waiting.
    """

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock by `seconds` (negative moves it back)."""
        self.now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        """Jump forward instead of waiting (retry delays use this)."""
        self.advance(seconds)


class SequentialIds:
    """Deterministic ids for tests: `f"{prefix}-{n:06d}"`, n counting from 1."""

    def __init__(self, prefix: str = "id") -> None:
        self.prefix = prefix
        self.count = 0

    def __call__(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count:06d}"


_GRAPH = json.dumps({"executors": [{"id": "agent", "type": "t.A"}], "edges": [], "start": "agent"})
_PAYLOAD = "stepgraph " * 1024  # 10 KiB that never changes


class _Lineage:
    """Checkpoints of one session, each a delta of the previous one unless full."""

    def __init__(self, session_id: str, prefix: str = "cp", ids: Callable[[], str] | None = None):
        self.session_id, self.clock = session_id, ManualClock()
        self.ids = ids or SequentialIds(prefix)
        self.parts: dict[str, bytes] = {}
        self.head: str | None = None
        self.depth = self.superstep = 0
        self.saved: dict[str, Checkpoint] = {}  # id -> the checkpoint as saved (whole parts)

    def next(
        self, changes: Mapping[str, object], deleted: Iterable[str] = (), *, full: bool = False
    ) -> Checkpoint:
        deleted = frozenset(deleted)
        gone = {_parts.state(k) for k in deleted}
        parts = {k: v for k, v in self.parts.items() if k not in gone}
        parts.update({k: v if type(v) is bytes else serde.encode(v) for k, v in changes.items()})
        delta = not full and self.head is not None and self.depth + 1 < FULL_EVERY
        info = CheckpointInfo(self.ids(), self.head, self.session_id, self.superstep, self.clock())
        status = "idle" if self.superstep % 2 else "waiting"
        cp = Checkpoint(info, "sig-1", _GRAPH, status, types.MappingProxyType(parts))
        if delta:
            cp = replace(cp, changed=frozenset(changes), deleted=deleted, depth=self.depth + 1)
        self.parts, self.head, self.depth = parts, info.id, cp.depth
        self.superstep += 1
        self.clock.advance(1.5)
        self.saved[info.id] = cp
        return cp


def _same(got: Checkpoint, want: Checkpoint, what: str = "") -> None:
    what = what or f"checkpoint {want.id!r}"
    assert got.info == want.info, f"{what}: info {got.info} differs from the saved {want.info}"
    for attr in ("graph_signature", "graph", "status", "version"):
        g, w = getattr(got, attr), getattr(want, attr)
        assert g == w, f"{what}: {attr} {g!r} differs from the saved {w!r}"
    assert got.is_full, f"{what}: load/latest must return a whole checkpoint (changed=None)"
    gp, wp = dict(got.parts), dict(want.parts)
    diff = sorted(k for k in gp.keys() | wp.keys() if gp.get(k) != wp.get(k))
    assert not diff, f"{what}: parts {diff} are missing, unexpected or changed"
    assert all(type(v) is bytes for v in gp.values()), f"{what}: parts must be bytes"


async def _ids(store: CheckpointStore, session_id: str, limit: int | None = None) -> list[str]:
    return [info.id for info in await store.list(session_id, limit)]


@asynccontextmanager
async def _store(factory: StoreFactory, name: str) -> AsyncGenerator[CheckpointStore]:
    store = await factory(name)
    try:
        yield store
    finally:
        await store.aclose()


def _name(check: str) -> str:
    return f"{check}_{uuid.uuid4().hex[:8]}"


async def _gone(store: CheckpointStore, cid: str, what: str) -> None:
    try:
        await store.load(cid)
    except CheckpointNotFoundError:
        return
    raise AssertionError(f"{what}: load({cid!r}) did not raise CheckpointNotFoundError")


async def _latest_is(store: CheckpointStore, line: _Lineage, what: str, cid: str = "") -> None:
    latest = await store.latest(line.session_id)
    assert latest is not None, f"{what}: latest({line.session_id!r}) is None"
    _same(latest, line.saved[cid or line.head or ""], f"{what}: latest({line.session_id!r})")


_ODD_PARTS: dict[str, object] = {
    _parts.state("text"): "héllo\n\x00 wörld",
    _parts.state("nested"): {"a": [1, 2.5, None, True], "b": {"c": "d"}},
    _parts.state("big"): 2**100,
    _parts.snapshot("agent"): {"history": ["x"] * 3},
    _parts.snapshot("raw"): bytes(range(256)),  # parts are opaque bytes to a store
    **{_parts.QUEUE: [["agent", "msg"]], _parts.FANIN: {}, _parts.PENDING: []},
}


async def check_round_trip(factory: StoreFactory) -> None:
    """A full checkpoint comes back field for field, its parts byte-identical."""
    async with _store(factory, _name("round_trip")) as store:
        line = _Lineage("tenant/ü 1..\\%2F", "ünï/cödé")
        first = line.next(_ODD_PARTS)
        second = line.next({_parts.state("text"): "second"}, full=True)
        for cp in (first, second):
            await store.save(cp)
            _same(await store.load(cp.id), cp)
        await _latest_is(store, line, "round trip")
        infos = await store.list(line.session_id)
        assert infos == [second.info, first.info], f"list() gave {infos}"


async def check_deltas(factory: StoreFactory) -> None:
    """A chain of 40 deltas (with periodic full ones) loads whole at every position."""
    async with _store(factory, _name("deltas")) as store:
        line = _Lineage("deltas")
        await store.save(
            line.next(
                {_parts.state("payload"): _PAYLOAD, _parts.state("counter"): 0, _parts.QUEUE: []}
            )
        )
        for i in range(1, 41):
            changes: dict[str, object] = {_parts.state("counter"): i, _parts.QUEUE: [["agent", i]]}
            if i % 5 == 0:
                changes[_parts.state(f"k{i}")] = f"value {i}"
            if i % 3 == 0:
                changes[_parts.snapshot("agent")] = {"turn": i}
            deleted = [f"k{i - 7}"] if i % 5 == 2 and i > 7 else []  # keys added 7 steps ago
            await store.save(cp := line.next(changes, deleted, full=i % 13 == 0))
            _same(await store.load(cp.id), cp, f"delta {i} right after saving it")
        assert sum(cp.is_full for cp in line.saved.values()) >= 4, "the test chain has no fulls"
        assert any(cp.deleted for cp in line.saved.values()), "the test chain deletes no key"
        for n, cp in enumerate(line.saved.values()):
            _same(await store.load(cp.id), cp, f"checkpoint {n} of the chain")
        await _latest_is(store, line, "delta chain")


async def check_list_order(factory: StoreFactory) -> None:
    """`list` is newest first by save order (not by id or time) and honours `limit`."""
    async with _store(factory, _name("list_order")) as store:
        countdown = iter(range(999, 0, -1))
        line = _Lineage("order", ids=lambda: f"z{next(countdown)}")
        saved: list[str] = []
        for i in range(6):
            line.clock.advance(-3600)  # later saves carry earlier times and smaller ids
            await store.save(cp := line.next({_parts.state("i"): i}, full=i == 3))
            saved.insert(0, cp.id)
        assert await _ids(store, "order") == saved, "list() is not newest first by save order"
        for limit in (0, 1, 2, 6, 100):
            got = await _ids(store, "order", limit)
            assert got == saved[:limit], f"list(limit={limit}) gave {got}, expected {saved[:limit]}"


async def check_session_isolation(factory: StoreFactory) -> None:
    """Sessions never see each other's checkpoints, however similar their ids."""
    async with _store(factory, _name("isolation")) as store:
        sessions = ["a", "A", "a/b", "a%2Fb", "a b", "ü", "a.log", "../a"]
        lines = {s: _Lineage(s, f"{n}") for n, s in enumerate(sessions)}
        for _ in range(3):
            for line in lines.values():
                await store.save(line.next({_parts.state("who"): line.session_id}))
        for s, line in lines.items():
            got = await _ids(store, s)
            assert got == list(reversed(line.saved)), f"session {s!r} lists {got}"
            await _latest_is(store, line, "isolation")
        await store.delete_session("a")
        assert await _ids(store, "a") == [], "delete_session('a') left checkpoints"
        for s in sessions[1:]:
            assert len(await _ids(store, s)) == 3, f"delete_session('a') touched {s!r}"


async def check_missing(factory: StoreFactory) -> None:
    """Unknown ids and sessions: `load` raises, `latest` is None, deletes are no-ops."""
    async with _store(factory, _name("missing")) as store:
        for what in ("an empty store", "a store with data"):
            await _gone(store, "no-such-id", what)
            assert await store.latest("nobody") is None, f"latest of unknown session, {what}"
            assert await store.list("nobody") == [], f"list of unknown session, {what}"
            await store.delete(["no-such-id"])
            await store.delete([])
            await store.delete_session("nobody")
            await store.save(_Lineage("somebody").next({_parts.state("x"): 1}))


async def check_delete(factory: StoreFactory) -> None:
    """`delete` removes exactly the given ids; a dependent re-saved whole survives its base."""
    async with _store(factory, _name("delete")) as store:
        line = _Lineage("del")
        cps = [line.next({_parts.state("n"): i}, full=i in (0, 3)) for i in range(6)]
        for cp in cps:
            await store.save(cp)
        await store.save(cps[1].as_full())  # as Session.prune does before deleting a base
        await store.delete([cps[0].id, cps[2].id, "unknown"])
        kept = [cp for cp in cps if cp not in (cps[0], cps[2])]
        got = await _ids(store, "del")
        assert sorted(got) == sorted(cp.id for cp in kept), f"after delete, list() gave {got}"
        for cp in kept:
            _same(await store.load(cp.id), cp, f"{cp.id!r} after deleting others")
        for cp in (cps[0], cps[2]):
            await _gone(store, cp.id, "a deleted checkpoint")


async def check_delete_session(factory: StoreFactory) -> None:
    """`delete_session` empties one session; it can be saved to again afterwards."""
    async with _store(factory, _name("delete_session")) as store:
        a, b = _Lineage("a", "a"), _Lineage("b", "b")
        for _ in range(3):
            await store.save(a.next({_parts.state("x"): 1}))
            await store.save(b.next({_parts.state("x"): 2}))
        await store.delete_session("a")
        assert await store.list("a") == [], "list() of a deleted session"
        assert await store.latest("a") is None, "latest() of a deleted session"
        for cid in a.saved:
            await _gone(store, cid, "a checkpoint of a deleted session")
        assert await _ids(store, "b") == list(reversed(b.saved)), "delete_session touched b"
        await store.save(again := _Lineage("a", "again").next({_parts.state("x"): 3}))
        assert await _ids(store, "a") == [again.id], "a session deleted then saved to"
        _same(await store.load(again.id), again)


async def check_replace(factory: StoreFactory) -> None:
    """Saving an existing id replaces its content in place: listed once, same position.

    `Session.prune` re-saves kept deltas whole; if that moved them to the front,
    `latest()` (the head after a restart) would be an old checkpoint.
    """
    async with _store(factory, _name("replace")) as store:
        line = _Lineage("replace")
        cps = [line.next({_parts.state("n"): i}) for i in range(3)]
        for cp in cps:
            await store.save(cp)
        new = Checkpoint(cps[0].info, "sig-2", _GRAPH, "failed", {_parts.state("n"): b'"new"'})
        await store.save(new)
        _same(await store.load(new.id), new, "a replaced checkpoint")
        got = await _ids(store, "replace")
        want = [cp.id for cp in reversed(cps)]
        assert got == want, f"after replacing the oldest, list() gave {got}, expected {want}"
        latest = await store.latest("replace")
        assert latest is not None, "latest() lost the session"
        assert latest.id == cps[-1].id, "replacing moved the head"


async def check_concurrent_writers(factory: StoreFactory) -> None:
    """20 tasks saving chains to 5 sessions at once: nothing lost, each chain in order."""
    async with _store(factory, _name("concurrent")) as store:
        lines = [_Lineage(f"s{t % 5}", f"t{t}") for t in range(20)]

        async def write(line: _Lineage) -> None:
            for i in range(6):
                await store.save(line.next({_parts.state("i"): i}))
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as tg:
            for line in lines:
                tg.create_task(write(line))
        for s in range(5):
            got = await _ids(store, f"s{s}")
            mine = [line for line in lines if line.session_id == f"s{s}"]
            assert len(got) == sum(len(ln.saved) for ln in mine), f"session s{s} lists {got}"
            for line in mine:
                order = [cid for cid in got if cid in line.saved]
                assert order == list(reversed(line.saved)), f"s{s}: chain out of order: {order}"
                for cp in line.saved.values():
                    _same(await store.load(cp.id), cp)


async def check_closed_store(factory: StoreFactory) -> None:
    """A store is an async context manager; once closed, every method raises CheckpointError."""
    store = await factory(_name("closed"))
    assert isinstance(store, AbstractAsyncContextManager), "a store is an async context manager"
    cp = _Lineage("closed").next({_parts.state("x"): 1})
    async with cast(AbstractAsyncContextManager[object], store) as entered:
        assert entered is store, "`async with store as s` must give the store itself"
        await store.save(cp)
    calls = {"save": cp, "load": cp.id, "list": "closed", "latest": "closed"}
    for method, arg in {**calls, "delete": [cp.id], "delete_session": "closed"}.items():
        try:
            await getattr(store, method)(arg)
        except CheckpointError:
            continue
        raise AssertionError(f"{method}() on a closed store did not raise CheckpointError")
    await store.aclose()  # closing twice is fine


async def check_reopen(factory: StoreFactory) -> None:
    """Checkpoints survive closing and reopening the store, in the same order."""
    name = _name("reopen")
    lines = [_Lineage("r1", "x"), _Lineage("r/2", "y")]
    async with _store(factory, name) as store:
        for i in range(20):
            for line in lines:
                await store.save(
                    line.next({_parts.state("i"): i, _parts.state("payload"): _PAYLOAD})
                )
        await store.save(list(lines[0].saved.values())[5])  # a replaced id, wherever it goes
        order = {line.session_id: await _ids(store, line.session_id) for line in lines}
    for round_ in range(2):
        async with _store(factory, name) as store:
            for line in lines:
                got = await _ids(store, line.session_id)
                assert got == order[line.session_id], f"after reopening, list() gave {got}"
                for cp in line.saved.values():
                    _same(await store.load(cp.id), cp, f"{cp.id!r} after reopening")
                await _latest_is(store, line, "after reopening", got[0])
                await store.save(cp := line.next({_parts.state("i"): 100 + round_}))
                order[line.session_id].insert(0, cp.id)


async def check_shared_location(factory: StoreFactory) -> None:
    """Two stores open on one location (as two processes would) see each other's writes."""
    name = _name("shared")
    async with _store(factory, name) as a, _store(factory, name) as b:
        line = _Lineage("shared")
        for i in range(10):
            writer, reader = (a, b) if i % 2 else (b, a)
            await writer.save(line.next({_parts.state("i"): i}))
            await _latest_is(reader, line, f"save {i} read through the other store")
        for store in (a, b):
            assert await _ids(store, "shared") == list(reversed(line.saved)), "order differs"
        await a.delete_session("shared")
        assert await b.list("shared") == [], "a session deleted by one store remains in the other"
        await b.save(cp := _Lineage("shared", "again").next({_parts.state("i"): 0}))
        assert await _ids(a, "shared") == [cp.id], "saving after the other store's delete"


_Check = Callable[[StoreFactory], Awaitable[None]]

STORE_CHECKS: tuple[_Check, ...] = (
    check_round_trip, check_deltas, check_list_order, check_session_isolation, check_missing,
    check_delete, check_delete_session, check_replace, check_concurrent_writers,
    check_closed_store,
)  # fmt: skip
"""Checks every store must pass."""

REOPEN_CHECKS: tuple[_Check, ...] = (check_reopen, check_shared_location)
"""Checks for durable stores, whose factory reopens a location by name."""


async def check_checkpoint_store(factory: StoreFactory, *, reopen: bool = True) -> None:
    """Run the whole conformance suite against a store backend.

    A store whose class implements `RecordStore` also runs `RECORD_CHECKS`
    (and `RECORD_REOPEN_CHECKS`); one that does not is still a valid store,
    on which finished activations of an interrupted superstep run again.
    Likewise a `ChunkStore` runs `CHUNK_CHECKS` (and `CHUNK_REOPEN_CHECKS`);
    a store that is not one stores every value plain. A `SessionLister` runs
    `SESSION_CHECKS` (and `SESSION_REOPEN_CHECKS`).

    Args:
        factory: opens a store on a named location (see the module docstring).
        reopen: also run `REOPEN_CHECKS` (and the record and chunk ones); False for
            a store that keeps nothing once closed, such as `MemoryCheckpointStore`.

    Raises:
        AssertionError: on the first failing check, named in the message.
    """
    checks = STORE_CHECKS + (REOPEN_CHECKS if reopen else ())
    if await keeps_records(factory):
        checks += RECORD_CHECKS + (RECORD_REOPEN_CHECKS if reopen else ())
    if await keeps_chunks(factory):
        checks += CHUNK_CHECKS + (CHUNK_REOPEN_CHECKS if reopen else ())
    if await lists_sessions(factory):
        checks += SESSION_CHECKS + (SESSION_REOPEN_CHECKS if reopen else ())
    for check in checks:
        try:
            await check(factory)
        except AssertionError as exc:
            raise AssertionError(f"{check.__name__}: {exc}") from exc
        except Exception as exc:
            raise AssertionError(f"{check.__name__}: {type(exc).__name__}: {exc}") from exc
