"""Tracing as an interceptor: run, superstep and executor spans, with links to senders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._interceptors import Interceptor, Next, RunCall, SuperstepCall

if TYPE_CHECKING:
    from ._context import Activation
    from ._events import RunStatus
    from .tracing import Tracer

__all__ = ["Tracing"]


class Tracing(Interceptor):
    """Opens a `stepgraph.run`, `stepgraph.superstep` and `stepgraph.executor <id>` span.

    The executor span of a map item carries the item's index (`stepgraph.item`).

    A receiver's executor span links to the spans of the invocations that sent
    it messages in the previous superstep. One per session: it remembers those
    senders between supersteps.
    """

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.links: dict[int, list[Any]] = {}  # receiver index -> sender span contexts

    async def run(self, call: RunCall, next: Next[RunCall, RunStatus]) -> RunStatus:
        attributes = {
            "stepgraph.session_id": call.session_id,
            "stepgraph.workflow": call.workflow.name,
            "stepgraph.signature": call.workflow.signature,
        }
        with self.tracer.span("stepgraph.run", attributes) as span:
            status = await next(call)
            span.set_attribute("stepgraph.status", status.name)
            if call.content.head is not None:
                span.set_attribute("stepgraph.checkpoint_id", call.content.head)
            return status

    async def superstep(self, call: SuperstepCall, next: Next[SuperstepCall, None]) -> None:
        attributes = {"stepgraph.superstep": call.number}
        with self.tracer.span("stepgraph.superstep", attributes) as span:
            await next(call)
            if call.content.head is not None:
                span.set_attribute("stepgraph.checkpoint_id", call.content.head)
        self.links = _senders(call.activations)

    async def activation(self, act: Activation, next: Next[Activation, None]) -> None:
        eid = act.context.executor_id
        attributes = {
            "stepgraph.executor_id": eid,
            "stepgraph.superstep": act.superstep,
            "stepgraph.session_id": act.context.session_id,
            "stepgraph.messages": len(act.messages),
        }
        if act.item is not None:  # one item of a map: which one
            attributes["stepgraph.item"] = act.item.index
        links = self.links.get(act.index, ())
        with self.tracer.span(f"stepgraph.executor {eid}", attributes, links) as span:
            act.span = span.get_span_context()
            await next(act)


def _senders(acts: list[Activation]) -> dict[int, list[Any]]:
    """Which invocations sent to whom: receivers' spans link to them."""
    links: dict[int, list[Any]] = {}
    for act in acts:
        for target, _ in act.sends:
            index = target if isinstance(target, int) else target.target
            bucket = links.setdefault(index, [])
            if act.span is not None and act.span not in bucket:
                bucket.append(act.span)
    return links
