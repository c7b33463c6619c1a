"""Loops: a cycle in the graph, bounded by `max_supersteps`.

What it shows: an executor that sends to itself along a conditional edge
until a condition ends the loop (here the Collatz walk to 1), the budget
`build(max_supersteps=...)`, which bounds each invocation (`run`, `respond`,
`resume`), not the session's life; `ConvergenceError` when a run still has
messages at the limit, the session left `FAILED` at its last committed
superstep, and `session.resume()` granting another budget to finish.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import stepgraph as sg


@dataclass(frozen=True)
class Walk:
    start: int
    n: int
    steps: int = 0


class Collatz(sg.Executor):
    @sg.handler
    async def on_start(self, n: int, ctx: sg.Context[Walk]) -> None:
        await ctx.send(Walk(n, n))

    @sg.handler
    async def on_walk(self, w: Walk, ctx: sg.Context[Walk]) -> None:
        n = w.n // 2 if w.n % 2 == 0 else 3 * w.n + 1
        await ctx.send(Walk(w.start, n, w.steps + 1))


def arrived(w: Walk) -> bool:
    return w.n == 1


@sg.executor(id="done")
async def done(w: Walk, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"{w.start} reaches 1 after {w.steps} steps")


def build() -> sg.Workflow[int]:
    step = Collatz(id="collatz")
    return (
        sg.WorkflowBuilder[int](start=step)
        .add_edge(step, step, when=lambda w: not arrived(w))  # the cycle
        .add_edge(step, done, when=arrived)  # the way out
        .build(name="loops", max_supersteps=40)
    )


async def main() -> None:
    workflow = build()
    result = await workflow.run(6)  # 8 steps: well within the budget
    print("OUTPUT", result.outputs[0])

    session = workflow.session("long-walk")
    run = session.run(27)  # 111 steps: needs three budgets of 40 supersteps
    while True:
        try:
            result = await run
            break
        except sg.ConvergenceError as exc:
            print(f"budget spent at superstep {session.superstep}: {session.status.name}")
            print("  ", str(exc).split(";")[0])
            run = session.resume()  # continue from the last committed superstep
    print("OUTPUT", result.outputs[0])
    print("status:", result.status.name)


if __name__ == "__main__":
    asyncio.run(main())
