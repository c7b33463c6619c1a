"""Edge declarations: what the builder records and the graph signature describes.

Users meet only `Case` (a switch branch). The builder turns every `add_*`
call into one `EdgeGroup`; `_planner` compiles the groups into routes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._names import module_of

if TYPE_CHECKING:
    from ._executor import Executor
    from ._state import StateView

__all__ = ["Case", "EdgeGroup", "EdgeKind", "qualname", "reads_state", "routing_state"]

EdgeKind = Literal["direct", "fan_out", "fan_in", "switch", "multi_select", "map"]


@dataclass(frozen=True, slots=True)
class Case:
    """One branch of `WorkflowBuilder.add_switch`: the first case whose `when` holds wins.

    Attributes:
        when: predicate over the message; its exceptions fail the sender.
        target: the executor (object or id) that receives the message.
    """

    when: Callable[[Any], bool]
    target: Executor | str


@dataclass(frozen=True, slots=True)
class EdgeGroup:
    """One `add_*` call of the builder, with executor ids resolved.

    Attributes:
        kind: the edge kind.
        sources: source ids (several only for fan-in).
        targets: target ids (for a switch: one per case, then the default).
        conditions: `when` predicates (direct edge: one or None; switch: one per case).
        has_default: a switch whose last target is the default.
        selector: the multi-select selector.
        max_concurrency: a map's limit on items of one batch running at once (None: all).

    A map edge's targets are its worker, then its collector when it has one.
    """

    kind: EdgeKind
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    conditions: tuple[Callable[[Any], bool] | None, ...] = ()
    has_default: bool = False
    selector: Callable[[Any, Sequence[str]], Sequence[str]] | None = None
    max_concurrency: int | None = None

    def describe(self) -> dict[str, object]:
        """A JSON-able description used by the graph signature and mismatch messages."""
        out: dict[str, object] = {
            "kind": self.kind,
            "sources": list(self.sources),
            "targets": list(self.targets),
        }
        conds = [qualname(c) for c in self.conditions]
        if any(conds):
            out["conditions"] = conds
        if self.has_default:
            out["default"] = self.targets[-1]
        if self.selector is not None:
            out["selector"] = qualname(self.selector)
        if self.max_concurrency is not None:
            out["max_concurrency"] = self.max_concurrency
        return out


routing_state: ContextVar[StateView | None] = ContextVar("stepgraph_routing_state", default=None)
"""The sender's state view while its message is routed, for conditions that read state.

Set by `Context.send` only for senders with such a condition (`reads_state`),
so other sends pay nothing; a condition called elsewhere sees None.
"""


def reads_state(fn: object) -> bool:
    """True for a condition or selector that declares `reads_state = True` (declarative ones)."""
    return getattr(fn, "reads_state", False) is True


def qualname(obj: object) -> str | None:
    """`module.qualname` of a function, stable across processes (no `hash()`)."""
    if obj is None:
        return None
    module = module_of(obj)
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"
