"""Tracing: span names, nesting, links from receivers to senders, attributes, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import stepgraph as sg
from stepgraph.tracing import OpenTelemetryTracer


@pytest.fixture
def traced() -> tuple[OpenTelemetryTracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OpenTelemetryTracer(provider), exporter


@sg.executor(id="split")
async def split(n: int, ctx: sg.Context[int]) -> None:
    await ctx.send(n)


@sg.executor(id="left")
async def left(n: int, ctx: sg.Context[int]) -> None:
    await ctx.send(n + 1)


@sg.executor(id="right")
async def right(n: int, ctx: sg.Context[int]) -> None:
    await ctx.send(n + 2)


class Join(sg.Executor):
    @sg.handler
    async def on_list(self, items: list[int], ctx: sg.Context[None, int]) -> None:
        if sum(items) < 0:
            raise ValueError("negative")
        await ctx.yield_output(sum(items))


def diamond() -> sg.Workflow[int]:
    return (
        sg.WorkflowBuilder[int](start=split)
        .add_fan_out(split, [left, right])
        .add_fan_in([left, right], Join(id="join"))
        .build(name="diamond")
    )


def by_name(spans: Any) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def test_spans_nest_and_link(traced: tuple[OpenTelemetryTracer, InMemorySpanExporter]) -> None:
    tracer, exporter = traced

    async def main() -> None:
        s = diamond().session("traced-1", store=sg.MemoryCheckpointStore(), tracer=tracer)
        assert (await s.run(1)).outputs == [5]

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count("stepgraph.run") == 1
    assert names.count("stepgraph.superstep") == 3
    named = by_name(spans)
    run = named["stepgraph.run"]
    assert run.attributes is not None
    assert run.attributes["stepgraph.session_id"] == "traced-1"
    assert run.attributes["stepgraph.workflow"] == "diamond"
    assert run.attributes["stepgraph.status"] == "IDLE"
    supersteps = [s for s in spans if s.name == "stepgraph.superstep"]
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in supersteps)
    assert sorted(s.attributes["stepgraph.superstep"] for s in supersteps) == [1, 2, 3]  # type: ignore[index]
    assert all("stepgraph.checkpoint_id" in (s.attributes or {}) for s in supersteps)
    left_span, right_span = named["stepgraph.executor left"], named["stepgraph.executor right"]
    step2 = next(s for s in supersteps if s.attributes["stepgraph.superstep"] == 2)  # type: ignore[index]
    assert left_span.parent is not None
    assert left_span.parent.span_id == step2.context.span_id
    assert right_span.parent is not None
    assert right_span.parent.span_id == step2.context.span_id
    # the join received messages from left and right: its span links to both
    join = named["stepgraph.executor join"]
    linked = {link.context.span_id for link in join.links}
    assert linked == {left_span.context.span_id, right_span.context.span_id}
    assert [link.context.span_id for link in left_span.links] == [
        named["stepgraph.executor split"].context.span_id
    ]


def test_errors_are_recorded(traced: tuple[OpenTelemetryTracer, InMemorySpanExporter]) -> None:
    tracer, exporter = traced

    async def main() -> None:
        with pytest.raises(sg.ExecutorFailedError):
            await diamond().session(tracer=tracer).run(-10)

    asyncio.run(main())
    named = by_name(exporter.get_finished_spans())
    join = named["stepgraph.executor join"]
    assert join.status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in join.events)
    assert named["stepgraph.run"].status.status_code is StatusCode.ERROR


def test_no_tracer_imports_nothing() -> None:
    import subprocess
    import sys

    code = (
        "import sys, asyncio, stepgraph as sg\n"
        "@sg.executor(id='a')\n"
        "async def a(n: int, ctx: sg.Context[None, int]) -> None:\n"
        "    await ctx.yield_output(n)\n"
        "asyncio.run(sg.WorkflowBuilder(start=a).build().run(1))\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@sg.executor(id="plan")
async def plan(n: int, ctx: sg.Context[list[int]]) -> None:
    await ctx.send(list(range(n)))


@sg.executor(id="square")
async def square(x: int, ctx: sg.Context[int]) -> None:
    await ctx.send(x * x)


@sg.executor(id="gather")
async def gather(xs: list[int], ctx: sg.Context[None, list[int]]) -> None:
    await ctx.yield_output(xs)


def test_a_map_items_span_carries_its_item_index(
    traced: tuple[OpenTelemetryTracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = traced
    wf = sg.WorkflowBuilder[int](start=plan).add_map(plan, square, gather).build(name="map")

    async def main() -> sg.RunResult:
        return await wf.session(tracer=tracer).run(3)

    assert asyncio.run(main()).outputs == [[0, 1, 4]]
    spans = exporter.get_finished_spans()
    items = [s for s in spans if s.name == "stepgraph.executor square"]
    assert sorted((s.attributes or {})["stepgraph.item"] for s in items) == [0, 1, 2]  # type: ignore[type-var]
    plan_span = by_name(spans)["stepgraph.executor plan"]
    for s in items:  # each item links to the source that sent the sequence
        assert [link.context.span_id for link in s.links] == [plan_span.context.span_id]
    others = [s for s in spans if s.name.startswith("stepgraph.executor") and s not in items]
    assert [s.name for s in others if "stepgraph.item" in (s.attributes or {})] == []
