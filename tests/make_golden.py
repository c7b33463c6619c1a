"""Write the golden checkpoint files (run only with a deliberate format change).

The version-1 files (`v1-golden-*`) were written by the stepgraph of format 1
and are kept as they are: they must keep loading. This writes the files of the
current format, version 2: the records of a session of the golden workflow of
chunked values (`v2-golden-*.ckpt`, as a durable store writes them) and the
chunks they reference (`v2-golden-chunks/<id>`).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.golden_workflow import CHUNKED_INPUT, build_chunked

from stepgraph.stores import MemoryCheckpointStore
from stepgraph.stores._record import pack

OUT = Path(__file__).parent / "fixtures" / "checkpoints"


class Recording(MemoryCheckpointStore):
    """Keeps the records and chunks exactly as a durable store would write them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[bytes] = []
        self.chunks: dict[str, bytes] = {}

    async def save(self, checkpoint):  # type: ignore[no-untyped-def]
        self.records.append(pack(checkpoint))
        self.chunks.update(checkpoint.chunks)
        await super().save(checkpoint)


async def main() -> None:
    from stepgraph.testing import ManualClock, SequentialIds

    store = Recording()
    session = build_chunked().session(
        "golden-chunks", store=store, clock=ManualClock(), ids=SequentialIds("c")
    )
    result = await session.run(CHUNKED_INPUT)
    OUT.mkdir(parents=True, exist_ok=True)
    for n, record in enumerate(store.records):
        (OUT / f"v2-golden-{n:03d}.ckpt").write_bytes(record)
    chunks = OUT / "v2-golden-chunks"
    chunks.mkdir(exist_ok=True)
    for cid, data in store.chunks.items():
        (chunks / cid).write_bytes(data)
    meta = {"outputs": result.outputs, "records": len(store.records), "chunks": len(store.chunks)}
    (OUT / "v2-golden.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(store.records)} records, {len(store.chunks)} chunks; {result.outputs}")


if __name__ == "__main__":
    asyncio.run(main())
