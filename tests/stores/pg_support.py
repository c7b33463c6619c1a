"""PostgreSQL test support: find the server, throwaway schemas, and a lease worker process.

Imported by the PostgreSQL tests; also run as a script by `test_leases.py`:
`python tests/stores/pg_support.py hammer|pause DSN SCHEMA SESSION OWNER [N]`,
and by hand to measure latencies (medians and p99 in microseconds, 2,000 calls each):
`python tests/stores/pg_support.py bench [DSN] [--sync-off]`.

The server is `STEPGRAPH_TEST_PG_DSN` when set, else 127.0.0.1:5432, database
`test`, user `postgres` or `root` (trust auth). Tests skip when it is not
reachable, except under `CI=true`, where they fail so CI proves they ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from stepgraph import serde
from stepgraph.stores import Checkpoint, CheckpointInfo

RUN = f"sgt_{os.getpid()}_{uuid.uuid4().hex[:6]}"
"""Prefix of every schema this test process creates; dropped at the end."""

_CANDIDATES = tuple(
    f"host=127.0.0.1 port=5432 dbname=test user={user} connect_timeout=3"
    for user in ("postgres", "root")
)


def find_dsn() -> tuple[str | None, str]:
    """A DSN that connects, or None and why not."""
    try:
        import psycopg
    except ImportError as exc:
        return None, f"psycopg is not installed ({exc}); pip install -e '.[postgres]'"
    env = os.environ.get("STEPGRAPH_TEST_PG_DSN")
    errors: list[str] = []
    for dsn in (env,) if env else _CANDIDATES:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return dsn, ""
        except psycopg.Error as exc:
            errors.append(f"{dsn}: {str(exc).strip()}")
    return None, "PostgreSQL is not reachable: " + "; ".join(errors)


def require_dsn() -> str:
    """The DSN, or skip (fail under CI=true) with the reason."""
    import pytest

    dsn, why = find_dsn()
    if dsn is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {why}", pytrace=False)
        pytest.skip(why)
    return dsn


def drop_schemas(dsn: str, prefix: str = RUN) -> None:
    """Drop every schema whose name starts with `prefix`."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [
            n
            for (n,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,)
            )
        ]
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def next_checkpoint(parent: Checkpoint | None, session_id: str, owner: str) -> Checkpoint:
    """A full checkpoint whose parent is `parent` (None: a root), one superstep on."""
    step = 0 if parent is None else parent.info.superstep + 1
    info = CheckpointInfo(
        id=f"{owner}-{uuid.uuid4().hex[:12]}",
        parent_id=None if parent is None else parent.id,
        session_id=session_id,
        superstep=step,
        created_at=datetime.now(UTC),
    )
    parts = {"s:step": serde.encode(step), "s:by": serde.encode(owner)}
    return Checkpoint(info, "sig", "{}", "idle", MappingProxyType(parts))


async def _hammer(dsn: str, schema: str, session: str, owner: str, n: int) -> None:
    from stepgraph import ConcurrentRunError
    from stepgraph.stores.postgres import PostgresCheckpointStore

    async with PostgresCheckpointStore(dsn, schema=schema, max_size=2) as store:
        await store.list(session)  # pool open, schema there: ready
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(n):
            busy = False
            try:
                lease = await store.acquire(session, owner, 10.0)
            except ConcurrentRunError:
                busy = True
                lease = await store.acquire(session, owner, 10.0, wait=30.0)
            start = time.monotonic_ns()
            latest = await store.latest(session)
            await asyncio.sleep(0.002)  # hold the lease a little, as a run would
            cp = next_checkpoint(latest, session, owner)
            await store.save(cp, lease=lease)
            end = time.monotonic_ns()
            await store.release(lease)
            row = {"token": lease.token, "start": start, "end": end, "id": cp.id, "busy": busy}
            print(json.dumps(row), flush=True)


async def _pause(dsn: str, schema: str, session: str, owner: str) -> None:
    from stepgraph.stores import LeaseLostError
    from stepgraph.stores.postgres import PostgresCheckpointStore

    async with PostgresCheckpointStore(dsn, schema=schema, max_size=1) as store:
        lease = await store.acquire(session, owner, 0.5)
        latest = await store.latest(session)
        print(f"held {lease.token}", flush=True)
        sys.stdin.readline()  # the test stops this process (SIGSTOP) past the lease's expiry
        outcome = []
        try:
            await store.save(next_checkpoint(latest, session, owner), lease=lease)
            outcome.append("saved")
        except LeaseLostError:
            outcome.append("save-rejected")
        try:
            await store.renew(lease, 5.0)
            outcome.append("renewed")
        except LeaseLostError:
            outcome.append("renew-rejected")
        print(" ".join(outcome), flush=True)


async def _bench(dsn: str, sync_off: bool, n: int = 2000) -> None:
    import statistics

    from stepgraph.stores.postgres import PostgresCheckpointStore
    from stepgraph.testing import _Lineage

    async def timed(what: str, call: Any) -> None:
        took: list[float] = []
        for i in range(n):
            start = time.perf_counter_ns()
            await call(i)
            took.append((time.perf_counter_ns() - start) / 1000)
        p99 = sorted(took)[int(n * 0.99)]
        print(f"{what:24s} median {statistics.median(took):7.0f} us   p99 {p99:7.0f} us")

    options = {"kwargs": {"options": "-c synchronous_commit=off"}} if sync_off else {}
    schema = f"{RUN}_bench"
    try:
        async with PostgresCheckpointStore(dsn, schema=schema, pool_kwargs=options) as store:
            line = _Lineage("bench")  # deltas on a 10 KiB state value, a full one every 32
            await store.save(line.next({"s:payload": "x" * 10240, "s:n": 0}))
            plain = [line.next({"s:n": i}) for i in range(1, n + 1)]
            await timed("save (delta)", lambda i: store.save(plain[i]))
            lease = await store.acquire("bench", "me", 60)
            fenced = [line.next({"s:n": -i}) for i in range(n)]
            await timed("save (fenced delta)", lambda i: store.save(fenced[i], lease=lease))
            await timed("load (delta chain)", lambda i: store.load(fenced[i].id))
            await timed("latest", lambda i: store.latest("bench"))
            await timed("list (limit 20)", lambda i: store.list("bench", 20))
            await store.release(lease)

            async def cycle(i: int) -> None:
                await store.release(await store.acquire("bench", "me", 60))

            await timed("acquire + release", cycle)
    finally:
        drop_schemas(dsn, schema)


if __name__ == "__main__":
    if sys.argv[1] == "bench":
        args = [a for a in sys.argv[2:] if a != "--sync-off"]
        dsn = args[0] if args else find_dsn()[0] or _CANDIDATES[0]
        asyncio.run(_bench(dsn, "--sync-off" in sys.argv))
        sys.exit()
    mode, dsn_, schema_, session_, owner_ = sys.argv[1:6]
    if mode == "hammer":
        asyncio.run(_hammer(dsn_, schema_, session_, owner_, int(sys.argv[6])))
    else:
        asyncio.run(_pause(dsn_, schema_, session_, owner_))


def store_url(dsn: str, schema: str) -> str:
    """The key=value DSN of the tests as a `postgresql://` store URL with `?schema=`."""
    from urllib.parse import quote, urlencode

    from psycopg.conninfo import conninfo_to_dict

    p = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    auth = quote(p.pop("user", "postgres")) + (
        ":" + quote(p.pop("password"), safe="") if "password" in p else ""
    )
    where = f"{p.pop('host', '127.0.0.1')}:{p.pop('port', '5432')}/{quote(p.pop('dbname'))}"
    return f"postgresql://{auth}@{where}?{urlencode({**p, 'schema': schema}, quote_via=quote)}"
