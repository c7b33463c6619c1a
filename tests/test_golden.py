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
