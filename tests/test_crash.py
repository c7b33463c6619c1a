"""Crash semantics (issue 3, point 6): SIGKILL a checkpointed run at random moments.

For each durable store, a child process (`tests/crash_child.py`) runs a
61-superstep workflow (switch, chain, fan-out, a map of three items beside
the fan-out, a fan-in fed one superstep apart, a loop, shared state written
every superstep, executors with snapshot()/restore()) and is killed with SIGKILL after a random delay spread
over its life: before the first checkpoint, mid-superstep, mid-save, around
completion. Fresh children are started on the same session and killed again
until one completes. Then, in this process: the store opens; every checkpoint
loads and decodes; the checkpoints form one chain with supersteps 0, 1, 2, ...
(none lost, none committed twice); the session reopens IDLE with the output of
an uninterrupted run recorded exactly once; and each (superstep, executor) of
the run was executed at least once. After every kill the checkpoints listed
before it must still be listed.

The random delays are the test (seeded, so a run can be replayed in spirit;
the kernel decides where exactly each kill lands). `scripts/crash_soak.py`
runs the same procedure for thousands of kills.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import crash_child as cc
import stepgraph as sg

SEED = 20_260_101
ITERATIONS = 25  # sessions per store, each killed once or twice before a run completes
MIN_KILLS = 25  # per store: kills that hit a live child (the suite needs >= 50)
WORKERS = 2  # sessions crashed side by side (the machine has 2 cores)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ref() -> cc.Reference:
    return cc.reference()


def _one(
    kind: str,
    root: Path,
    n: int,
    timing: cc.Timing,
    ref: cc.Reference,
) -> tuple[cc.Cycle, cc.Verdict]:
    rng = random.Random(f"{SEED}-{kind}-{n}")
    path = root / f"s{n}" / ("db.sqlite" if kind == "sqlite" else "ckpt")
    path.parent.mkdir()
    kills = rng.choice((1, 2))
    return cc.crash_and_verify(kind, path, f"crash-{n}", rng, timing, kills, ref)


@pytest.mark.timeout(180)  # ~20-30 s each on an idle 2-core machine; slack for a busy one
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_sigkill_at_random_moments_loses_nothing(
    kind: str, tmp_path: Path, ref: cc.Reference
) -> None:
    if importlib.util.find_spec(f"stepgraph.stores.{kind}") is None:
        pytest.skip(f"the {kind} store is not available")
    started = time.perf_counter()
    timing = cc.calibrate(kind, tmp_path, ref.outputs, WORKERS)

    def crash(i: int) -> tuple[cc.Cycle, cc.Verdict]:
        return _one(kind, tmp_path, i, timing, ref)

    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(crash, range(ITERATIONS)))
        while sum(c.kills for c, _ in results) < MIN_KILLS:  # children that finished too soon
            assert len(results) < 3 * ITERATIONS, "children keep finishing before their kill"
            results += pool.map(crash, range(len(results), len(results) + WORKERS))

    problems: list[str] = []
    for i, (cycle, verdict) in enumerate(results):
        problems += [f"session {i}: {p}" for p in cycle.problems + verdict.problems]
        problems += [f"session {i}: corrupt checkpoint {c}" for c in verdict.corrupt]
        problems += [f"session {i}: wrong output: {m}" for m in verdict.mismatched]
    kills = sum(c.kills for c, _ in results)
    early, mid, late = (sum(c.where()[k] for c, _ in results) for k in range(3))
    in_map = sum(c.in_map() for c, _ in results)
    reruns = sum(v.reruns for _, v in results)
    finished = sum(v.finished_reruns for _, v in results)
    single = sum(v.single_reruns for _, v in results)
    print(
        f"\n{kind}: {len(results)} sessions, {kills} kills ({early} before the child's first "
        f"checkpoint, {mid} mid-run of which {in_map} mid-map, {late} after the last), "
        f"{sum(c.launches for c, _ in results)} child runs, {reruns} handler re-runs "
        f"({finished} of finished activations in supersteps of several, {single} in "
        f"supersteps of one), calibration {timing}, {time.perf_counter() - started:.1f} s"
    )
    assert not problems, "\n".join(problems)
    assert kills >= MIN_KILLS
    assert all(v.checkpoints == cc.FINAL_SUPERSTEP + 1 for _, v in results)
    # Each kill can catch at most one finished activation between its end and its record
    # (the documented window); without records every finished sibling of a killed
    # superstep would run again, several per kill.
    assert finished <= kills, f"{finished} finished activations ran again after {kills} kills"


# --------------------------------------------------------------------------- torn writes


def _frame_ends(log: bytes) -> list[int]:
    """End offsets of the whole frames of a file-store log (`u32 length | u32 crc | record`)."""
    ends: list[int] = []
    pos = 0
    while pos + 8 <= len(log):
        pos += 8 + int.from_bytes(log[pos : pos + 4], "big")
        ends.append(pos)
    assert pos == len(log)
    return ends


async def _complete_image(kind: str, path: Path, sid: str) -> tuple[Path, str]:
    """Run the workflow in this process over a store at `path`.

    Returns a directory holding the store's files as a crash could leave them
    (the store is `dir / path.name`) and the name, relative to it, of the file
    a crash could leave torn: the session's log for the file store; for sqlite
    the write-ahead log, copied with the database while the store is still
    open (nothing is checkpointed into the database yet).
    """
    store = cc.open_store(kind, path)
    try:
        result = await cc.build().session(sid, store=store).run(cc.SEED)
        assert result.status is sg.RunStatus.IDLE
        if kind == "file":
            return path.parent, f"{path.name}/{sid}.log"
        image = path.parent / "image"
        image.mkdir()
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{path}{suffix}", image / f"{path.name}{suffix}")
        return image, f"{path.name}-wal"
    finally:
        await store.aclose()


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_torn_last_write_is_never_read(kind: str, tmp_path: Path, ref: cc.Reference) -> None:
    """Cut the file a crash tears (file: the log; sqlite: the WAL) at random bytes.

    Each cut must leave an openable store holding a gap-free prefix of the
    chain (for the file store: exactly the frames that are whole), every
    listed checkpoint readable, and a resume that ends with the right output
    recorded once and an unbroken 0..61 chain (the next writer drops the torn
    tail).
    """
    if importlib.util.find_spec(f"stepgraph.stores.{kind}") is None:
        pytest.skip(f"the {kind} store is not available")
    name = "db.sqlite" if kind == "sqlite" else "ckpt"
    (tmp_path / "whole").mkdir()
    image, torn = asyncio.run(_complete_image(kind, tmp_path / "whole" / name, "torn"))
    data = (image / torn).read_bytes()
    rng = random.Random(f"{SEED}-torn-{kind}")
    cuts = sorted({0, 1, len(data) - 1, *(rng.randrange(len(data)) for _ in range(12))})
    ends = _frame_ends(data) if kind == "file" else []

    async def check(n: int, cut: int) -> tuple[int, list[str]]:
        where = tmp_path / f"cut{n}"
        shutil.copytree(image, where)
        (where / torn).write_bytes(data[:cut])
        path = where / name
        store = cc.open_store(kind, path)
        try:
            infos = await store.list("torn")
            for info in infos:
                await store.load(info.id)
            session = cc.build().session(
                "torn", store=store, lease=False
            )  # torn WAL: the lease row may be stale
            await session.load()
            if session.head is None:
                await session.run(cc.SEED)
            elif session.status is sg.RunStatus.INTERRUPTED:
                await session.resume()
        finally:
            await store.aclose()
        problems = cc.lineage(infos, complete=False)  # a prefix: supersteps 0..k, no gap
        if ends and len(infos) != sum(e <= cut for e in ends):
            problems.append(f"{len(infos)} checkpoints listed, {sum(e <= cut for e in ends)} whole")
        verdict = await cc.verify(kind, path, "torn", ref, journal=False)
        problems += verdict.corrupt + verdict.mismatched + verdict.problems
        return len(infos), [f"cut at byte {cut} of {len(data)}: {p}" for p in problems]

    found = [asyncio.run(check(n, cut)) for n, cut in enumerate(cuts)]
    listed = [count for count, _ in found]
    print(f"\n{kind}: {len(data)} bytes cut at {cuts}: {listed} checkpoints left")
    assert listed == sorted(listed), "a longer file lost checkpoints a shorter one had"
    assert listed[-1] >= cc.FINAL_SUPERSTEP, "cutting the last byte lost more than one save"
    problems = [p for _, ps in found for p in ps]
    assert not problems, "\n".join(problems)
