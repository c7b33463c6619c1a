"""The functional API: a workflow written as one async function.

What it shows: `@sg.step` functions whose results are recorded, two of them
run concurrently with `asyncio.gather`; `await sg.request(...)` pausing the
session for a human answer; `sg.context()` for shared state; the return value
as the run's output. The session lives in a SQLite file: the answer comes
from a new store, workflow and session object (as from another process), and
the function re-runs from the top without running finished steps again.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

import stepgraph as sg

RAN: list[str] = []  # which step bodies actually ran, in this process


@dataclass(frozen=True)
class Quote:
    vendor: str
    price: float


@sg.step
async def fetch_quote(vendor: str, item: str) -> Quote:
    RAN.append(f"fetch_quote {vendor}")
    await asyncio.sleep(0.01)  # a slow outside call
    return Quote(vendor, {"acme": 980.0, "globex": 1040.0}[vendor] * len(item) / 6)


@sg.step
async def place_order(quote: Quote) -> str:
    RAN.append("place_order")
    return f"PO-{quote.vendor}-{quote.price:.2f}"


@sg.workflow(types=[Quote])
async def purchase(item: str) -> str:
    quotes = await asyncio.gather(fetch_quote("acme", item), fetch_quote("globex", item))
    best = min(quotes, key=lambda q: q.price)
    sg.context().state.set("best", best)
    approved = await sg.request(f"buy {item} from {best.vendor} at {best.price:.2f}?", bool)
    if not approved:
        return f"not bought: {item}"
    return await place_order(best)


async def main(db: Path) -> None:
    store = sg.SqliteCheckpointStore(db)
    try:
        result = await purchase.session("buyer-1", store=store).run("laptop")
        (req,) = result.pending_requests
        print(f"status: {result.status.name}; asked: {req.payload}")
        print(f"steps run so far: {RAN}")
    finally:
        await store.aclose()

    store = sg.SqliteCheckpointStore(db)  # later, maybe in another process
    try:
        session = purchase.session("buyer-1", store=store)
        await session.load()
        print(f"reopened: {session.status.name}, best = {session.state['best']}")
        RAN.clear()
        done = await session.respond({req.id: True})
        for output in done.outputs:
            print(f"OUTPUT {output}")
        print(f"steps run after the answer: {RAN}")
        print(f"status: {done.status.name}")
    finally:
        await store.aclose()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp) / "purchases.db"))
