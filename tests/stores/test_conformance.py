"""Every shipped store runs the public conformance suite, one test per check."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from stepgraph import testing
from stepgraph.stores import Checkpoint, CheckpointInfo, CheckpointStore, MemoryCheckpointStore
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


def test_whole_suite_on_the_memory_store(tmp_path: Path) -> None:
    asyncio.run(testing.check_checkpoint_store(make_factory("memory", tmp_path), reopen=False))


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
