"""FileCheckpointStore leases (issue 18, item 3): processes sharing a session, the lease file.

Before the file store had leases, ten processes running one session id forked
it silently (several roots, chain breaks, "successful" turns missing from the
final state), and a process started while another was mid-run was told the
session was INTERRUPTED and to call `resume()`.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from tests.stores.pg_support import next_checkpoint
from tests.stores.proc_support import run_together

from stepgraph.stores import Lease, LeaseLostError
from stepgraph.stores.file import FileCheckpointStore

TURNS = textwrap.dedent(
    """
    import asyncio, sys
    import stepgraph as sg
    from stepgraph.stores.file import FileCheckpointStore

    @sg.executor(id="turn")
    async def turn(me: str, ctx: sg.Context[None, str]) -> None:
        turns = list(ctx.state.get("turns", []))
        await asyncio.sleep(0.01)  # hold the lease a little, as real work would
        ctx.state.set("turns", [*turns, me])
        await ctx.yield_output(me)

    async def main(directory: str, me: str) -> None:
        wf = sg.WorkflowBuilder[str](start=turn).build(name="turns")
        async with FileCheckpointStore(directory) as store:
            session = wf.session("shared", store=store, lease=sg.LeasePolicy(wait=60))
            print("ready", flush=True)
            sys.stdin.readline()
            result = await session.run(me)
            assert result.outputs == [me], result.outputs
            assert result.status is sg.RunStatus.IDLE, result.status

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def test_ten_processes_take_turns_on_one_session(tmp_path: Path) -> None:
    names = [f"p{i}" for i in range(10)]
    run_together([[sys.executable, "-c", TURNS, str(tmp_path), me] for me in names])

    async def check() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            infos = await store.list("shared")
            assert len(infos) == 2 * len(names)  # each run: its start, its one superstep
            assert [i.parent_id for i in infos].count(None) == 1  # one root
            for newer, older in itertools.pairwise(infos):  # one unbroken chain
                assert newer.parent_id == older.id
            head = await store.latest("shared")
            assert head is not None
            assert sorted(head.state["turns"]) == names  # every process's turn, once each

    asyncio.run(check())


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    import stepgraph as sg
    from stepgraph.stores.file import FileCheckpointStore

    @sg.executor(id="first")
    async def first(text: str, ctx: sg.Context[str]) -> None:
        ctx.state.set("first", text)
        await ctx.send(text)

    @sg.executor(id="hold")
    async def hold(text: str, ctx: sg.Context[None, str]) -> None:
        print("holding", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # mid-run until the test says go
        await ctx.yield_output(text)

    async def main(directory: str) -> None:
        wf = sg.WorkflowBuilder[str](start=first).add_edge(first, hold).build(name="held")
        async with FileCheckpointStore(directory) as store:
            result = await wf.session("s", store=store).run("a")
            print(result.status.name, *result.outputs, flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)

LATECOMER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import stepgraph as sg
    from stepgraph.stores.file import FileCheckpointStore

    @sg.executor(id="first")
    async def first(text: str, ctx: sg.Context[str]) -> None:
        await ctx.send(text)

    @sg.executor(id="hold")
    async def hold(text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(text)

    async def attempt(call) -> list[object]:
        started = time.monotonic()
        try:
            await call()
        except sg.ConcurrentRunError as exc:
            return ["ConcurrentRunError", time.monotonic() - started, str(exc)]
        except Exception as exc:
            return [type(exc).__name__, time.monotonic() - started, str(exc)]
        return ["ran", time.monotonic() - started, ""]

    async def main(directory: str) -> None:
        wf = sg.WorkflowBuilder[str](start=first).add_edge(first, hold).build(name="held")
        async with FileCheckpointStore(directory) as store:
            session = wf.session("s", store=store)
            ran = await attempt(lambda: session.run("b"))
            resumed = await attempt(lambda: session.resume())
        print(json.dumps({"run": ran, "resume": resumed}), flush=True)

    asyncio.run(main(sys.argv[1]))
    """
)


def test_a_process_started_mid_run_is_refused_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"  # superstep 1 saved, 2 running
        late = subprocess.run(
            [sys.executable, "-c", LATECOMER, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        report = json.loads(late.stdout)
        for call in ("run", "resume"):
            outcome, took, message = report[call]
            assert outcome == "ConcurrentRunError", report  # not NotIdleError / INTERRUPTED
            assert took < 2.0, report  # at once: the lease's ttl is 30 s
            assert "being run elsewhere" in message
        holder.stdin.write("go\n")
        holder.stdin.close()
        assert holder.stdout.readline().split() == ["IDLE", "a"]
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        for stream in (holder.stdin, holder.stdout):
            if stream is not None:
                stream.close()

    async def check() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            infos = await store.list("s")
            assert [i.superstep for i in reversed(infos)] == [0, 1, 2]  # the holder's run only
            for newer, older in itertools.pairwise(infos):
                assert newer.parent_id == older.id

    asyncio.run(check())


# --------------------------------------------------------------------------- the lease file


def _run_in_thread(
    coro: Callable[[], Coroutine[Any, Any, Any]],
) -> tuple[threading.Thread, list[Any]]:
    """Run `coro()` in its own thread and event loop; the list gets its result or error."""
    out: list[Any] = []

    def main() -> None:
        try:
            out.append(asyncio.run(coro()))
        except BaseException as exc:  # handed to the test
            out.append(exc)

    thread = threading.Thread(target=main)
    thread.start()
    return thread, out


def _blocked_on(path: Path) -> bool:
    """True when some process waits for an flock on `path` (a `->` line of /proc/locks)."""
    inode = f":{path.stat().st_ino} "
    return any(
        line.split(":", 1)[1].lstrip().startswith("-> FLOCK") and inode in line
        for line in Path("/proc/locks").read_text().splitlines()
    )


def _wait_until(what: str, cond: Callable[[], bool]) -> None:
    for _ in range(1000):
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"never {what}")


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc/locks (Linux)")
def test_a_takeover_waits_for_an_in_flight_fenced_save_and_sees_it(tmp_path: Path) -> None:
    old, new = FileCheckpointStore(tmp_path), FileCheckpointStore(tmp_path)
    lease = asyncio.run(old.acquire("s", "old", 0.3))
    asyncio.run(old.save(root := next_checkpoint(None, "s", "old"), lease=lease))
    log, lease_file = tmp_path / "s.log", tmp_path / "s.lease"
    late = next_checkpoint(root, "s", "old")
    fd = os.open(log, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the old holder's fenced save will stop at the log
        saving, saved = _run_in_thread(lambda: old.save(late, lease=lease))
        _wait_until("saw the fenced save wait for the log", lambda: _blocked_on(log))
        time.sleep(0.4)  # its lease expires meanwhile
        taking, taken = _run_in_thread(lambda: new.acquire("s", "new", 30))
        _wait_until("saw the takeover wait", lambda: _blocked_on(lease_file))
        assert not saved
        assert not taken
    finally:
        os.close(fd)  # the save goes on; then the takeover
    saving.join(10)
    taking.join(10)
    assert saved == [None]  # checked before the lease expired: it was still current
    assert isinstance(taken[0], Lease)
    assert taken[0].token == 2

    async def check() -> None:
        head = await new.latest("s")
        assert head is not None
        assert head.id == late.id  # the takeover sees the late save
        with pytest.raises(LeaseLostError):
            await old.save(next_checkpoint(late, "s", "old"), lease=lease)

    asyncio.run(check())


def test_the_lease_file_is_one_readable_line_kept_by_delete_session(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            lease = await store.acquire("a b/ü", "me", 30)
            lease_file = tmp_path / "a%20b%2F%C3%BC.lease"
            held = json.loads(lease_file.read_text())
            assert held == {"owner": "me", "token": 1, "expires_at": lease.expires_at}
            assert lease_file.read_text() == json.dumps(held) + "\n"  # as json.dumps writes it
            await store.save(next_checkpoint(None, "a b/ü", "me"), lease=lease)
            await store.release(lease)
            assert json.loads(lease_file.read_text())["owner"] is None
            await store.delete_session("a b/ü")
            assert sorted(os.listdir(tmp_path)) == [lease_file.name]  # tokens never go back
            assert (await store.acquire("a b/ü", "you", 30)).token == 2

    asyncio.run(main())


@pytest.mark.parametrize("content", [b"", b'{"owner": "x", "tok', b"\0" * 64, b"[1, 2]\n"])
def test_a_lease_file_that_does_not_parse_reads_as_released(tmp_path: Path, content: bytes) -> None:
    """What a power loss can leave (lease writes are not fsynced: every holder died too)."""
    (tmp_path / "s.lease").write_bytes(content)

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            lease = await store.acquire("s", "me", 30)
            assert lease.token == 1
            await store.save(next_checkpoint(None, "s", "me"), lease=lease)

    asyncio.run(main())


def test_a_shorter_line_replaces_a_longer_one(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            first = await store.acquire("s", "a-rather-long-owner-name" * 4, 30)
            await store.release(first)
            second = await store.acquire("s", "b", 30)
            assert (tmp_path / "s.lease").read_text().count("\n") == 1
            assert json.loads((tmp_path / "s.lease").read_text())["owner"] == "b"
            assert second.token == 2

    asyncio.run(main())


def test_a_lease_line_written_by_hand_still_fences(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            lease = await store.acquire("s", "me", 30)
            lease_file = tmp_path / "s.lease"
            lease_file.write_text(f'{{"token":{lease.token},"expires_at":1e99,"owner":"me"}}\n')
            await store.save(root := next_checkpoint(None, "s", "me"), lease=lease)
            lease_file.write_text(f'{{"token":{lease.token},"expires_at":1e99,"owner":"you"}}\n')
            with pytest.raises(LeaseLostError):
                await store.save(next_checkpoint(root, "s", "me"), lease=lease)
            assert [i.id for i in await store.list("s")] == [root.id]

    asyncio.run(main())
