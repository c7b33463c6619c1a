"""Executor policies: retry a flaky call, cache an expensive one, time out a slow one.

What it shows: `WorkflowBuilder.set_policy(executor, retry=sg.RetryPolicy(...),
cache=sg.CachePolicy(...), timeout=seconds)`; `ExecutorRetrying` events for
each failed attempt (what a failed attempt sent or wrote is discarded); a
cache hit replaying the recorded sends instead of running the handler again;
and a handler cancelled by its timeout, failing the run with
`ExecutorTimeoutError` as the cause.
"""

from __future__ import annotations

import asyncio

import stepgraph as sg


class Flaky(sg.Executor):
    """Fails twice, then works (a plain attribute: not rolled back between attempts)."""

    def __init__(self, id: str) -> None:
        super().__init__(id=id)
        self.calls = 0

    @sg.handler
    async def on_query(self, query: str, ctx: sg.Context[str]) -> None:
        self.calls += 1
        if self.calls < 3:
            raise ConnectionError(f"attempt {self.calls}: connection reset")
        await ctx.send(f"{query}: 42 results")


EXPENSIVE_CALLS: list[str] = []


@sg.executor(id="expensive")
async def expensive(query: str, ctx: sg.Context[str]) -> None:
    EXPENSIVE_CALLS.append(query)
    await ctx.send(f"{query}: computed")


@sg.executor(id="slow")
async def slow(query: str, ctx: sg.Context[str]) -> None:
    await asyncio.sleep(10)  # a call that hangs
    await ctx.send(query)


@sg.executor(id="show")
async def show(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(text)


def build(
    step: sg.Executor,
    retry: sg.RetryPolicy | None = None,
    cache: sg.CachePolicy | None = None,
    timeout: float | None = None,
) -> sg.Workflow[str]:
    return (
        sg.WorkflowBuilder[str](start=step)
        .add_edge(step, show)
        .set_policy(step, retry=retry, cache=cache, timeout=timeout)
        .build(name=f"policy-{step.id}")
    )


async def main() -> None:
    retry = sg.RetryPolicy(max_attempts=3, initial_delay=0.01, retry_on=(ConnectionError,))
    async for event in build(Flaky(id="search"), retry=retry).stream("cats"):
        if isinstance(event, sg.ExecutorRetrying):
            print(f"retrying {event.executor_id} (after {event.error}), waiting {event.delay}s")
        elif isinstance(event, sg.Output):
            print("OUTPUT retry:", event.value)

    session = build(expensive, cache=sg.CachePolicy(ttl=3600)).session()
    for query in ("dogs", "dogs", "birds"):
        result = await session.run(query)
        print("OUTPUT cache:", result.outputs[0])
    print("handler ran for:", EXPENSIVE_CALLS, "(the second 'dogs' came from the cache)")

    try:
        await build(slow, timeout=0.05).run("fish")
    except sg.ExecutorFailedError as exc:
        print("timeout:", type(exc.__cause__).__name__, "-", exc.__cause__)


if __name__ == "__main__":
    asyncio.run(main())
