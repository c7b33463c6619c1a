"""MemoryStore on every backend (memory, SQLite, PostgreSQL), and memory tools for agents."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.stores.pg_support import RUN, drop_schemas, require_dsn

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    FunctionCall,
    FunctionResult,
    MemoryStore,
    MemoryStoreError,
    ScriptedChatClient,
    memory_tools,
)

Factory = Callable[..., MemoryStore]


class Clock:
    """A manual clock: one second later on every read."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    dsn = require_dsn()
    yield dsn
    drop_schemas(dsn)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """Makes stores that share one place (a file, a schema) so a second store sees the first's."""
    return _factory(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def durable_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """`factory` for the backends whose memories outlive the store object."""
    return _factory(request, tmp_path)


def _factory(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    if request.param == "memory":
        made: list[MemoryStore] = []

        def shared(**kw: object) -> MemoryStore:
            if not made:
                made.append(MemoryStore(**kw))  # type: ignore[arg-type]
            return made[0]

        return shared
    if request.param == "sqlite":
        path = str(tmp_path / "memory.db")
        return lambda **kw: MemoryStore.sqlite(path, **kw)
    dsn = request.getfixturevalue("pg_dsn")
    schema = f"{RUN}_mem_{uuid.uuid4().hex[:8]}"
    return lambda **kw: MemoryStore.postgres(dsn, schema=schema, **kw)


def test_put_get_delete_and_timestamps(factory: Factory) -> None:
    async def main() -> None:
        async with factory(clock=Clock()) as store:
            assert await store.get(("users", "alice"), "prefs") is None
            await store.put(("users", "alice"), "prefs", {"lang": "nl", "tags": [1, 2.5, None]})
            await store.put(("users", "alice"), "prefs", {"lang": "en", "tags": [True]})
            item = await store.get(("users", "alice"), "prefs")
            assert item is not None
            assert (item.namespace, item.key) == (("users", "alice"), "prefs")
            assert item.value == {"lang": "en", "tags": [True]}
            assert item.updated_at - item.created_at == timedelta(seconds=1), "put keeps created_at"
            assert item.created_at.tzinfo is not None
            await store.put(("users", "alice"), "plain", "just text")
            assert (await store.get(("users", "alice"), "plain")).value == "just text"  # type: ignore[union-attr]
            await store.delete(("users", "alice"), "prefs")
            await store.delete(("users", "alice"), "never-there")
            assert await store.get(("users", "alice"), "prefs") is None

    asyncio.run(main())


def test_search_and_list_namespaces(factory: Factory) -> None:
    async def main() -> None:
        async with factory(clock=Clock()) as store:
            await store.put(("users", "alice"), "a1", {"kind": "pref", "text": "Likes green tea"})
            await store.put(
                ("users", "alice", "work"), "a2", {"kind": "fact", "text": "Works at ACME"}
            )
            await store.put(("users", "alicia"), "b1", {"kind": "pref", "text": "Likes coffee"})
            await store.put(("teams", "x"), "t1", ["not", "a", "dict"])

            keys = [i.key for i in await store.search(("users", "alice"))]
            assert keys == ["a2", "a1"], "at or below the prefix, newest first; not 'alicia'"
            assert [i.key for i in await store.search()] == ["t1", "b1", "a2", "a1"]
            assert [i.key for i in await store.search(("users",), filter={"kind": "pref"})] == [
                "b1",
                "a1",
            ]
            assert [i.key for i in await store.search(("users",), query="LIKES tea")] == ["a1"]
            assert [i.key for i in await store.search(limit=2, offset=1)] == ["b1", "a2"]

            assert await store.list_namespaces() == [
                ("teams", "x"),
                ("users", "alice"),
                ("users", "alice", "work"),
                ("users", "alicia"),
            ]
            assert await store.list_namespaces(prefix=("users",), max_depth=2) == [
                ("users", "alice"),
                ("users", "alicia"),
            ]
            assert await store.list_namespaces(suffix=("work",)) == [("users", "alice", "work")]

    asyncio.run(main())


def test_memories_outlive_the_store_object(durable_factory: Factory) -> None:
    async def main() -> None:
        async with durable_factory() as first:
            await first.put(("n",), "k", {"v": 1})
        async with durable_factory() as second:
            assert second is not first
            item = await second.get(("n",), "k")
            assert item is not None
            assert item.value == {"v": 1}

    asyncio.run(main())


def test_bad_input_and_closed_store() -> None:
    async def main() -> None:
        store = MemoryStore()
        for namespace in ((), ("",), ("a\x1fb",), "users"):
            with pytest.raises(MemoryStoreError, match="namespace"):
                await store.put(namespace, "k", 1)  # type: ignore[arg-type]
        with pytest.raises(MemoryStoreError, match="key"):
            await store.put(("n",), "", 1)
        with pytest.raises(MemoryStoreError, match="JSON-like"):
            await store.put(("n",), "k", {"when": datetime.now(UTC)})
        await store.aclose()
        with pytest.raises(MemoryStoreError, match="closed"):
            await store.get(("n",), "k")

    asyncio.run(main())


def test_sqlite_and_postgres_connect_lazily(tmp_path: Path) -> None:
    path = tmp_path / "lazy.db"
    MemoryStore.sqlite(str(path))
    MemoryStore.postgres("host=nowhere.invalid dbname=x")  # constructed outside any event loop
    assert not path.exists()

    async def main() -> None:
        store = MemoryStore.postgres("host=127.0.0.1 port=1 dbname=x connect_timeout=1")
        with pytest.raises(MemoryStoreError, match="PostgreSQL"):
            await store.get(("n",), "k")

    asyncio.run(main())


def test_agent_remembers_in_one_session_and_recalls_in_another(tmp_path: Path) -> None:
    def script(messages: object, tools: object) -> object:
        last = messages[-1]  # type: ignore[index]
        if any(isinstance(c, FunctionResult) for c in last.contents):
            result = next(c for c in last.contents if isinstance(c, FunctionResult))
            return f"tool said {result.result}"
        if last.text.startswith("remember "):
            return FunctionCall("", "remember", {"text": last.text.removeprefix("remember ")})
        return FunctionCall("", "recall", {"query": last.text.removeprefix("recall ")})

    store = MemoryStore.sqlite(str(tmp_path / "agent.db"))
    agent = Agent(
        "assistant", ScriptedChatClient(script), tools=memory_tools(store, ("notes", "alice"))
    )
    wf = sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build()

    async def main() -> list[str]:
        first = await wf.session("monday").run("remember Alice takes her tea with lemon")
        second = await wf.session("friday").run("recall tea")
        third = await wf.session("friday").run("recall coffee")
        await store.aclose()
        return [r.outputs[0].text for r in (first, second, third)]

    stored, recalled, nothing = asyncio.run(main())
    assert stored.startswith("tool said ")
    assert (
        recalled
        == f"tool said [{{'key': '{stored.removeprefix('tool said ')}', 'text': 'Alice takes her tea with lemon'}}]"
    )
    assert nothing == "tool said []"
    assert [t.name for t in memory_tools(store, ("x",))] == ["remember", "recall", "forget"]


def test_handlers_reach_the_sessions_memory_as_ctx_memory() -> None:
    @sg.executor(id="counter")
    async def count(name: str, ctx: sg.Context[None, str]) -> None:
        seen = await ctx.memory.get(("visits",), name)
        visits = 1 if seen is None else seen.value + 1
        await ctx.memory.put(("visits",), name, visits)
        await ctx.yield_output(f"{name} {visits}")

    wf = sg.WorkflowBuilder[str](start=count).build()

    async def main() -> None:
        store = MemoryStore()
        first = await wf.session("a", memory=store).run("ada")
        second = await wf.session("b", memory=store).run("ada")
        assert first.outputs + second.outputs == ["ada 1", "ada 2"]
        item = await store.get(("visits",), "ada")
        assert item is not None
        assert item.value == 2
        with pytest.raises(sg.ExecutorFailedError, match="no memory store"):
            await wf.session("c").run("ada")

    asyncio.run(main())
