"""The `RecordStore` checks of the store conformance suite (`stepgraph.testing` exports them).

Each check opens stores through the suite's factory (a location name in, an
open store out; a used name reopens the same storage) and raises
`AssertionError` naming the rule of `RecordStore` that a store broke. Bases
are real checkpoints, saved first, as the engine's always are.
"""

from __future__ import annotations

import asyncio
import types
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from . import _parts, serde
from ._checkpoint import Checkpoint, CheckpointInfo
from ._errors import CheckpointError, CheckpointNotFoundError
from ._store import CheckpointStore, RecordStore, record_store

__all__ = [
    "RECORD_CHECKS", "RECORD_REOPEN_CHECKS", "check_records_closed_store",
    "check_records_concurrent_writers", "check_records_deleted_with_checkpoints",
    "check_records_hidden", "check_records_isolation", "check_records_reopen",
    "check_records_round_trip", "check_records_shared_location", "keeps_records",
]  # fmt: skip

Factory = Callable[[str], Awaitable[CheckpointStore]]

_START = datetime(2026, 1, 1, tzinfo=UTC)
_DATA: dict[str, bytes] = {  # odd keys, opaque bytes
    "a:agent:0": b'{"sends":[["agent","hi"]]}',
    "s:agent:0:fetch page": bytes(range(256)),
    "ünï/cödé key": "é".encode() * 100,
    "empty": b"",
    "big": bytes(range(256)) * 1024,  # 256 KiB
    "SGC1": b"SGC1\x00\x00\x00\x02{}",  # looks like a checkpoint record to a careless store
}


def _name(check: str) -> str:
    return f"{check}_{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def _records(factory: Factory, name: str) -> AsyncGenerator[RecordStore]:
    store = await factory(name)
    try:
        records = record_store(store)
        assert records is not None, (
            f"{type(store).__name__} is not a RecordStore: its class lacks save_record, "
            "load_records or delete_records"
        )
        yield records
    finally:
        await store.aclose()


async def keeps_records(factory: Factory) -> bool:
    """True when the factory's stores are `RecordStore`s (the suite then runs the checks)."""
    store = await factory(_name("keeps_records"))
    try:
        return record_store(store) is not None
    finally:
        await store.aclose()


class _Bases:
    """Full checkpoints of one session to keep records under, each the child of the last."""

    def __init__(self, store: RecordStore, session_id: str) -> None:
        self.store, self.session_id = store, session_id
        self.saved: list[Checkpoint] = []

    async def add(self) -> str:
        n = len(self.saved)
        cid = f"{self.session_id}:cp-{n}:{uuid.uuid4().hex[:6]}"
        parent = self.saved[-1].id if self.saved else None
        info = CheckpointInfo(cid, parent, self.session_id, n, _START + timedelta(seconds=n))
        parts = types.MappingProxyType({_parts.state("n"): serde.encode(n)})
        cp = Checkpoint(info, "sig-1", '{"executors":[]}', "idle", parts)
        await self.store.save(cp)
        self.saved.append(cp)
        return cid


async def _expect(
    store: RecordStore, session_id: str, base_id: str, want: dict[str, bytes], rule: str
) -> None:
    got = await store.load_records(session_id, base_id)
    assert isinstance(got, dict), f"load_records must return a dict, not {type(got).__name__}"
    wrong = sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))
    assert not wrong, (
        f"{rule}: load_records({session_id!r}, {base_id!r}) has keys {sorted(got)}, expected "
        f"{sorted(want)}; missing, unexpected or changed: {wrong}"
    )
    bad = sorted(k for k, v in got.items() if type(v) is not bytes)
    assert not bad, f"load_records must give bytes; {bad} are not"


async def check_records_round_trip(factory: Factory) -> None:
    """Records come back byte for byte, saving a key again replaces it, unknowns are empty."""
    async with _records(factory, _name("records_round_trip")) as store:
        bases = _Bases(store, "tenant/ü 1..\\%2F")
        base = await bases.add()
        await _expect(store, bases.session_id, base, {}, "before any save_record")
        for key, data in _DATA.items():
            await store.save_record(bases.session_id, base, key, data)
        await _expect(store, bases.session_id, base, _DATA, "save_record then load_records")
        await store.save_record(bases.session_id, base, "empty", b"now filled")
        await store.save_record(bases.session_id, base, "big", b"small")
        replaced = {**_DATA, "empty": b"now filled", "big": b"small"}
        await _expect(store, bases.session_id, base, replaced, "saving a key again replaces it")
        await _expect(store, bases.session_id, "no-such-base", {}, "an unknown base")
        await _expect(store, "nobody", base, {}, "an unknown session")
        await store.delete_records("nobody", None)  # deleting nothing is fine
        await store.delete_records(bases.session_id, "no-such-base")
        await _expect(store, bases.session_id, base, replaced, "deleting another base")


async def check_records_isolation(factory: Factory) -> None:
    """Records are kept per session and per base; `delete_records` touches only its own."""
    async with _records(factory, _name("records_isolation")) as store:
        sessions = ["a", "A", "a/b", "a%2Fb", "a b", "ü", "../a", "a.rec"]
        want: dict[tuple[str, str], dict[str, bytes]] = {}
        for s in sessions:
            bases = _Bases(store, s)
            for _ in range(2):
                base = await bases.add()
                want[s, base] = {k: f"{s}|{base}|{k}".encode() for k in ("k1", "k2")}
                for key, data in want[s, base].items():
                    await store.save_record(s, base, key, data)
        for (s, base), records in want.items():
            await _expect(store, s, base, records, "records of another session or base leak in")
        first_a, second_a = (base for s, base in want if s == "a")
        await store.delete_records("a", first_a)
        want["a", first_a] = {}
        for (s, base), records in want.items():
            await _expect(store, s, base, records, f"after delete_records('a', {first_a!r})")
        await store.delete_records("A")
        for (s, base), records in want.items():
            records = {} if s == "A" else records
            await _expect(store, s, base, records, "after delete_records('A') (all its bases)")
        assert want["a", second_a], "the test lost its own data"


async def check_records_hidden(factory: Factory) -> None:
    """Records never change a checkpoint, and `list`/`load`/`latest` never show them."""
    async with _records(factory, _name("records_hidden")) as store:
        bases = _Bases(store, "hidden")
        ids = [await bases.add() for _ in range(3)]
        for base in (ids[0], ids[2]):
            for key, data in _DATA.items():
                await store.save_record("hidden", base, key, data)
            await store.save_record("hidden", base, f"{base}-next", b"SGC1")
        infos = [info.id for info in await store.list("hidden")]
        assert infos == ids[::-1], f"with records saved, list() gave {infos}, expected {ids[::-1]}"
        latest = await store.latest("hidden")
        assert latest is not None, "records hid the session's latest()"
        assert latest.id == ids[-1], f"records changed latest() to {latest.id!r}"
        for cp in bases.saved:
            got = await store.load(cp.id)
            assert dict(got.parts) == dict(cp.parts), f"records changed checkpoint {cp.id!r}"
            assert got.info == cp.info, f"records changed the info of {cp.id!r}"
        for key in ("a:agent:0", f"{ids[0]}-next"):
            try:
                await store.load(key)
            except CheckpointNotFoundError:
                continue
            raise AssertionError(f"load({key!r}) found a record key or base as a checkpoint")
        nxt = await bases.add()  # saving on after records still appends to the history
        got_ids = [info.id for info in await store.list("hidden")]
        assert got_ids == [nxt, *ids[::-1]], f"list() after records and a save gave {got_ids}"


async def check_records_deleted_with_checkpoints(factory: Factory) -> None:
    """`delete(ids)` deletes the records under each deleted checkpoint; `delete_session` all."""
    async with _records(factory, _name("records_deleted_with_checkpoints")) as store:
        mine, other = _Bases(store, "gc"), _Bases(store, "gc-other")
        ids = [await mine.add() for _ in range(3)]
        theirs = await other.add()
        for base in ids:
            await store.save_record("gc", base, "k", base.encode())
        await store.save_record("gc-other", theirs, "k", b"theirs")
        await store.delete([ids[0], ids[1], "unknown-id"])
        for base in ids[:2]:
            await _expect(store, "gc", base, {}, f"delete([{base!r}]) must delete its records")
        await _expect(store, "gc", ids[2], {"k": ids[2].encode()}, "delete() of other ids")
        await _expect(store, "gc-other", theirs, {"k": b"theirs"}, "delete() in another session")
        await store.delete_session("gc")
        await _expect(store, "gc", ids[2], {}, "delete_session must delete the session's records")
        await _expect(store, "gc-other", theirs, {"k": b"theirs"}, "delete_session of another")
        again = _Bases(store, "gc")
        base = await again.add()
        await store.save_record("gc", base, "k", b"again")
        await _expect(store, "gc", base, {"k": b"again"}, "records saved after delete_session")


async def check_records_concurrent_writers(factory: Factory) -> None:
    """40 tasks saving records to 4 sessions at once (activations finish together): none lost."""
    async with _records(factory, _name("records_concurrent_writers")) as store:
        bases = [await _Bases(store, f"c{s}").add() for s in range(4)]

        async def write(t: int) -> None:
            for i in range(5):
                s = t % 4
                await store.save_record(f"c{s}", bases[s], f"t{t}:{i}", f"{t}-{i}".encode())
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as tg:
            for t in range(40):
                tg.create_task(write(t))
        for s in range(4):
            want = {f"t{t}:{i}": f"{t}-{i}".encode() for t in range(s, 40, 4) for i in range(5)}
            await _expect(store, f"c{s}", bases[s], want, "records saved concurrently")


async def check_records_closed_store(factory: Factory) -> None:
    """Once the store is closed, the record methods raise `CheckpointError` too."""
    async with _records(factory, _name("records_closed_store")) as store:
        base = await _Bases(store, "closed").add()
        await store.save_record("closed", base, "k", b"v")
    calls = {
        "save_record": ("closed", base, "k", b"v"),
        "load_records": ("closed", base),
        "delete_records": ("closed", None),
    }
    for method, args in calls.items():
        try:
            await getattr(store, method)(*args)
        except CheckpointError:
            continue
        raise AssertionError(f"{method}() on a closed store did not raise CheckpointError")


async def check_records_reopen(factory: Factory) -> None:
    """Records are durable: they survive closing and reopening the store, as do their deletes."""
    name = _name("records_reopen")
    async with _records(factory, name) as store:
        bases = _Bases(store, "r/1")
        first, second = await bases.add(), await bases.add()
        for key, data in _DATA.items():
            await store.save_record("r/1", first, key, data)
        await store.save_record("r/1", second, "k", b"second")
        await store.save_record("r/1", second, "k", b"second, replaced")
    async with _records(factory, name) as store:
        await _expect(store, "r/1", first, _DATA, "after reopening")
        await _expect(store, "r/1", second, {"k": b"second, replaced"}, "a replaced record")
        await store.delete_records("r/1", first)
        await store.save_record("r/1", second, "more", b"more")
    async with _records(factory, name) as store:
        await _expect(store, "r/1", first, {}, "delete_records undone by reopening")
        want = {"k": b"second, replaced", "more": b"more"}
        await _expect(store, "r/1", second, want, "after reopening twice")
        await store.delete([second])
    async with _records(factory, name) as store:
        await _expect(store, "r/1", second, {}, "records of a deleted checkpoint, reopened")


async def check_records_shared_location(factory: Factory) -> None:
    """Two stores on one location (two processes) see each other's records and deletes."""
    name = _name("records_shared_location")
    async with _records(factory, name) as a, _records(factory, name) as b:
        base = await _Bases(a, "shared").add()
        want: dict[str, bytes] = {}
        for i in range(6):
            writer, reader = (a, b) if i % 2 else (b, a)
            await writer.save_record("shared", base, f"k{i}", b"x" * i)
            want[f"k{i}"] = b"x" * i
            await _expect(reader, "shared", base, want, f"record {i} read through the other store")
        await a.delete_records("shared", base)
        await _expect(b, "shared", base, {}, "records deleted by the other store")
        await b.save_record("shared", base, "after", b"after")
        await a.save_record("shared", base, "more", b"more")
        want = {"after": b"after", "more": b"more"}
        for store in (a, b):
            await _expect(store, "shared", base, want, "records saved after the other's delete")


_Check = Callable[[Factory], Awaitable[None]]

RECORD_CHECKS: tuple[_Check, ...] = (
    check_records_round_trip, check_records_isolation, check_records_hidden,
    check_records_deleted_with_checkpoints, check_records_concurrent_writers,
    check_records_closed_store,
)  # fmt: skip
"""Checks every `RecordStore` must pass."""

RECORD_REOPEN_CHECKS: tuple[_Check, ...] = (check_records_reopen, check_records_shared_location)
"""Checks for durable `RecordStore`s, whose factory reopens a location by name."""
