"""Session leases and fencing tokens: rules, waiting, takeover, processes.

The rules and waiting run for every lease store over a shared place (`place`:
a directory for `FileCheckpointStore`, a schema for PostgreSQL); pools, wake-ups,
row locks and processes are PostgreSQL's own. PostgreSQL runs against the
server of this machine (see `pg_support`): skipped when it is unreachable,
failed instead under CI=true. (The file store's processes: `test_file_leases.py`.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.stores.pg_support import RUN, drop_schemas, next_checkpoint, require_dsn

from stepgraph import ConcurrentRunError
from stepgraph._lease import MAX_PAUSE
from stepgraph.stores import Lease, LeaseLostError, LeaseStore, _record
from stepgraph.stores.file import FileCheckpointStore

SUPPORT = Path(__file__).with_name("pg_support.py")
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    dsn = require_dsn()
    yield dsn
    drop_schemas(dsn)


def open_store(dsn: str, schema: str = "", **kwargs: Any) -> Any:
    from stepgraph.stores.postgres import PostgresCheckpointStore

    return PostgresCheckpointStore(dsn, schema=schema or new_schema(), **kwargs)


def new_schema() -> str:
    return f"{RUN}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Place:
    """Where stores of one kind share their sessions; `open()` makes another store object."""

    kind: str
    open: Callable[..., Any]


@pytest.fixture(params=["file", "postgres"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    if request.param == "file":
        return Place("file", lambda **kw: FileCheckpointStore(tmp_path / "store", **kw))
    dsn, schema = request.getfixturevalue("dsn"), new_schema()
    return Place("postgres", lambda **kw: open_store(dsn, schema, **kw))


def test_lease_rules(place: Place) -> None:
    async def main() -> None:
        async with place.open() as store:
            assert isinstance(store, LeaseStore)
            a = await store.acquire("s", "a", 30)
            assert (a.session_id, a.owner, a.token) == ("s", "a", 1)
            assert a.expires_at > time.time() + 25  # the server's clock, in epoch seconds
            started = time.monotonic()
            with pytest.raises(ConcurrentRunError, match=r"'a' holds its lease \(token 1"):
                await store.acquire("s", "b", 30)
            assert time.monotonic() - started < 0.5  # at once, no waiting
            assert (await store.acquire("other", "b", 30)).token == 1  # sessions are separate

            renewed = await store.renew(a, 60)
            assert renewed.token == 1
            assert renewed.expires_at > a.expires_at
            await store.save(root := next_checkpoint(None, "s", "a"), lease=renewed)
            await store.save(next_checkpoint(root, "s", "a"), lease=a)  # same token: still a's

            await store.release(a)
            b = await store.acquire("s", "b", 30)
            assert b.token == 2  # tokens survive release
            with pytest.raises(LeaseLostError):
                await store.renew(a, 30)
            await store.release(a)  # a no-op: b keeps the lease
            with pytest.raises(ConcurrentRunError):
                await store.acquire("s", "c", 30)
            with pytest.raises(LeaseLostError, match="token 1 of 'a' is no longer"):
                await store.save(late := next_checkpoint(root, "s", "a"), lease=a)
            with pytest.raises(LeaseLostError, match="lease given is for session 'other'"):
                await store.save(next_checkpoint(root, "s", "b"), lease=Lease("other", "b", 1, 0))
            with pytest.raises(LeaseLostError):  # no lease row at all for that session
                await store.save(
                    next_checkpoint(None, "nobody", "b"), lease=Lease("nobody", "b", 1, 0)
                )
            assert late.id not in {i.id for i in await store.list("s")}

            again = await store.acquire("s", "b", 30)  # the same owner (a restart) takes over
            assert again.token == 3
            with pytest.raises(LeaseLostError):
                await store.save(next_checkpoint(root, "s", "b"), lease=b)
            await store.delete_session("s")
            await store.release(again)
            assert (await store.acquire("s", "d", 30)).token == 4  # tokens never go back
            with pytest.raises(ValueError, match="ttl"):
                await store.acquire("s", "d", 0)

    asyncio.run(main())


def test_an_expired_lease_is_taken_over_and_its_holder_fenced(place: Place) -> None:
    async def main() -> None:
        async with place.open() as paused, place.open() as other:
            lease = await paused.acquire("s", "paused", 0.3)
            await paused.save(root := next_checkpoint(None, "s", "paused"), lease=lease)
            with pytest.raises(ConcurrentRunError):
                await other.acquire("s", "other", 30)
            await asyncio.sleep(0.4)  # the holder is paused past its expiry
            taken = await other.acquire("s", "other", 30)
            assert taken.token == lease.token + 1
            await other.save(theirs := next_checkpoint(root, "s", "other"), lease=taken)
            with pytest.raises(LeaseLostError):  # the paused holder wakes up and writes
                await paused.save(next_checkpoint(root, "s", "paused"), lease=lease)
            with pytest.raises(LeaseLostError):
                await paused.renew(lease, 30)
            assert [i.id for i in await paused.list("s")] == [theirs.id, root.id]

    asyncio.run(main())


def test_an_expired_lease_nobody_took_can_still_write_and_renew(place: Place) -> None:
    async def main() -> None:
        async with place.open() as store:
            lease = await store.acquire("s", "slow", 0.1)
            await asyncio.sleep(0.2)
            await store.save(next_checkpoint(None, "s", "slow"), lease=lease)  # still current
            assert (await store.renew(lease, 30)).token == lease.token

    asyncio.run(main())


def test_a_waiting_acquire_wakes_on_release(place: Place) -> None:
    # PostgreSQL wakes waiters (NOTIFY); the file store looks again within MAX_PAUSE.
    soon = 0.5 if place.kind == "postgres" else MAX_PAUSE + 0.5

    async def main() -> None:
        async with place.open() as a, place.open() as b:
            held = await a.acquire("s", "a", 30)
            released_at = 0.0

            async def release_later() -> None:
                nonlocal released_at
                await asyncio.sleep(0.3)
                released_at = time.monotonic()
                await a.release(held)

            async with asyncio.TaskGroup() as tg:
                tg.create_task(release_later())
                got = await b.acquire("s", "b", 30, wait=10)
                woke = time.monotonic() - released_at
            assert got.token == 2
            assert woke < soon, f"woke {woke:.3f}s after the release"

    asyncio.run(main())


def test_a_waiting_acquire_gives_up_at_its_deadline(place: Place) -> None:
    async def main() -> None:
        async with place.open() as a, place.open() as b:
            await a.acquire("s", "a", 30)
            started = time.monotonic()
            with pytest.raises(ConcurrentRunError):
                await b.acquire("s", "b", 30, wait=0.3)
            assert 0.3 <= time.monotonic() - started < 1.5

    asyncio.run(main())


def test_a_waiting_acquire_takes_over_at_expiry(place: Place) -> None:
    async def main() -> None:
        async with place.open() as crashed, place.open() as b:
            await crashed.acquire("s", "crashed", 0.3)  # never renewed nor released
            started = time.monotonic()
            got = await b.acquire("s", "b", 30, wait=5)
            assert got.token == 2
            assert 0.2 < time.monotonic() - started < 1.0

    asyncio.run(main())


def test_the_wait_deadline_uses_the_injected_clock(place: Place) -> None:
    ticks = iter(range(0, 10_000, 100))

    async def main() -> None:
        clock = lambda: float(next(ticks))  # noqa: E731 - 100 s pass between two readings
        async with place.open() as a, place.open(clock=clock) as b:
            await a.acquire("s", "a", 30)
            started = time.monotonic()
            with pytest.raises(ConcurrentRunError):
                await b.acquire("s", "b", 30, wait=50)
            assert time.monotonic() - started < 0.5

    asyncio.run(main())


async def _all_waiting(store: Any, requests: int, what: str) -> None:
    """Until the pool has served `requests` connection requests (every waiter's first
    attempt) and no attempt holds a connection (bounded)."""
    for _ in range(1000):
        stats = store.pool_stats()
        if (
            stats.get("requests_num", 0) >= requests
            and stats["pool_available"] == stats["pool_size"]
        ):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what} never all waited: {store.pool_stats()}")


def test_more_waiters_than_the_pool_leave_the_holder_a_connection(dsn: str) -> None:
    """11 waiting acquires on a pool of 2 (issue 18, item 6): waiting holds no pooled
    connection, so the holder still saves and releases, and every waiter gets its turn."""

    async def main() -> None:
        async with open_store(dsn, max_size=2, pool_kwargs={"timeout": 5.0}) as store:
            holder = await store.acquire("s", "holder", 30)
            base = store.pool_stats()["requests_num"]

            async def waiter(n: int) -> int:
                lease = await store.acquire("s", f"w{n}", 30, wait=60)
                latest = await store.latest("s")
                await store.save(next_checkpoint(latest, "s", f"w{n}"), lease=lease)
                await store.release(lease)
                return lease.token

            async with asyncio.TaskGroup() as tg:
                waiters = [tg.create_task(waiter(n)) for n in range(11)]
                await _all_waiting(store, base + 11, "the waiters")
                assert not any(w.done() for w in waiters)
                await store.save(next_checkpoint(None, "s", "holder"), lease=holder)
                await store.release(holder)
            assert sorted(w.result() for w in waiters) == list(range(2, 13))
            chain = await store.list("s")
            assert len(chain) == 12
            for newer, older in itertools.pairwise(chain):
                assert newer.parent_id == older.id  # one line, a turn each

    asyncio.run(main())


def test_more_waiting_sessions_than_the_pool_all_run(dsn: str) -> None:
    """The same through sessions: 11 runs of one session id waiting with
    `LeasePolicy(wait=...)` in one process, on a pool of 2, all finish."""
    import stepgraph as sg

    @sg.executor(id="count")
    async def count(text: str, ctx: sg.Context[None, int]) -> None:
        n = int(ctx.state.get("n", 0)) + 1
        ctx.state.set("n", n)
        await ctx.yield_output(n)

    wf = sg.WorkflowBuilder[str](start=count).build(name="counted")

    async def main() -> None:
        async with open_store(dsn, max_size=2, pool_kwargs={"timeout": 5.0}) as store:
            policy = sg.LeasePolicy(wait=60)
            holder = await store.acquire("shared", "holder", 30)
            base = store.pool_stats()["requests_num"]
            sessions = [wf.session("shared", store=store, lease=policy) for _ in range(11)]
            async with asyncio.TaskGroup() as tg:
                runs = [tg.create_task(s.run("go")) for s in sessions]
                await _all_waiting(store, base + 11, "the sessions")
                await store.release(holder)
            outputs = sorted(r.result().outputs[0] for r in runs)
            assert outputs == list(range(1, 12))  # each run saw the one before it

    asyncio.run(main())


def test_a_waiter_outlives_its_notice_connection(dsn: str) -> None:
    """The store's LISTEN connection dropping (a server restart, a proxy) wakes the waiter,
    which listens again and still gets the lease on release."""
    import psycopg

    app = f"sg-wakeups-{uuid.uuid4().hex[:8]}"
    listener = (
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND query LIKE 'LISTEN%%'"
    )

    async def main() -> None:
        kwargs = {"kwargs": {"application_name": app}}
        async with (
            open_store(dsn, pool_kwargs=kwargs) as store,
            await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin,
        ):
            held = await store.acquire("s", "a", 30)
            async with asyncio.TaskGroup() as tg:
                waiter = tg.create_task(store.acquire("s", "b", 30, wait=20))
                for _ in range(500):
                    rows = await (await admin.execute(listener, (app,))).fetchall()
                    if rows:
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("no LISTEN connection")
                await admin.execute("SELECT pg_terminate_backend(%s)", (rows[0][0],))
                for _ in range(500):  # the waiter listens again on a new connection
                    again = await (await admin.execute(listener, (app,))).fetchall()
                    if again and again != rows:
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the waiter never listened again")
                assert not waiter.done()
                await store.release(held)
            assert waiter.result().token == 2

    asyncio.run(main())


def test_a_takeover_waits_for_an_in_flight_fenced_write_and_sees_it(dsn: str) -> None:
    import psycopg

    app = f"sg-takeover-{uuid.uuid4().hex[:8]}"

    async def blocked_on_a_lock(conn: Any) -> None:
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND wait_event_type = 'Lock'"
        )
        for _ in range(500):
            if (await (await conn.execute(query, (app,))).fetchone())[0]:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the takeover never waited for the in-flight write's row lock")

    async def main() -> None:
        schema, kwargs = new_schema(), {"kwargs": {"application_name": app}}
        async with (
            open_store(dsn, schema) as old,
            open_store(dsn, schema, pool_kwargs=kwargs) as new,
        ):
            lease = await old.acquire("s", "old", 0.2)
            await old.save(root := next_checkpoint(None, "s", "old"), lease=lease)
            late = next_checkpoint(root, "s", "old")
            record = _record.pack(late)
            params = {
                "id": late.id, "sid": "s", "parent": root.id, "superstep": 1, "full": True,
                "crc": zlib.crc32(record), "at": late.info.created_at.isoformat(),
                "record": record, "token": lease.token, "owner": "old",
                "refs": [], "cids": [], "cdata": [],  # it brings and names no chunk
            }  # fmt: skip
            async with (
                await psycopg.AsyncConnection.connect(dsn) as writer,
                await psycopg.AsyncConnection.connect(dsn, autocommit=True) as observer,
            ):
                # The old holder's fenced write, caught between its check and its commit.
                cur = await writer.execute(old._sql["fenced_save"], params)
                assert cur.rowcount == 1
                await asyncio.sleep(0.3)  # the lease expires meanwhile
                async with asyncio.TaskGroup() as tg:
                    takeover = tg.create_task(new.acquire("s", "new", 30))
                    await blocked_on_a_lock(observer)
                    assert not takeover.done()
                    await writer.commit()
            assert takeover.result().token == 2
            head = await new.latest("s")
            assert head is not None
            assert head.id == late.id  # the new holder continues from the late write

    asyncio.run(main())


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    return subprocess.Popen(
        [sys.executable, str(SUPPORT), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_processes_hammering_one_session_through_the_lease(dsn: str) -> None:
    schema, session, procs, rounds = new_schema(), "hammered", 4, 12

    async def setup() -> None:
        async with open_store(dsn, schema) as store:
            await store.save(next_checkpoint(None, session, "root"))

    asyncio.run(setup())
    children = [spawn("hammer", dsn, schema, session, f"p{i}", str(rounds)) for i in range(procs)]
    rows: list[dict[str, Any]] = []
    try:
        for child in children:  # each has opened its store: start them together
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.close()
        for child in children:
            assert child.wait(timeout=60) == 0
            assert child.stdout is not None
            rows += [json.loads(line) for line in child.stdout]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()

    total = procs * rounds
    assert len(rows) == total
    rows.sort(key=lambda r: r["token"])
    assert [r["token"] for r in rows] == list(range(1, total + 1))  # strictly increasing
    for before, after in itertools.pairwise(rows):  # never two holders at once
        assert before["end"] <= after["start"], (before, after)

    async def check() -> None:
        async with open_store(dsn, schema) as store:
            infos = await store.list(session)
            assert len(infos) == total + 1
            for newer, older in itertools.pairwise(infos):  # one chain, no fork
                assert newer.parent_id == older.id
                assert newer.superstep == older.superstep + 1
            assert sorted(i.superstep for i in infos) == list(range(total + 1))
            assert [i.id for i in reversed(infos[:-1])] == [r["id"] for r in rows]

    asyncio.run(check())


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")
def test_a_paused_process_cannot_write_after_a_takeover(dsn: str) -> None:
    schema, session = new_schema(), "paused"
    child = spawn("pause", dsn, schema, session, "sleeper")
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().split() == ["held", "1"]
        os.kill(child.pid, signal.SIGSTOP)  # a GC pause, a VM migration, ^Z
        time.sleep(0.7)  # past the 0.5 s lease

        async def take_over() -> None:
            async with open_store(dsn, schema) as store:
                lease = await store.acquire(session, "rescuer", 30)
                assert lease.token == 2
                await store.save(next_checkpoint(None, session, "rescuer"), lease=lease)

        asyncio.run(take_over())
        child.stdin.write("go\n")
        child.stdin.flush()
        os.kill(child.pid, signal.SIGCONT)
        assert child.stdout.readline().split() == ["save-rejected", "renew-rejected"]
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()

    async def check() -> None:
        async with open_store(dsn, schema) as store:
            assert [i.id.split("-")[0] for i in await store.list(session)] == ["rescuer"]

    asyncio.run(check())
