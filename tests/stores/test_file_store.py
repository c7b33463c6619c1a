"""FileCheckpointStore specifics: torn tails, corruption, file names, processes, bytes per save."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import textwrap
import urllib.parse
from pathlib import Path

import pytest
from tests.stores.proc_support import run_together

from stepgraph import CheckpointDecodeError, CheckpointError, CheckpointNotFoundError
from stepgraph.stores import _file_records, _record
from stepgraph.stores.file import FileCheckpointStore, log_name
from stepgraph.testing import _Lineage

PAYLOAD = "x" * 10 * 1024


def frame_size(cp: object) -> int:
    return 8 + len(_record.pack(cp))  # type: ignore[arg-type]


def save_chain(directory: Path, n: int, session: str = "s") -> tuple[_Lineage, list[int]]:
    """Save n checkpoints (one full, then deltas); return the lineage and the log size after each."""
    line = _Lineage(session)
    sizes: list[int] = []

    async def main() -> None:
        async with FileCheckpointStore(directory) as store:
            for i in range(n):
                await store.save(
                    line.next({"s:payload": PAYLOAD, "s:n": i} if i == 0 else {"s:n": i})
                )
                sizes.append((directory / log_name(session)).stat().st_size)

    asyncio.run(main())
    return line, sizes


async def ids(store: FileCheckpointStore, session: str = "s") -> list[str]:
    return [info.id for info in await store.list(session)]


@pytest.mark.parametrize("tear", ["cut-record", "cut-header", "zeros", "garbage"])
def test_a_torn_tail_is_ignored_then_truncated(tmp_path: Path, tear: str) -> None:
    line, sizes = save_chain(tmp_path, 3)
    log = tmp_path / log_name("s")
    first, second, third = line.saved
    if tear == "cut-record":  # a crash in the middle of the third append
        os.truncate(log, sizes[2] - 10)
    elif tear == "cut-header":  # a crash after 3 bytes of a fourth frame
        with open(log, "ab") as f:
            f.write(b"\x00\x00\x01")
    else:  # a crash that left zero-filled or garbage blocks past the last frame
        with open(log, "ab") as f:
            f.write(b"\0" * 4096 if tear == "zeros" else b"\x00\x00\x01\x00junk")
    kept = [second, first] if tear == "cut-record" else [third, second, first]

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            assert await ids(store) == kept
            for cid in kept:
                assert (await store.load(cid)).state == line.saved[cid].state
            if tear == "cut-record":
                with pytest.raises(CheckpointNotFoundError):
                    await store.load(third)
                line.head, line.depth = second, 1  # continue from the last completed save
            await store.save(new := line.next({"s:n": 99}))
            assert log.stat().st_size == sizes[len(kept) - 1] + frame_size(new)
        async with FileCheckpointStore(tmp_path) as store:
            assert await ids(store) == [new.id, *kept]
            assert (await store.load(new.id)).state == {"payload": PAYLOAD, "n": 99}

    asyncio.run(main())


def test_a_torn_tail_left_by_another_process_while_open(tmp_path: Path) -> None:
    line = _Lineage("s")

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await store.save(a := line.next({"s:n": 1}))
            log = tmp_path / log_name("s")
            size = log.stat().st_size
            with open(log, "ab") as f:
                f.write(b"\x00\x00\x00\x40SGC1half")
            assert await ids(store) == [a.id]
            await store.save(b := line.next({"s:n": 2}))
            assert log.stat().st_size == size + frame_size(b)
            assert (await store.load(b.id)).state == {"n": 2}

    asyncio.run(main())


@pytest.mark.parametrize("where", [0, 5, 12, -1], ids=["length", "crc", "magic", "payload"])
def test_a_damaged_middle_record_raises_naming_the_file(tmp_path: Path, where: int) -> None:
    line, sizes = save_chain(tmp_path, 4)
    log = tmp_path / log_name("s")
    data = bytearray(log.read_bytes())
    data[sizes[1] + where if where >= 0 else sizes[2] + where] ^= 0x40  # in the third frame
    log.write_bytes(bytes(data))

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            with pytest.raises(CheckpointDecodeError, match=str(log)):
                await store.list("s")
            with pytest.raises(CheckpointDecodeError, match=str(log)):
                await store.load(next(iter(line.saved)))
            with pytest.raises(CheckpointDecodeError):  # nothing is appended to a corrupt log
                await store.save(line.next({"s:n": 5}))
        assert log.read_bytes() == bytes(data)

    asyncio.run(main())


def test_a_failed_save_is_never_read_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = _Lineage("s")

    def broken_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await store.save(a := line.next({"s:n": 1}))
            with monkeypatch.context() as m:
                m.setattr(os, "fdatasync", broken_fdatasync)
                with pytest.raises(CheckpointError, match="Input/output error"):
                    await store.save(b := line.next({"s:n": 2}))
            assert await ids(store) == [a.id]
            with pytest.raises(CheckpointNotFoundError):
                await store.load(b.id)
        async with FileCheckpointStore(tmp_path) as store:
            assert await ids(store) == [a.id]

    asyncio.run(main())


@pytest.mark.parametrize("session", ["a", "A", "a/b", "..", "", "ü %", "x" * 300, "a%2Fb"])
def test_session_file_names_are_safe_and_distinct(tmp_path: Path, session: str) -> None:
    name = log_name(session)
    assert name.endswith(".log")
    assert "/" not in name
    assert len(name.encode()) < 255
    if not name.startswith("~"):
        assert urllib.parse.unquote(name[:-4]) == session
    line = _Lineage(session)

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await store.save(cp := line.next({"s:n": 1}))
            assert await ids(store, session) == [cp.id]
        assert os.listdir(tmp_path) == [name]

    asyncio.run(main())


def test_the_directory_is_created_on_first_save_only(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path / "a" / "b") as store:
            assert await store.list("s") == []
            assert not (tmp_path / "a").exists()
            await store.save(_Lineage("s").next({"s:n": 1}))
        assert (tmp_path / "a" / "b" / "s.log").is_file()

    asyncio.run(main())


def test_delete_rewrites_the_log_for_other_open_stores(tmp_path: Path) -> None:
    line = _Lineage("s")
    cps = [line.next({"s:n": i}, full=True) for i in range(4)]

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as a, FileCheckpointStore(tmp_path) as b:
            for cp in cps:
                await a.save(cp)
            assert len(await ids(b)) == 4  # b indexes the log
            await a.delete([cps[1].id])
            assert await ids(b) == [cps[3].id, cps[2].id, cps[0].id]
            await b.save(new := line.next({"s:n": 9}))
            assert await ids(a) == [new.id, cps[3].id, cps[2].id, cps[0].id]
        assert sorted(os.listdir(tmp_path)) == ["s.log"]  # no temp file left behind

    asyncio.run(main())


def test_bytes_written_per_delta_save(tmp_path: Path) -> None:
    _, sizes = save_chain(tmp_path, 16)
    assert sizes[0] > 10 * 1024
    per_delta = [b - a for a, b in itertools.pairwise(sizes)]
    assert max(per_delta) < 1024, per_delta


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from stepgraph.stores.file import FileCheckpointStore
    from stepgraph.testing import _Lineage

    async def main(directory, me, n):
        line = _Lineage("shared", me)
        async with FileCheckpointStore(directory) as store:
            print("ready", flush=True)
            sys.stdin.readline()
            for i in range(n):
                await store.save(line.next({"s:n": i, "s:by": me}, full=i % 10 == 0))

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_two_processes_append_to_one_log_without_loss(tmp_path: Path) -> None:
    n = 150
    run_together([[sys.executable, "-c", CHILD, str(tmp_path), me, str(n)] for me in ("p1", "p2")])

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            got = await ids(store, "shared")
            assert len(got) == 2 * n
            for me in ("p1", "p2"):
                mine = [cid for cid in got if cid.startswith(me)]
                assert mine == [f"{me}-{i:06d}" for i in range(n, 0, -1)]
            for cid in got:
                cp = await store.load(cid)
                assert cp.state["by"] == cid[:2]

    asyncio.run(main())


# --------------------------------------------------------------------------- activation records


def records_file(directory: Path, session: str = "s") -> Path:
    return directory / (log_name(session).removesuffix(".log") + ".rec")


def save_records(directory: Path, n: int, base: str = "b") -> list[int]:
    """Save records k0..k{n-1} under `base` of session "s"; return the records log size after each."""
    sizes: list[int] = []

    async def main() -> None:
        async with FileCheckpointStore(directory) as store:
            for i in range(n):
                await store.save_record("s", base, f"k{i}", b"v" * 200)
                sizes.append(records_file(directory).stat().st_size)

    asyncio.run(main())
    return sizes


def test_records_live_beside_the_log_and_cost_one_frame_each(tmp_path: Path) -> None:
    line = _Lineage("s")

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await store.save(cp := line.next({"s:n": 1}))
            await store.save_record("s", cp.id, "a:agent:0", b"x" * 200)
            size = records_file(tmp_path).stat().st_size
            assert size == len(_file_records.pack(cp.id, "a:agent:0", b"x" * 200))
            assert size == 8 + 4 + 4 + len(cp.id) + 4 + len("a:agent:0") + 200
            assert sorted(os.listdir(tmp_path)) == ["s.log", "s.rec"]
            await store.delete_records("s", cp.id)  # all of them: truncated in place
            assert records_file(tmp_path).stat().st_size == 0
            assert await store.load_records("s", cp.id) == {}
            await store.save_record("s", cp.id, "k", b"again")
            await store.delete_session("s")
            assert os.listdir(tmp_path) == []

    asyncio.run(main())


@pytest.mark.parametrize("tear", ["cut-record", "cut-header", "zeros", "garbage"])
def test_a_torn_record_is_skipped_and_later_records_still_read(tmp_path: Path, tear: str) -> None:
    sizes = save_records(tmp_path, 3)
    rec = records_file(tmp_path)
    if tear == "cut-record":  # a crash in the middle of the third append
        os.truncate(rec, sizes[2] - 10)
    elif tear == "cut-header":  # a crash after 3 bytes of a fourth frame
        with open(rec, "ab") as f:
            f.write(b"\x00\x00\x01")
    else:  # a crash that left zero-filled or garbage blocks past the last frame
        with open(rec, "ab") as f:
            f.write(b"\0" * 4096 if tear == "zeros" else b"\x00\x00\x01\x00junkSGR1")
    kept = {f"k{i}": b"v" * 200 for i in range(2 if tear == "cut-record" else 3)}

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            assert await store.load_records("s", "b") == kept
            await store.save_record("s", "b", "after", b"after the crash")
            await store.save_record("s", "b", "k0", b"replaced after the crash")
        async with FileCheckpointStore(tmp_path) as store:
            want = {**kept, "after": b"after the crash", "k0": b"replaced after the crash"}
            assert await store.load_records("s", "b") == want
            await store.delete_records("s", "b")
            assert await store.load_records("s", "b") == {}
        assert rec.stat().st_size == 0  # the torn bytes went with the records

    asyncio.run(main())


def test_a_damaged_record_is_lost_alone(tmp_path: Path) -> None:
    sizes = save_records(tmp_path, 3)
    rec = records_file(tmp_path)
    data = bytearray(rec.read_bytes())
    data[sizes[1] - 1] ^= 0x40  # the last byte of the second record
    rec.write_bytes(bytes(data))

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:  # its activation would run again
            assert await store.load_records("s", "b") == {"k0": b"v" * 200, "k2": b"v" * 200}

    asyncio.run(main())


def test_a_failed_record_save_is_never_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            await store.save_record("s", "b", "k0", b"kept")
            size = records_file(tmp_path).stat().st_size
            with monkeypatch.context() as m:
                m.setattr(os, "fdatasync", broken_fdatasync)
                with pytest.raises(CheckpointError, match="Input/output error"):
                    await store.save_record("s", "b", "k1", b"lost")
            assert records_file(tmp_path).stat().st_size == size
            assert await store.load_records("s", "b") == {"k0": b"kept"}

    asyncio.run(main())


def test_deleting_one_base_rewrites_the_records_log_for_other_stores(tmp_path: Path) -> None:
    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as a, FileCheckpointStore(tmp_path) as b:
            for base in ("b1", "b2"):
                await a.save_record("s", base, "k", base.encode())
            inode = records_file(tmp_path).stat().st_ino
            await b.delete_records("s", "b1")
            assert records_file(tmp_path).stat().st_ino != inode  # renamed over, atomically
            assert await a.load_records("s", "b1") == {}
            await a.save_record("s", "b2", "more", b"more")
            assert await b.load_records("s", "b2") == {"k": b"b2", "more": b"more"}
        assert sorted(os.listdir(tmp_path)) == ["s.rec"]  # no temp file left behind

    asyncio.run(main())


RECORDS_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from stepgraph.stores.file import FileCheckpointStore

    async def main(directory, me, n):
        async with FileCheckpointStore(directory) as store:
            print("ready", flush=True)
            sys.stdin.readline()
            for i in range(n):
                await store.save_record("shared", "base", f"{me}:{i}", me.encode() * (i % 50))
                if i % 25 == 24:  # a superstep of the other process committed: drop its records
                    await store.delete_records("shared", "other-base")
                    await store.save_record("shared", "other-base", me, b"x")

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_two_processes_save_records_to_one_log_without_loss(tmp_path: Path) -> None:
    n = 150
    run_together(
        [[sys.executable, "-c", RECORDS_CHILD, str(tmp_path), me, str(n)] for me in ("p1", "p2")]
    )

    async def main() -> None:
        async with FileCheckpointStore(tmp_path) as store:
            got = await store.load_records("shared", "base")
            want = {f"{me}:{i}": me.encode() * (i % 50) for me in ("p1", "p2") for i in range(n)}
            assert got == want

    asyncio.run(main())


KILLED_MID_REWRITE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from stepgraph.stores import file
    from stepgraph.testing import _Lineage

    def killed(src, dst):  # SIGKILL between writing the temp file and renaming it
        os.kill(os.getpid(), signal.SIGKILL)

    async def main(directory):
        line = _Lineage("s")
        async with file.FileCheckpointStore(directory) as store:
            cps = [line.next({"s:n": i}, full=True) for i in range(3)]
            for cp in cps:
                await store.save(cp)
            file.os.replace = killed
            await store.delete([cps[1].id])

    asyncio.run(main(sys.argv[1]))
    """
)


def test_temp_files_of_a_killed_rewrite_are_swept_on_open(tmp_path: Path) -> None:
    import fcntl
    import signal
    import subprocess

    child = subprocess.run([sys.executable, "-c", KILLED_MID_REWRITE, str(tmp_path)], check=False)
    assert child.returncode == -signal.SIGKILL
    orphans = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(orphans) == 1
    # A rewrite in progress elsewhere holds its log's lock: its temp file is left alone.
    (tmp_path / "busy.log").touch()
    live = tmp_path / ".busy.log.0123456789abcdef.tmp"
    live.touch()
    unrelated = tmp_path / "notes.tmp"
    unrelated.touch()
    with open(tmp_path / "busy.log", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)

        async def main() -> None:
            async with FileCheckpointStore(tmp_path) as store:
                assert len(await ids(store)) == 3  # the killed delete changed nothing

        asyncio.run(main())
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".tmp")) == [
        live.name,
        unrelated.name,
    ]
