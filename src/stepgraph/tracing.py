"""Tracing with OpenTelemetry (extra `tracing`): spans for runs, supersteps and handlers.

```python
from stepgraph.tracing import OpenTelemetryTracer

session = workflow.session("s", tracer=OpenTelemetryTracer())  # the global provider, or pass one
```

Spans: `stepgraph.run` (attributes: session id, workflow name and signature,
final status), a child `stepgraph.superstep` per superstep (its number and the
checkpoint saved after it), and a child `stepgraph.executor <id>` per executor
invocation, linked to the spans of the executors whose messages it received.
Errors are recorded on the spans they pass through.

Nothing here is imported, and nothing is paid, by a session without a tracer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["OpenTelemetryTracer", "Span", "Tracer"]


@runtime_checkable
class Span(Protocol):
    """What the engine does with a span while it is open."""

    def set_attribute(self, key: str, value: Any) -> Any:
        """Attach an attribute."""
        ...

    def get_span_context(self) -> Any:
        """The span's context (used to link receivers to senders)."""
        ...


@runtime_checkable
class Tracer(Protocol):
    """The engine's tracing hook: opens named spans as the current span."""

    def span(
        self, name: str, attributes: Mapping[str, Any], links: Sequence[Any] = ()
    ) -> contextlib.AbstractContextManager[Span]:
        """Open a span (child of the current one) linked to `links` span contexts."""
        ...


class OpenTelemetryTracer:
    """A `Tracer` on the OpenTelemetry API.

    Args:
        tracer_provider: the provider to use; the global one when None.
        name: the instrumentation scope name.
    """

    def __init__(self, tracer_provider: Any = None, *, name: str = "stepgraph") -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "tracing needs OpenTelemetry: pip install 'stepgraph[tracing]'"
            ) from exc
        self._tracer: Any = trace.get_tracer(name, tracer_provider=tracer_provider)

    @contextlib.contextmanager
    def span(
        self, name: str, attributes: Mapping[str, Any], links: Sequence[Any] = ()
    ) -> Generator[Span]:
        """Open `name` as the current span; exceptions are recorded and set the status."""
        from opentelemetry.trace import Link

        with self._tracer.start_as_current_span(
            name,
            attributes=dict(attributes),
            links=[Link(c) for c in links],
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            yield span
