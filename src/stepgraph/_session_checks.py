"""The `SessionLister` checks of the store conformance suite (`stepgraph.testing` exports them).

Each check opens stores through the suite's factory (a location name in, an
open store out; a used name reopens the same storage) and raises
`AssertionError` naming the rule of `SessionLister` a store broke. Every
checkpoint a check saves is one second newer than the one before, across
sessions, so the order is the same whether a store orders sessions by save
order or, lacking one, by `created_at` (`FileCheckpointStore`).
"""

from __future__ import annotations

import types
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from . import _parts, serde
from ._checkpoint import Checkpoint, CheckpointInfo
from ._errors import CheckpointError, CheckpointNotFoundError
from ._store import CheckpointStore, SessionLister, session_lister

__all__ = [
    "SESSION_CHECKS", "SESSION_REOPEN_CHECKS", "check_sessions_deleted",
    "check_sessions_newest_first", "check_sessions_paging", "check_sessions_reopen",
    "lists_sessions",
]  # fmt: skip

Factory = Callable[[str], Awaitable[CheckpointStore]]

_START = datetime(2026, 1, 1, tzinfo=UTC)
_GRAPH = '{"executors":[{"id":"agent","type":"t.A"}],"edges":[],"start":"agent"}'
# Ids a careless store confuses: case, separators, percent signs, a file name, and one
# too long for a file name (the file store names its log by a hash of it).
_ODD = ["a", "A", "a/b", "a%2Fb", "ü", "a.log", "../x", "long-" + "é" * 150]


def _name(check: str) -> str:
    return f"{check}_{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def _lister(factory: Factory, name: str) -> AsyncGenerator[SessionLister]:
    store = await factory(name)
    try:
        lister = session_lister(store)
        assert lister is not None, (
            f"{type(store).__name__} is not a SessionLister: its class lacks list_sessions"
        )
        yield lister
    finally:
        await store.aclose()


async def lists_sessions(factory: Factory) -> bool:
    """True when the factory's stores are `SessionLister`s (the suite then runs the checks)."""
    store = await factory(_name("lists_sessions"))
    try:
        return session_lister(store) is not None
    finally:
        await store.aclose()


class _Saves:
    """Full checkpoints saved to sessions, each a child of its session's head and one
    second newer than every checkpoint saved before it (`at` is shared by reopened stores).
    """

    def __init__(self) -> None:
        self.heads: dict[str, CheckpointInfo] = {}  # session -> head, oldest save first
        self.saved: dict[str, list[Checkpoint]] = {}
        self.count = 0

    async def save(self, store: CheckpointStore, session_id: str) -> Checkpoint:
        self.count += 1
        parent = self.heads.get(session_id)
        cid = f"{uuid.uuid4().hex[:8]}-{self.count}"
        at = _START + timedelta(seconds=self.count)
        info = CheckpointInfo(cid, parent.id if parent else None, session_id, self.count, at)
        parts = types.MappingProxyType({_parts.state("n"): serde.encode(self.count)})
        cp = Checkpoint(info, "sig-1", _GRAPH, "idle", parts)
        await store.save(cp)
        self.heads.pop(session_id, None)
        self.heads[session_id] = info
        self.saved.setdefault(session_id, []).append(cp)
        return cp

    def forget(self, session_id: str) -> None:
        self.heads.pop(session_id, None)
        self.saved.pop(session_id, None)

    def newest_first(self) -> list[CheckpointInfo]:
        return list(reversed(self.heads.values()))


def _ids(infos: list[CheckpointInfo]) -> list[tuple[str, str]]:
    return [(info.session_id, info.id) for info in infos]


async def _lists(store: SessionLister, saves: _Saves, what: str) -> None:
    got, want = await store.list_sessions(), saves.newest_first()
    assert _ids(got) == _ids(want), (
        f"{what}: list_sessions() gave (session, head) {_ids(got)}, expected {_ids(want)}"
    )
    assert got == want, f"{what}: list_sessions() infos {got} differ from the saved {want}"


async def _unknown_before(store: SessionLister, session_id: str, what: str) -> None:
    try:
        got = await store.list_sessions(before=session_id)
    except CheckpointNotFoundError:
        return
    raise AssertionError(
        f"{what}: list_sessions(before={session_id!r}) gave {_ids(got)}, "
        "not CheckpointNotFoundError"
    )


async def check_sessions_newest_first(factory: Factory) -> None:
    """One entry per session, its head's info, newest first; replacing does not reorder."""
    async with _lister(factory, _name("sessions_newest_first")) as store:
        assert await store.list_sessions() == [], "list_sessions() of an empty store"
        saves = _Saves()
        for n in range(3):
            for session_id in _ODD[n:]:
                await saves.save(store, session_id)
        await _lists(store, saves, "after saving to eight sessions")
        for session_id in ("a", "ü", "a"):  # to the front, one after the other
            await saves.save(store, session_id)
            await _lists(store, saves, f"after saving again to {session_id!r}")
        first = saves.saved["A"][0]
        await store.save(Checkpoint(first.info, "sig-2", _GRAPH, "failed", first.parts))
        await _lists(store, saves, "after replacing an old checkpoint of 'A'")
        heads = {info.session_id: info for info in await store.list_sessions()}
        for session_id, info in heads.items():
            listed = await store.list(session_id, 1)
            assert listed == [info], f"{session_id!r}: list_sessions gave {info}, list {listed}"


async def check_sessions_paging(factory: Factory) -> None:
    """`limit` caps the count; `before` pages on; an unknown `before` raises."""
    async with _lister(factory, _name("sessions_paging")) as store:
        saves = _Saves()
        for n in range(9):
            await saves.save(store, f"s{n % 7}")
        want = _ids(saves.newest_first())
        for limit in (0, -1, 1, 3, 7, 100):
            got = _ids(await store.list_sessions(limit=limit))
            assert got == want[: max(limit, 0)], f"list_sessions(limit={limit}) gave {got}"
        for size in (1, 2, 3, 7):
            pages: list[tuple[str, str]] = []
            before: str | None = None
            for _ in range(len(want) + 1):
                page = _ids(await store.list_sessions(limit=size, before=before))
                assert len(page) <= size, f"a page of {size} held {len(page)}: {page}"
                if not page:
                    break
                pages += page
                before = page[-1][0]
            assert pages == want, f"pages of {size} gave {pages}, expected {want}"
        for at, (session_id, _) in enumerate(want):
            got = _ids(await store.list_sessions(before=session_id))
            assert got == want[at + 1 :], f"list_sessions(before={session_id!r}) gave {got}"
        await _unknown_before(store, "no-such-session", "an unknown session")


async def check_sessions_deleted(factory: Factory) -> None:
    """Sessions with no checkpoints left are not listed; deleting a head moves its session."""
    async with _lister(factory, _name("sessions_deleted")) as store:
        saves = _Saves()
        for session_id in ("a", "b", "c", "d", "a", "b", "c", "d"):
            await saves.save(store, session_id)
        await store.delete_session("b")
        saves.forget("b")
        await _lists(store, saves, "after delete_session('b')")
        await _unknown_before(store, "b", "a deleted session")
        await store.delete([cp.id for cp in saves.saved["c"]])
        saves.forget("c")
        await _lists(store, saves, "after deleting every checkpoint of 'c'")
        head = saves.saved["d"].pop()
        await store.delete([head.id])  # 'd' now stands on its first checkpoint, older than 'a'
        saves.heads.pop("d")
        saves.heads = {"d": saves.saved["d"][0].info, **saves.heads}
        await _lists(store, saves, "after deleting the head of 'd'")
        again = await saves.save(store, "b")
        await _lists(store, saves, "after saving to 'b' again")
        got = _ids(await store.list_sessions(limit=1))
        assert got == [("b", again.id)], f"a deleted session saved to again lists as {got}"
        await store.aclose()
        try:
            await store.list_sessions()
        except CheckpointError:
            return
        raise AssertionError("list_sessions() on a closed store did not raise CheckpointError")


async def check_sessions_reopen(factory: Factory) -> None:
    """A store lists the sessions another store on its location saved, and after reopening."""
    name = _name("sessions_reopen")
    saves = _Saves()
    async with _lister(factory, name) as server:
        for session_id in ("a", "b", _ODD[-1], "a"):
            await saves.save(server, session_id)
        await _lists(server, saves, "before a second store opened the location")
        async with _lister(factory, name) as script:  # another process, say
            await _lists(script, saves, "a second store on the location")
            await saves.save(script, "from-script")
            await saves.save(script, "b")
            await _lists(server, saves, "after a second store saved to the location")
            await script.delete_session("a")
            saves.forget("a")
            await _lists(server, saves, "after a second store deleted a session")
    for round_ in range(2):
        async with _lister(factory, name) as store:
            await _lists(store, saves, f"after reopening ({round_ + 1})")
            await saves.save(store, "b" if round_ else "new")


_Check = Callable[[Factory], Awaitable[None]]

SESSION_CHECKS: tuple[_Check, ...] = (
    check_sessions_newest_first, check_sessions_paging, check_sessions_deleted,
)  # fmt: skip
"""Checks every `SessionLister` must pass."""

SESSION_REOPEN_CHECKS: tuple[_Check, ...] = (check_sessions_reopen,)
"""Checks for durable `SessionLister`s, whose factory reopens a location by name."""
