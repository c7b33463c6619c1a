"""Tracing a run with OpenTelemetry: one span per run, superstep and handler invocation.

What it shows: `wf.session(..., tracer=OpenTelemetryTracer(provider))`, spans
nested run > superstep > executor, links from a receiver's span to the spans of
the executors that sent it messages, and checkpoint ids as span attributes.
Needs the `tracing` extra (OpenTelemetry); the spans are printed, not exported.
"""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import stepgraph as sg
from stepgraph.tracing import OpenTelemetryTracer


@sg.executor(id="fetch")
async def fetch(city: str, ctx: sg.Context[str]) -> None:
    await ctx.send(f"{city}: 21C")


@sg.executor(id="report")
async def report(line: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"weather {line}")


async def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    wf = sg.WorkflowBuilder[str](start=fetch).add_edge(fetch, report).build(name="weather")
    session = wf.session(
        "demo", store=sg.MemoryCheckpointStore(), tracer=OpenTelemetryTracer(provider)
    )
    result = await session.run("Lisbon")
    spans = exporter.get_finished_spans()
    ids = {s.context.span_id: s.name for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = ids.get(span.parent.span_id, "-") if span.parent else "-"
        links = [ids.get(link.context.span_id, "?") for link in span.links]
        attrs = {k: v for k, v in (span.attributes or {}).items() if k != "stepgraph.signature"}
        print(f"{span.name:28} parent={parent:20} links={links} {attrs}")
    print("OUTPUT", result.outputs[0])


if __name__ == "__main__":
    asyncio.run(main())
