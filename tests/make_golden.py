"""Write the golden checkpoint files (run only with a deliberate format change)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.golden_workflow import INPUT, build

from stepgraph.stores import MemoryCheckpointStore
from stepgraph.stores._record import pack

OUT = Path(__file__).parent / "fixtures" / "checkpoints"


class Recording(MemoryCheckpointStore):
    """Keeps the records exactly as a durable store would write them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[bytes] = []

    async def save(self, checkpoint):  # type: ignore[no-untyped-def]
        self.records.append(pack(checkpoint))
        await super().save(checkpoint)


async def main() -> None:
    from stepgraph.testing import ManualClock, SequentialIds

    store = Recording()
    session = build().session("golden", store=store, clock=ManualClock(), ids=SequentialIds("g"))
    result = await session.run(INPUT)
    OUT.mkdir(parents=True, exist_ok=True)
    for n, record in enumerate(store.records):
        (OUT / f"v1-golden-{n:03d}.ckpt").write_bytes(record)
    (OUT / "v1-golden.json").write_text(
        json.dumps({"outputs": result.outputs, "records": len(store.records)}, indent=2) + "\n"
    )
    print(f"wrote {len(store.records)} records; outputs {result.outputs}")


if __name__ == "__main__":
    asyncio.run(main())
