"""The pure planner: where a sent message goes, and what the next superstep delivers.

No awaits and no I/O here. `Plan.route` runs at send time (so predicate and
selector errors are the sender's failure); `Plan.commit` runs at the barrier
and turns one superstep's routed sends into the next superstep's queue and the
fan-in buffers. The runner only executes what this module decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from . import _types
from ._edges import EdgeGroup, reads_state
from ._errors import RoutingError
from ._handlers import HandlerTable
from ._map import ItemSlot, MapBuffers, MapItem, MapSlot
from ._types import TypeSpec

__all__ = ["FanInSlot", "MapEdge", "Plan", "Queue", "Target"]

Queue = dict[int, list[Any]]
"""Undelivered messages: executor index -> messages in delivery order."""

FanInBuffers = dict[int, list[list[Any]]]
"""Fan-in group index -> one FIFO per source (in source order)."""


@dataclass(frozen=True, slots=True)
class FanInSlot:
    """Where a source's message waits in a fan-in group."""

    group: int
    position: int
    target: int


@dataclass(frozen=True, slots=True)
class MapEdge:
    """A compiled map edge: its worker, its collector (-1: none) and its concurrency limit."""

    worker: int
    collector: int
    max_concurrency: int | None


Target = int | FanInSlot | MapSlot | ItemSlot


class _Direct:
    __slots__ = ("dst", "when")

    def __init__(self, dst: int, when: Callable[[Any], bool] | None) -> None:
        self.dst = dst
        self.when = when


class _Switch:
    __slots__ = ("cases", "default")

    def __init__(self, cases: list[tuple[Callable[[Any], bool], int]], default: int | None) -> None:
        self.cases = cases
        self.default = default


class _Select:
    __slots__ = ("dsts", "ids", "selector")

    def __init__(
        self,
        dsts: dict[str, int],
        selector: Callable[[Any, Sequence[str]], Sequence[str]],
    ) -> None:
        self.dsts = dsts
        self.ids = tuple(dsts)
        self.selector = selector


class _FanIn:
    __slots__ = ("classes", "items", "slot")

    def __init__(self, slot: FanInSlot, items: tuple[TypeSpec, ...]) -> None:
        self.slot = slot
        self.items = items
        # Plain classes (no item or literal constraints) are checked with one isinstance.
        plain = all(s.args is None and s.literals is None for s in items)
        self.classes: tuple[type, ...] | None = tuple(s.origin for s in items) if plain else None

    def takes(self, message: object) -> bool:
        if self.classes is not None:
            return isinstance(message, self.classes)
        return any(_types.matches(message, s) for s in self.items)


class _Map:
    __slots__ = ("slot",)

    def __init__(self, slot: MapSlot) -> None:
        self.slot = slot


_Route = _Direct | _Switch | _Select | _FanIn | _Map


def _reads_state(r: _Route) -> bool:
    if isinstance(r, _Direct):
        return reads_state(r.when)
    if isinstance(r, _Switch):
        return any(reads_state(pred) for pred, _ in r.cases)
    return isinstance(r, _Select) and reads_state(r.selector)


class Plan:
    """Compiled routing of an immutable workflow graph."""

    __slots__ = (
        "collects",
        "fanin_sizes",
        "fanin_targets",
        "fast",
        "ids",
        "index",
        "map_workers",
        "maps",
        "reads_state",
        "routes",
        "tables",
    )

    def __init__(
        self, ids: Sequence[str], tables: Sequence[HandlerTable], groups: Sequence[EdgeGroup]
    ):
        self.ids = tuple(ids)
        self.index = {eid: i for i, eid in enumerate(self.ids)}
        self.tables = tuple(tables)
        routes: list[list[_Route]] = [[] for _ in self.ids]
        self.fanin_sizes: list[int] = []
        self.fanin_targets: list[int] = []
        self.maps: list[MapEdge] = []
        ix = self.index
        for g in groups:
            src = ix[g.sources[0]]
            if g.kind in ("direct", "fan_out"):
                conds = g.conditions or (None,) * len(g.targets)
                for t, cond in zip(g.targets, conds, strict=True):
                    routes[src].append(_Direct(ix[t], cond))
            elif g.kind == "switch":
                n = len(g.conditions)
                cases = [(c, ix[t]) for c, t in zip(g.conditions, g.targets[:n], strict=True) if c]
                routes[src].append(_Switch(cases, ix[g.targets[-1]] if g.has_default else None))
            elif g.kind == "multi_select":
                assert g.selector is not None
                routes[src].append(_Select({t: ix[t] for t in g.targets}, g.selector))
            elif g.kind == "map":
                worker = ix[g.targets[0]]
                collector = ix[g.targets[1]] if len(g.targets) > 1 else -1
                routes[src].append(_Map(MapSlot(len(self.maps), worker)))
                self.maps.append(MapEdge(worker, collector, g.max_concurrency))
            else:
                group = len(self.fanin_sizes)
                dst = ix[g.targets[0]]
                self.fanin_sizes.append(len(g.sources))
                self.fanin_targets.append(dst)
                items = self.tables[dst].list_items()
                for pos, s in enumerate(g.sources):
                    routes[ix[s]].append(_FanIn(FanInSlot(group, pos, dst), items))
        self.routes = tuple(tuple(r) for r in routes)
        self.reads_state = tuple(any(_reads_state(r) for r in rs) for rs in self.routes)
        """Per executor: some condition or selector of its edges reads the sender's state."""
        self.map_workers = frozenset(m.worker for m in self.maps)
        """Indexes of the executors that are some map's worker."""
        # Per map edge: what its collector takes as list items (checked once per item send).
        self.collects = tuple(
            _FanIn(FanInSlot(g, 0, m.collector), self.tables[m.collector].list_items())
            if m.collector >= 0
            else None
            for g, m in enumerate(self.maps)
        )
        # Fast path: a lone unconditional direct edge (chains) skips the generic loop.
        self.fast: tuple[int | None, ...] = tuple(
            r[0].dst if len(r) == 1 and isinstance(r[0], _Direct) and r[0].when is None else None
            for r in self.routes
        )

    def successors(self, src: int) -> tuple[str, ...]:
        """Ids of the executors `src` has edges to, in declaration order, each once."""
        out: dict[int, None] = {}
        for r in self.routes[src]:
            if isinstance(r, _Direct):
                out[r.dst] = None
            elif isinstance(r, _Switch):
                out.update((dst, None) for _, dst in r.cases)
                if r.default is not None:
                    out[r.default] = None
            elif isinstance(r, _Select):
                out.update((dst, None) for dst in r.dsts.values())
            else:
                out[r.slot.target] = None
        for m in self.maps:  # a worker's items send to its collector
            if m.worker == src and m.collector >= 0:
                out[m.collector] = None
        return tuple(self.ids[i] for i in out)

    def accepts(self, dst: int, message: object) -> bool:
        """True when some handler of executor `dst` takes `message`."""
        return self.tables[dst].resolve(message) is not None

    def route(self, src: int, message: object, to: str | None = None) -> list[Target]:
        """Targets of `message` sent by executor `src` (optionally narrowed by `to`).

        Raises:
            RoutingError: when the message reaches no target.
            Exception: whatever a condition or selector raises.
        """
        fast = self.fast[src]
        if fast is not None and to is None:
            table = self.tables[fast]
            if table.cached(type(message)) is not None or table.resolve(message) is not None:
                return [fast]
        out: list[Target] = []
        skipped: list[str] = []
        routes = self.routes[src]
        if to is not None:
            if to not in self.index:
                raise RoutingError(f"{self.ids[src]} sent to={to!r}, which is not an executor")
            want = self.index[to]
            # Only the edges leading to `to` are consulted: other edges' conditions and
            # selectors are not the sender's business for this message.
            routes = tuple(r for r in routes if want in self._targets_of(r))
            if not routes:
                raise RoutingError(
                    f"{self.ids[src]} sent to={to!r}, which is not a direct successor; "
                    f"successors: {sorted(self._successors(src))}"
                )
            for r in routes:
                self._follow(r, message, out, skipped)
            out = [t for t in out if (t if isinstance(t, int) else t.target) == want]
        else:
            for r in routes:
                self._follow(r, message, out, skipped)
        if not out:
            raise RoutingError(self._explain(src, message, to, skipped))
        return out

    def _follow(self, r: _Route, message: object, out: list[Target], skipped: list[str]) -> None:
        if isinstance(r, _Direct):
            # The target's type filter comes first: a condition only sees messages its
            # target could handle.
            if not self.accepts(r.dst, message):
                skipped.append(f"{self.ids[r.dst]} {self.tables[r.dst].why_not(message)}")
            elif r.when is not None and not r.when(message):
                skipped.append(f"condition of edge to {self.ids[r.dst]} is false")
            else:
                out.append(r.dst)
        elif isinstance(r, _Switch):
            for pred, dst in r.cases:
                if self.accepts(dst, message) and pred(message):
                    out.append(dst)
                    return
            if r.default is None:
                skipped.append("no switch case matched and the switch has no default")
            elif self.accepts(r.default, message):
                out.append(r.default)
            else:
                skipped.append(
                    f"switch default {self.ids[r.default]} has no handler for "
                    f"{type(message).__name__}"
                )
        elif isinstance(r, _Select):
            chosen = r.selector(message, r.ids)
            for eid in chosen:
                if eid not in r.dsts:
                    raise RoutingError(
                        f"multi-select selector returned {eid!r}, which is not one of its "
                        f"targets {list(r.ids)}"
                    )
                self._take(r.dsts[eid], message, out, skipped, "multi-select target")
            if not chosen:
                skipped.append("the multi-select selector chose no target")
        elif isinstance(r, _Map):
            self._map(r, message, out, skipped)
        elif r.takes(message):
            out.append(r.slot)
        else:
            skipped.append(
                f"fan-in into {self.ids[r.slot.target]} takes no {type(message).__name__} items"
            )

    def _map(self, r: _Map, message: object, out: list[Target], skipped: list[str]) -> None:
        worker = r.slot.target
        if not isinstance(message, list | tuple):
            skipped.append(f"map to {self.ids[worker]} takes a list or tuple of items")
            return
        values = cast("Sequence[object]", message)
        for n, item in enumerate(values):
            if not self.accepts(worker, item):
                raise RoutingError(
                    f"item {n} of the sequence mapped over {self.ids[worker]} is a "
                    f"{type(item).__name__}, which {self.ids[worker]} has no handler for"
                )
        out.append(r.slot)

    def _take(self, dst: int, message: object, out: list[Target], skipped: list[str], what: str):
        if not self.accepts(dst, message):
            raise RoutingError(f"{what} {self.ids[dst]} {self.tables[dst].why_not(message)}")
        out.append(dst)

    @staticmethod
    def _targets_of(r: _Route) -> set[int]:
        if isinstance(r, _Direct):
            return {r.dst}
        if isinstance(r, _Switch):
            found = {d for _, d in r.cases}
            if r.default is not None:
                found.add(r.default)
            return found
        if isinstance(r, _Select):
            return set(r.dsts.values())
        return {r.slot.target}

    def _successors(self, src: int) -> set[str]:
        return {self.ids[t] for r in self.routes[src] for t in self._targets_of(r)}

    def _explain(self, src: int, message: object, to: str | None, skipped: list[str]) -> str:
        who = self.ids[src]
        kind = type(message).__name__
        if not self.routes[src]:
            return (
                f"{who} sent a {kind} but has no outgoing edge; add an edge from {who!r}, "
                "or use ctx.yield_output() for a result of the run"
            )
        why = "; ".join(skipped) or "no edge took it"
        narrowed = f" (narrowed by to={to!r})" if to is not None else ""
        return f"message of type {kind} sent by {who} reached no target{narrowed}: {why}"

    def collect(self, item: ItemSlot, message: object, to: str | None) -> ItemSlot:
        """Target of `message` sent by an item of a collecting map: the item's slot.

        Raises:
            RoutingError: the collector takes no such items, or `to` names another executor.
        """
        dst = item.target
        if to is not None and to != self.ids[dst]:
            raise RoutingError(
                f"an item of a map sent to={to!r}; what the items of a map with a collector "
                f"send goes to its collector {self.ids[dst]!r}"
            )
        check = self.collects[item.group]
        if check is None or not check.takes(message):
            worker = self.ids[self.maps[item.group].worker]
            raise RoutingError(
                f"{worker} (item {item.index} of a map) sent a {type(message).__name__}, which "
                f"its collector {self.ids[dst]} takes no list items of"
            )
        return item

    def commit(
        self,
        sends: list[tuple[Target, Any]],
        queue: Queue,
        fanin: FanInBuffers,
        maps: MapBuffers | None = None,
    ) -> None:
        """Append one executor's routed sends to the next queue and the fan-in and map buffers."""
        for target, message in sends:
            if type(target) is int:
                box = queue.get(target)
                if box is None:
                    queue[target] = [message]
                else:
                    box.append(message)
                continue
            if isinstance(target, MapSlot | ItemSlot):
                assert maps is not None
                self._commit_map(target, message, queue, maps)
                continue
            assert isinstance(target, FanInSlot)
            bufs = fanin.get(target.group)
            if bufs is None:
                bufs = fanin[target.group] = [[] for _ in range(self.fanin_sizes[target.group])]
            bufs[target.position].append(message)
            if all(bufs):
                joined = [b.pop(0) for b in bufs]
                queue.setdefault(target.target, []).append(joined)
                if not any(bufs):
                    del fanin[target.group]

    def _commit_map(
        self, target: MapSlot | ItemSlot, message: Any, queue: Queue, maps: MapBuffers
    ) -> None:
        if isinstance(target, ItemSlot):
            maps.put(target, message)
            return
        edge = self.maps[target.group]
        if message or edge.collector < 0:
            items = maps.start(target.group, edge.collector, message)
            if items:
                queue.setdefault(edge.worker, []).extend(items)
        else:  # an empty sequence: the collector gets [] at once
            queue.setdefault(edge.collector, []).append([])

    def settle(
        self,
        maps: MapBuffers,
        item: ItemSlot,
        answered: str | None,
        requests: Sequence[Any] | None,
        queue: Queue,
    ) -> None:
        """An item's activation committed: when it completes its batch, queue the list."""
        done = maps.settle(item, answered, requests)
        if done is not None:
            queue.setdefault(item.target, []).append(done)

    def item_of(self, message: MapItem) -> ItemSlot:
        """The identity of the item a queued `MapItem` carries."""
        return ItemSlot(
            message.group, message.batch, message.index, self.maps[message.group].collector
        )
