"""Every shipped store runs the public conformance suite, one test per check."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from pathlib import Path

import pytest

from stepgraph import CheckpointNotFoundError, testing
from stepgraph._store import chunk_store
from stepgraph.stores import (
    Checkpoint,
    CheckpointInfo,
    CheckpointStore,
    MemoryCheckpointStore,
    RecordStore,
    SessionLister,
    record_store,
    session_lister,
)
from stepgraph.stores.file import FileCheckpointStore
from stepgraph.stores.sqlite import SqliteCheckpointStore

Check = Callable[[testing.StoreFactory], Awaitable[None]]


def make_factory(kind: str, tmp_path: Path) -> testing.StoreFactory:
    async def factory(name: str) -> CheckpointStore:
        if kind == "memory":
            return MemoryCheckpointStore()
        if kind == "file":
            return FileCheckpointStore(tmp_path / name)
        return SqliteCheckpointStore(tmp_path / f"{name}.db")

    return factory


def by_name(check: object) -> str:
    return getattr(check, "__name__", str(check))


@pytest.mark.parametrize("check", testing.STORE_CHECKS, ids=by_name)
@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_store_check(kind: str, check: Check, tmp_path: Path) -> None:
    asyncio.run(check(make_factory(kind, tmp_path)))


@pytest.mark.parametrize("check", testing.REOPEN_CHECKS, ids=by_name)
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_reopen_check(kind: str, check: Check, tmp_path: Path) -> None:
    asyncio.run(check(make_factory(kind, tmp_path)))


@pytest.mark.parametrize("check", testing.RECORD_CHECKS, ids=by_name)
@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_record_check(kind: str, check: Check, tmp_path: Path) -> None:
    asyncio.run(check(make_factory(kind, tmp_path)))


@pytest.mark.parametrize("check", testing.RECORD_REOPEN_CHECKS, ids=by_name)
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_record_reopen_check(kind: str, check: Check, tmp_path: Path) -> None:
    asyncio.run(check(make_factory(kind, tmp_path)))


async def require_chunks(factory: testing.StoreFactory) -> None:
    """Every built-in store keeps chunks: fail loudly if one stops being a ChunkStore."""
    assert await testing.keeps_chunks(factory), "a built-in store must be a ChunkStore"


@pytest.mark.parametrize("check", testing.CHUNK_CHECKS, ids=by_name)
@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_chunk_check(kind: str, check: Check, tmp_path: Path) -> None:
    factory = make_factory(kind, tmp_path)
    asyncio.run(require_chunks(factory))
    asyncio.run(check(factory))


@pytest.mark.parametrize("check", testing.CHUNK_REOPEN_CHECKS, ids=by_name)
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_chunk_reopen_check(kind: str, check: Check, tmp_path: Path) -> None:
    factory = make_factory(kind, tmp_path)
    asyncio.run(require_chunks(factory))
    asyncio.run(check(factory))


@pytest.mark.parametrize("check", testing.SESSION_CHECKS, ids=by_name)
@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_session_check(kind: str, check: Check, tmp_path: Path) -> None:
    factory = make_factory(kind, tmp_path)
    assert asyncio.run(testing.lists_sessions(factory)), "a built-in store lists its sessions"
    asyncio.run(check(factory))


@pytest.mark.parametrize("check", testing.SESSION_REOPEN_CHECKS, ids=by_name)
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_session_reopen_check(kind: str, check: Check, tmp_path: Path) -> None:
    asyncio.run(check(make_factory(kind, tmp_path)))


def test_the_memory_store_keeps_chunks_and_the_suite_runs_the_chunk_checks(tmp_path: Path) -> None:
    ran: list[str] = []
    factory = make_factory("memory", tmp_path)

    async def counting(name: str) -> CheckpointStore:
        ran.append(name.rsplit("_", 1)[0])
        return await factory(name)

    assert chunk_store(MemoryCheckpointStore()) is not None
    asyncio.run(testing.check_checkpoint_store(counting, reopen=False))
    for check in testing.CHUNK_CHECKS:
        assert check.__name__.removeprefix("check_") in ran, check.__name__
    assert not any(c.__name__.removeprefix("check_") in ran for c in testing.CHUNK_REOPEN_CHECKS)


@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_every_shipped_store_keeps_records(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        store = await make_factory(kind, tmp_path)("probe_00000000")
        try:
            assert record_store(store) is store
            assert isinstance(store, RecordStore)
        finally:
            await store.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["memory", "file", "sqlite"])
def test_every_shipped_store_lists_sessions(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        store = await make_factory(kind, tmp_path)("probe_00000000")
        try:
            assert session_lister(store) is store
            assert isinstance(store, SessionLister)
        finally:
            await store.aclose()

    asyncio.run(main())


def test_a_store_without_list_sessions_skips_the_session_checks() -> None:
    ran: list[str] = []

    async def factory(name: str) -> CheckpointStore:
        ran.append(name)
        return CheckpointsOnly()  # type: ignore[return-value]

    assert session_lister(CheckpointsOnly()) is None
    asyncio.run(testing.check_checkpoint_store(factory, reopen=False))
    assert not any(name.startswith("sessions_") for name in ran), ran
    with pytest.raises(AssertionError, match="is not a SessionLister"):
        asyncio.run(testing.check_sessions_paging(factory))


def test_whole_suite_on_the_memory_store(tmp_path: Path) -> None:
    asyncio.run(testing.check_checkpoint_store(make_factory("memory", tmp_path), reopen=False))


def test_whole_suite_on_the_file_store_runs_the_record_checks(tmp_path: Path) -> None:
    ran: list[str] = []
    factory = make_factory("file", tmp_path)

    async def counting(name: str) -> CheckpointStore:
        ran.append(name.rsplit("_", 1)[0])
        return await factory(name)

    asyncio.run(testing.check_checkpoint_store(counting))
    checks = testing.RECORD_CHECKS + testing.RECORD_REOPEN_CHECKS
    for check in checks + testing.SESSION_CHECKS + testing.SESSION_REOPEN_CHECKS:
        assert check.__name__.removeprefix("check_") in ran, check.__name__


class CheckpointsOnly:
    """A valid store that keeps no records: the memory store's checkpoint methods only."""

    def __init__(self) -> None:
        self._inner = MemoryCheckpointStore()
        self.save, self.load, self.list = self._inner.save, self._inner.load, self._inner.list
        self.latest, self.delete = self._inner.latest, self._inner.delete
        self.delete_session, self.aclose = self._inner.delete_session, self._inner.aclose

    async def __aenter__(self) -> CheckpointsOnly:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def test_a_store_without_records_passes_the_suite_without_the_record_checks() -> None:
    ran: list[str] = []

    async def factory(name: str) -> CheckpointStore:
        ran.append(name)
        return CheckpointsOnly()  # type: ignore[return-value]

    assert record_store(CheckpointsOnly()) is None
    asyncio.run(testing.check_checkpoint_store(factory, reopen=False))
    assert not any(name.startswith("records_") for name in ran), ran
    with pytest.raises(AssertionError, match="is not a RecordStore"):
        asyncio.run(testing.check_records_round_trip(factory))


class NoGarbageCollection(MemoryCheckpointStore):
    """A broken record store: `delete` leaves the records of deleted checkpoints behind."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[tuple[str, str], dict[str, bytes]] = {}

    async def save_record(self, session_id: str, base_id: str, key: str, data: bytes) -> None:
        self.kept.setdefault((session_id, base_id), {})[key] = data

    async def load_records(self, session_id: str, base_id: str) -> dict[str, bytes]:
        return dict(self.kept.get((session_id, base_id), {}))

    async def delete_records(self, session_id: str, base_id: str | None = None) -> None:
        for sid, base in list(self.kept):
            if sid == session_id and base_id in (None, base):
                del self.kept[sid, base]


class ReplacesNothing(MemoryCheckpointStore):
    """A broken record store: saving a key again keeps the first data."""

    async def save_record(self, session_id: str, base_id: str, key: str, data: bytes) -> None:
        if key not in await self.load_records(session_id, base_id):
            await super().save_record(session_id, base_id, key, data)


class KeepsEveryChunk(MemoryCheckpointStore):
    """A broken chunk store: `delete` frees no chunk."""

    def _free_chunks(self, session_id: str) -> None:
        pass


class LoadsWithoutChunks(MemoryCheckpointStore):
    """A broken chunk store: loaded checkpoints carry no chunks."""

    async def load(self, checkpoint_id: str) -> Checkpoint:
        return replace(await super().load(checkpoint_id), chunks={})


class ReplacesHeldChunks(MemoryCheckpointStore):
    """A broken chunk store: a re-save replaces chunks already held."""

    async def save(self, checkpoint: Checkpoint) -> None:
        await super().save(checkpoint)
        self._chunks.setdefault(checkpoint.info.session_id, {}).update(checkpoint.chunks)


class SharesChunksAcrossSessions(MemoryCheckpointStore):
    """A broken chunk store: `load_chunks` answers from every session."""

    async def load_chunks(self, session_id: str, ids: Collection[str]) -> dict[str, bytes]:
        return {i: d for held in self._chunks.values() for i, d in held.items() if i in ids}


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (NoGarbageCollection, r"^check_records_deleted_with_checkpoints: delete\(\[.*must delete"),
        (ReplacesNothing, r"^check_records_round_trip: saving a key again replaces it: "),
        (KeepsEveryChunk, r"^check_chunks_freed_by_delete: delete left \d+ chunks"),
        (LoadsWithoutChunks, r"^check_chunks_round_trip: right after saving it: .* lacks chunks"),
        (ReplacesHeldChunks, r"^check_chunks_kept_once: re-saving changed"),
        (SharesChunksAcrossSessions, r"^check_chunks_load_chunks: load_chunks of another session"),
    ],
)
def test_suite_names_the_broken_rule(broken: type[MemoryCheckpointStore], message: str) -> None:
    async def factory(name: str) -> CheckpointStore:
        return broken()

    with pytest.raises(AssertionError, match=message):
        asyncio.run(testing.check_checkpoint_store(factory, reopen=False))


class SessionsOldestFirst(MemoryCheckpointStore):
    """A broken session lister: oldest first."""

    async def list_sessions(
        self, *, limit: int | None = None, before: str | None = None
    ) -> list[CheckpointInfo]:
        return list(reversed(await super().list_sessions(before=before)))[:limit]


class EmptyPageAfterAnUnknownSession(MemoryCheckpointStore):
    """A broken session lister: `before` an unknown session gives an empty page."""

    async def list_sessions(
        self, *, limit: int | None = None, before: str | None = None
    ) -> list[CheckpointInfo]:
        try:
            return await super().list_sessions(limit=limit, before=before)
        except CheckpointNotFoundError:
            return []


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (SessionsOldestFirst, r"^check_sessions_newest_first: after saving to eight sessions: "),
        (
            EmptyPageAfterAnUnknownSession,
            r"^check_sessions_paging: an unknown session: .* not CheckpointNotFoundError",
        ),
    ],
)
def test_suite_names_the_broken_session_rule(
    broken: type[MemoryCheckpointStore], message: str
) -> None:
    async def factory(name: str) -> CheckpointStore:
        return broken()

    with pytest.raises(AssertionError, match=message):
        asyncio.run(testing.check_checkpoint_store(factory, reopen=False))


class ForgetfulStore(MemoryCheckpointStore):
    """A broken store: `list` returns oldest first."""

    async def list(self, session_id: str, limit: int | None = None) -> list[CheckpointInfo]:
        return list(reversed(await super().list(session_id)))[:limit]


def test_suite_names_the_failing_check() -> None:
    async def factory(name: str) -> CheckpointStore:
        return ForgetfulStore()

    with pytest.raises(AssertionError, match=r"^check_round_trip: list\(\) gave"):
        asyncio.run(testing.check_checkpoint_store(factory, reopen=False))


def test_suite_reports_store_errors_as_assertions() -> None:
    class Broken(MemoryCheckpointStore):
        async def load(self, checkpoint_id: str) -> Checkpoint:
            raise RuntimeError("disk on fire")

    async def factory(name: str) -> CheckpointStore:
        return Broken()

    with pytest.raises(AssertionError, match="check_round_trip: RuntimeError: disk on fire"):
        asyncio.run(testing.check_checkpoint_store(factory, reopen=False))


def test_manual_clock() -> None:
    clock = testing.ManualClock()
    assert clock().isoformat() == "2026-01-01T00:00:00+00:00"
    clock.advance(90.5)
    assert clock().isoformat() == "2026-01-01T00:01:30.500000+00:00"
    assert clock() == clock()


def test_sequential_ids() -> None:
    ids = testing.SequentialIds()
    assert [ids(), ids()] == ["id-000001", "id-000002"]
    assert testing.SequentialIds("cp")() == "cp-000001"
