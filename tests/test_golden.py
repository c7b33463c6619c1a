"""Golden checkpoint files keep loading and resuming: format changes must be deliberate."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tests.golden_workflow import INPUT, build

import stepgraph as sg
from stepgraph._checkpoint import apply_delta
from stepgraph.stores._record import unpack

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints"
RECORDS = sorted(FIXTURES.glob("v1-golden-*.ckpt"))


def _load_all() -> list[sg.Checkpoint]:
    whole: dict[str, sg.Checkpoint] = {}
    out: list[sg.Checkpoint] = []
    for path in RECORDS:
        cp = unpack(path.read_bytes())
        if not cp.is_full:
            assert cp.info.parent_id is not None
            cp = apply_delta(whole[cp.info.parent_id], cp)
        whole[cp.info.id] = cp
        out.append(cp)
    return out


def test_golden_files_exist() -> None:
    meta = json.loads((FIXTURES / "v1-golden.json").read_text())
    assert len(RECORDS) == meta["records"] > 5


def test_every_golden_checkpoint_loads_and_resumes_to_the_recorded_output() -> None:
    expected = json.loads((FIXTURES / "v1-golden.json").read_text())["outputs"]
    checkpoints = _load_all()
    assert any(not cp.is_full for cp in map(unpack, (p.read_bytes() for p in RECORDS)))

    async def main() -> None:
        wf = build()
        fresh = await wf.run(INPUT)
        assert fresh.outputs == expected  # the engine still computes the recorded answer
        produced_at = None
        for cp in checkpoints:
            store = sg.MemoryCheckpointStore()
            await store.save(cp)
            session = wf.session("golden", store=store)
            result = await session.resume(cp.info.id)
            if produced_at is None and result.outputs == []:
                produced_at = cp.info.superstep
            if produced_at is None:
                assert result.outputs == expected, cp.info
            else:
                assert result.outputs == [], cp.info
            assert session.status is sg.RunStatus.IDLE

    asyncio.run(main())


@pytest.mark.parametrize("path", RECORDS[:3], ids=[p.name for p in RECORDS[:3]])
def test_golden_state_decodes(path: Path) -> None:
    cp = unpack(path.read_bytes())
    wf = build()
    if cp.is_full:
        state = cp.with_types(wf.types).state
        assert set(state) <= {"source", "seen"}


# -- version 2: chunked forms --------------------------------------------------------------

V2_RECORDS = sorted(FIXTURES.glob("v2-golden-*.ckpt"))
V2_CHUNKS = FIXTURES / "v2-golden-chunks"


def _v2_chunks() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in V2_CHUNKS.iterdir()}


def _load_v2() -> list[sg.Checkpoint]:
    from stepgraph.stores._record import attach

    chunks = _v2_chunks()
    whole: dict[str, sg.Checkpoint] = {}
    for path in V2_RECORDS:
        cp = unpack(path.read_bytes())
        assert cp.version == 2
        if not cp.is_full:
            assert cp.info.parent_id is not None
            cp = apply_delta(whole[cp.info.parent_id], cp)
        whole[cp.info.id] = attach(cp, chunks)
    return list(whole.values())


def test_v2_golden_files_exist_and_hold_every_chunked_form() -> None:
    from stepgraph import _chunks

    meta = json.loads((FIXTURES / "v2-golden.json").read_text())
    assert len(V2_RECORDS) == meta["records"] > 30
    chunks = _v2_chunks()
    assert len(chunks) == meta["chunks"]
    assert all(_chunks.chunk_id(data) == cid for cid, data in chunks.items())
    stored = [d for p in V2_RECORDS for d in unpack(p.read_bytes()).parts.values()]
    marks = {d[:2] for d in stored}
    # a long list, a list delta, a dict snapshot, a dict delta, a blob
    assert {b"\x00L", b"\x00D", b"\x00M", b"\x00E", b"\x00B"} <= marks, marks


def test_every_v2_golden_checkpoint_loads_exactly_and_resumes() -> None:
    from tests.golden_workflow import (
        CHUNKED_INPUT,
        GOLDEN_BLOB,
        Mood,
        Part,
        build_chunked,
        golden_item,
    )

    from stepgraph._parts import snapshot

    expected = json.loads((FIXTURES / "v2-golden.json").read_text())["outputs"]
    checkpoints = _load_v2()
    wf = build_chunked()

    async def main() -> None:
        assert (await wf.run(CHUNKED_INPUT)).outputs == expected
        for cp in checkpoints:
            cp = cp.with_types(wf.types)
            n = len(cp.state.get("history", []))
            assert cp.state.get("history", []) == [golden_item(i) for i in range(n)]
            assert cp.state.get("blob") == (GOLDEN_BLOB if n > 20 else None)
            if n:
                want = [Part(i, "said", Mood.CALM) for i in range(n)]
                assert cp.value(snapshot("collect")) == {"conversation": want, "n": n}
            store = sg.MemoryCheckpointStore()
            await store.save(cp)
            session = wf.session("golden-chunks", store=store)
            result = await session.resume(cp.info.id)
            if cp.has_queued_messages:
                assert result.outputs == expected, cp.info
            assert session.state["history"] == [golden_item(i) for i in range(CHUNKED_INPUT)]
            assert session.status is sg.RunStatus.IDLE

    asyncio.run(main())
