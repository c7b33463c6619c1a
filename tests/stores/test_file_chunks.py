"""FileCheckpointStore keeps chunks: one file each, written before the record, swept by delete."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from tests.stores.grow_support import expected, workflow

import stepgraph as sg
from stepgraph import CheckpointDecodeError, CheckpointError, _retention
from stepgraph._store import ChunkStore, chunk_store
from stepgraph.stores import _record, file
from stepgraph.stores._file_chunks import chunks_name
from stepgraph.stores._files import FRAME, file_stem
from stepgraph.stores.file import FileCheckpointStore, log_name

FIXTURE = Path(__file__).parent.parent / "fixtures" / "file-store-plain"


def chunk_dir(directory: Path, session: str = "s") -> Path:
    return directory / chunks_name(file_stem(session))


def chunk_files(directory: Path, session: str = "s") -> set[str]:
    where = chunk_dir(directory, session)
    return set(os.listdir(where)) if where.exists() else set()


def named_by_records(directory: Path, session: str = "s") -> set[str]:
    """The chunk ids the records of the session's log name (read straight from the file)."""
    data = (directory / log_name(session)).read_bytes()
    names: set[str] = set()
    pos = 0
    while pos < len(data):
        length = FRAME.unpack_from(data, pos)[0]
        names |= _record.mentioned(_record.unpack(data[pos + 8 : pos + 8 + length]))
        pos += 8 + length
    return names


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


async def grow(store: FileCheckpointStore, n: int, session: str = "s") -> sg.Session[int, int]:
    s = workflow(n).session(session, store=store)
    result = await s.run(0)
    assert result.outputs == [n]
    return s


async def check_all_load(store: FileCheckpointStore, session: str = "s", size: int = 200) -> int:
    """Every checkpoint loads to exactly its own history; returns how many there are."""
    infos = await store.list(session)
    for info in infos:
        cp = await store.load(info.id)
        h = cp.state.get("history", [])
        assert h == expected(len(h), size), info
        assert len(h) == info.superstep, info  # one item per committed superstep
    return len(infos)


def test_the_file_store_is_a_chunk_store(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path)
    assert isinstance(store, ChunkStore)
    assert chunk_store(store) is store


def test_a_growing_list_loads_everywhere_prunes_and_deletes(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await grow(store, 300)
            assert await check_all_load(store) == 301
            latest = await store.latest("s")
            assert latest is not None
            assert latest.chunks
            assert set(latest.chunks) <= chunk_files(tmp_path)
            assert chunk_files(tmp_path) == named_by_records(tmp_path)
            got = await store.load_chunks("s", [*latest.chunks, "0" * 32, "../s.log"])
            assert got == dict(latest.chunks)
        async with FileCheckpointStore(tmp_path) as reopened:
            again = await reopened.latest("s")
            assert again is not None
            assert again.state["history"] == expected(300)
            s = workflow(300).session("s", store=reopened)
            await s.load()
            assert s.state["history"] == expected(300)
            before = chunk_files(tmp_path)
            deleted = await s.prune(sg.Retention(keep_last=3))
            assert len(deleted) == 298
            assert await check_all_load(reopened) == 3
            files = chunk_files(tmp_path)
            assert files < before  # the chunks only pruned records named are gone
            assert files == named_by_records(tmp_path)
            assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))
            await reopened.delete_session("s")
            assert not chunk_dir(tmp_path).exists()
            assert sorted(os.listdir(tmp_path)) == ["s.lease"]
            assert await reopened.list("s") == []
            await grow(reopened, 50)  # the session starts over, its chunks written anew
            assert await check_all_load(reopened) == 51

    asyncio.run(main())


def test_a_crash_between_chunks_and_record_leaves_an_orphan_the_next_delete_sweeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = file.write_all
    armed: list[set[str]] = []

    def failing(fd: int, data: bytes) -> None:
        # The log append of the first save that wrote a new chunk fails, as a crash would.
        if armed and chunk_files(tmp_path) - armed[0]:
            raise OSError(28, "injected: no space left on device")
        real(fd, data)

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await grow(store, 100)
            armed.append(chunk_files(tmp_path))
            monkeypatch.setattr(file, "write_all", failing)
            s = workflow(400).session("s", store=store)
            with pytest.raises(CheckpointError, match="injected"):
                await s.run(100)
            monkeypatch.setattr(file, "write_all", real)
        orphans = chunk_files(tmp_path) - named_by_records(tmp_path)
        assert orphans  # the chunks of the save that failed: no record names them
        stray = chunk_dir(tmp_path) / f".{'0' * 32}.{'1' * 16}.tmp"  # a chunk write cut short
        stray.write_bytes(b"half")
        async with FileCheckpointStore(tmp_path) as store:
            n = await check_all_load(store)  # the failed save left no record
            assert n > 101
            latest = await store.latest("s")
            assert latest is not None
            assert 100 < len(latest.state["history"]) < 400
            await store.delete([(await store.list("s"))[0].id])  # the newest: nothing needs it
            assert not orphans & chunk_files(tmp_path)
            assert not stray.exists()
            assert chunk_files(tmp_path) == named_by_records(tmp_path)
            assert await check_all_load(store) == n - 1

    asyncio.run(main())


def test_a_save_whose_chunks_are_missing_writes_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path / "a") as store:
            await grow(store, 60)
            latest = await store.latest("s")
        assert latest is not None
        assert latest.chunks
        async with FileCheckpointStore(tmp_path / "b") as other:
            with pytest.raises(CheckpointError, match="chunk"):
                await other.save(replace(latest, chunks={}))
            assert await other.list("s") == []
            assert chunk_files(tmp_path / "b") == set()
            await other.save(latest)  # carrying them: written first, then the record
            assert chunk_files(tmp_path / "b") == set(latest.chunks)
            again = await other.load(latest.id)
            assert again.state["history"] == expected(60)

    asyncio.run(main())


def test_a_damaged_or_missing_chunk_file_raises_decode_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await grow(store, 60)
            latest = await store.latest("s")
            assert latest is not None
            victim = chunk_dir(tmp_path) / min(latest.chunks)
            data = victim.read_bytes()
            victim.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
            with pytest.raises(CheckpointDecodeError, match="corrupt"):
                await store.load(latest.id)
            victim.unlink()
            with pytest.raises(CheckpointDecodeError, match="does not hold"):
                await store.load(latest.id)

    asyncio.run(main())


def test_bytes_on_disk_after_a_thousand_supersteps(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await grow(store, 1000)
            latest = await store.latest("s")
            assert latest is not None
            assert latest.state["history"] == expected(1000)

    asyncio.run(main())
    total = disk_bytes(tmp_path)
    print(
        f"\n1,000 supersteps, ~200-byte items: {total} bytes on disk "
        f"({total / 1000:.0f} per superstep; the last history alone is ~{1000 * 206} bytes), "
        f"{len(chunk_files(tmp_path))} chunk files"
    )
    assert total < 4096 * 1000


def test_a_directory_written_before_chunks_loads_resumes_and_prunes(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    shutil.copytree(FIXTURE, directory)
    assert not chunk_dir(directory, "grow").exists()

    async def main() -> None:
        async with FileCheckpointStore(directory) as store:
            assert await check_all_load(store, "grow", 20) == 41
            latest = await store.latest("grow")
            assert latest is not None
            assert not latest.chunks
            assert latest.state["history"] == expected(40, 20)
            first = (await store.list("grow"))[0].id
            assert await store.load_records("grow", first) == {"k": b"v"}
            s = workflow(400, 20).session("grow", store=store)
            assert (await s.run(40)).outputs == [400]
            assert await check_all_load(store, "grow", 20) > 400
            latest = await store.latest("grow")
            assert latest is not None
            assert latest.chunks
            await s.prune(sg.Retention(keep_last=3))
            assert await check_all_load(store, "grow", 20) == 3
            assert chunk_files(directory, "grow") == named_by_records(directory, "grow")

    asyncio.run(main())


CHILD = """
import asyncio, sys
import stepgraph as sg
from stepgraph.stores.file import FileCheckpointStore
from tests.stores.grow_support import workflow

async def main() -> None:
    async with FileCheckpointStore(sys.argv[1]) as store:
        s = workflow(int(sys.argv[2])).session("s", store=store)
        print("ready", flush=True)
        await s.load()
        if s.head is None:
            await s.run(0)
        elif s.status in (sg.RunStatus.INTERRUPTED, sg.RunStatus.FAILED):
            await s.resume()

asyncio.run(main())
"""


def _prune_until(directory: Path, stop: threading.Event) -> int:
    """Prune the session to its newest 3 checkpoints, again and again, from another store."""

    async def main() -> int:
        rounds = 0
        async with FileCheckpointStore(directory) as store:
            while not stop.is_set():
                await _retention.prune(store, "s", None, 3)
                rounds += 1
                await asyncio.sleep(0.005)
        return rounds

    return asyncio.run(main())


@pytest.mark.slow
def test_killed_saves_and_a_concurrent_pruner_never_leave_a_record_without_its_chunks(
    tmp_path: Path,
) -> None:
    """SIGKILL a growing run at random moments while another store prunes the session.

    A killed run re-runs its superstep and makes the same chunks again (same ids): one
    may lie on disk as an orphan, which a save then relies on instead of writing it, while
    the pruner's sweep would remove it, were the two not serialized by the log's locks.
    """
    root = Path(__file__).parent.parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(sg.__file__).parent.parent), str(root)]),
    }
    rng = random.Random(20_260_107)
    n = 600
    for attempt in range(12):
        stop = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            pruned = pool.submit(_prune_until, tmp_path, stop)
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(tmp_path), str(n)],
                stdout=subprocess.PIPE,
                env=env,
                cwd=root,
            )
            try:
                assert child.stdout is not None
                assert child.stdout.readline().strip() == b"ready"
                if attempt < 11:
                    time.sleep(rng.uniform(0.05, 0.6))
                    child.send_signal(signal.SIGKILL)
                assert child.wait(timeout=60) in (0, -signal.SIGKILL)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
                if child.stdout is not None:
                    child.stdout.close()
                stop.set()
            assert pruned.result() > 0

        async def check() -> None:
            async with FileCheckpointStore(tmp_path) as store:
                await check_all_load(store)
                assert named_by_records(tmp_path) <= chunk_files(tmp_path)

        asyncio.run(check())

    async def finish() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            latest = await store.latest("s")
            assert latest is not None
            assert latest.state["history"] == expected(n)
            await _retention.prune(store, "s", None, 3)
            assert await check_all_load(store) == 3
            assert chunk_files(tmp_path) == named_by_records(tmp_path)  # orphans, temp files: gone

    asyncio.run(finish())


@pytest.mark.parametrize("warm", [True, False])
@pytest.mark.parametrize("how", ["delete", "delete_session"])
def test_a_save_waits_for_a_sweep_in_progress(tmp_path: Path, how: str, warm: bool) -> None:
    """The sweep holds the lock of the log a save would append to, old inode and new.

    A warm saver has the old log open and waits for its lock; a cold one opens what
    the path names, the new log (or the emptied one), and waits for that one's lock.
    """

    async def setup() -> tuple[sg.Checkpoint, str]:
        async with FileCheckpointStore(tmp_path) as store:
            await grow(store, 60)
            latest = await store.latest("s")
            assert latest is not None
            assert latest.chunks
            return latest, (await store.list("s"))[0].id

    latest, newest = asyncio.run(setup())
    saver = FileCheckpointStore(tmp_path)
    sweeper = FileCheckpointStore(tmp_path)
    entered, release = threading.Event(), threading.Event()
    chunks = sweeper._chunks
    real = chunks.sweep if how == "delete" else chunks.drop

    def paused(*args: object) -> None:
        entered.set()
        assert release.wait(10)
        real(*args)  # type: ignore[arg-type]

    async def warm_up() -> None:  # the saver has the log open and knows its chunks are on disk
        await saver.save(latest.as_full())

    async def sweep() -> None:
        if how == "delete":
            await sweeper.delete([newest])
        else:
            await sweeper.delete_session("s")

    if warm:
        asyncio.run(warm_up())
    setattr(chunks, "sweep" if how == "delete" else "drop", paused)
    with ThreadPoolExecutor(2) as pool:
        swept = pool.submit(asyncio.run, sweep())
        assert entered.wait(10)
        saved = pool.submit(asyncio.run, saver.save(latest.as_full()))
        time.sleep(0.3)
        assert not saved.done()  # waiting for the lock the sweep holds
        release.set()
        swept.result(timeout=10)
        saved.result(timeout=10)

    async def check() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            again = await store.load(latest.id)
            assert again.state["history"] == expected(60)
            assert chunk_files(tmp_path) == named_by_records(tmp_path)

    asyncio.run(check())
