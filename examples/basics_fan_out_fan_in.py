"""Fan-out and fan-in: work in parallel, then join the results.

What it shows: `add_fan_out(src, [targets])` sending one message to several
executors, which run concurrently in the same superstep; `add_fan_in([sources],
dst)` delivering a `list[T]` to `dst` once every source has sent, one item per
source in the order of `sources` (never in order of arrival), even when one
branch takes an extra superstep to get there.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import stepgraph as sg


@dataclass(frozen=True)
class Quote:
    source: str
    price: float


class Supplier(sg.Executor):
    def __init__(self, id: str, price: float, seconds: float) -> None:
        super().__init__(id=id)
        self.price, self.seconds = price, seconds

    @sg.handler
    async def on_item(self, item: str, ctx: sg.Context[Quote]) -> None:
        await asyncio.sleep(self.seconds)  # stands in for an API call
        print(f"  {self.id} answered (superstep {ctx.superstep})")
        await ctx.send(Quote(self.id, self.price))


@sg.executor(id="add_tax")
async def add_tax(q: Quote, ctx: sg.Context[Quote]) -> None:
    """One branch takes an extra superstep; the join waits for it."""
    print(f"  add_tax (superstep {ctx.superstep})")
    await ctx.send(Quote(q.source + "+tax", round(q.price * 1.21, 2)))


@sg.executor(id="cheapest")
async def cheapest(quotes: list[Quote], ctx: sg.Context[None, str]) -> None:
    print(f"  cheapest got {[q.source for q in quotes]} (superstep {ctx.superstep})")
    best = min(quotes, key=lambda q: q.price)
    await ctx.yield_output(f"buy from {best.source} at {best.price:.2f}")


@sg.executor(id="request")
async def request(item: str, ctx: sg.Context[str]) -> None:
    await ctx.send(item)


def build() -> sg.Workflow[str]:
    slow = Supplier("slow", 9.50, 0.06)
    fast = Supplier("fast", 11.00, 0.01)
    abroad = Supplier("abroad", 8.00, 0.03)
    return (
        sg.WorkflowBuilder[str](start=request)
        .add_fan_out(request, [slow, fast, abroad])
        .add_edge(abroad, add_tax)
        .add_fan_in([slow, fast, add_tax], cheapest)  # the list comes in this order
        .build(name="fan-out-fan-in")
    )


async def main() -> None:
    t0 = time.perf_counter()
    result = await build().run("widget")
    print("OUTPUT", result.outputs[0])
    print(f"took {(time.perf_counter() - t0) * 1000:.0f} ms (the suppliers ran concurrently)")


if __name__ == "__main__":
    asyncio.run(main())
