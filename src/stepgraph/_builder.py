"""`WorkflowBuilder`: declare executors and edges, then `build()` a validated `Workflow`.

Executors are referred to by object or by id. Declaration order (the order in
which the builder first saw each executor, the start first) decides delivery
order within a superstep and commit order at the barrier.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Generic, Self

from typing_extensions import TypeVar

from . import _types
from ._edges import Case, EdgeGroup, EdgeKind
from ._errors import GraphError, GraphWarning
from ._executor import Executor, is_stateful
from ._handlers import HandlerTable
from ._migrations import Migration
from ._policies import NO_POLICY, CachePolicy, ExecutorPolicy, RetryPolicy
from ._requests import ExecutorFailure
from ._types import ANY, TypeSpec
from ._workflow import Workflow

__all__ = ["WorkflowBuilder"]

InT = TypeVar("InT", default=Any)
Ref = Executor | str


class WorkflowBuilder(Generic[InT]):
    """Declares a workflow graph; `build()` validates it and returns a `Workflow`.

    Args:
        start: the executor that receives the run's input (object or id).
    """

    def __init__(self, start: Ref) -> None:
        self._executors: dict[str, Executor] = {}
        self._problems: list[str] = []
        self._groups: list[tuple[EdgeKind, list[str], list[str], dict[str, Any]]] = []
        self._types: list[type] = []
        self._policies: dict[str, ExecutorPolicy] = {}
        self._migrations: dict[str, Migration] = {}
        self._error_routes: dict[str | None, str] = {}  # source (None: every executor) -> handler
        self._start = self._ref(start)

    # -- registration ---------------------------------------------------------------------

    def _ref(self, ref: Ref) -> str:
        if isinstance(ref, Executor):
            eid = getattr(ref, "id", None)
            if not isinstance(eid, str):
                raise GraphError(
                    f"{type(ref).__qualname__} has no id: call super().__init__(id=...) "
                    "in its __init__"
                )
            known = self._executors.get(eid)
            if known is None:
                self._executors[eid] = ref
            elif known is not ref:
                self._problems.append(
                    f"duplicate executor id {eid!r}: {known!r} and {ref!r} are different "
                    "objects; give each executor a unique id"
                )
            return eid
        if isinstance(ref, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            return ref
        if isinstance(ref, type) and issubclass(ref, Executor):
            raise GraphError(
                f"got the class {ref.__qualname__}, not an executor: pass an instance: "
                f"{ref.__qualname__}(id=...)"
            )
        raise GraphError(f"expected an Executor or an executor id, got {type(ref).__name__}")

    def _add(self, kind: EdgeKind, srcs: Sequence[Ref], dsts: Sequence[Ref], **extra: Any) -> Self:
        self._groups.append(
            (kind, [self._ref(s) for s in srcs], [self._ref(d) for d in dsts], extra)
        )
        return self

    def add_edge(self, src: Ref, dst: Ref, *, when: Callable[[Any], bool] | None = None) -> Self:
        """Add an edge; with `when`, only messages for which `when(message)` holds travel it."""
        if when is not None and not callable(when):
            raise GraphError(f"when= must be callable, got {type(when).__name__}")
        return self._add("direct", [src], [dst], when=when)

    def add_chain(self, executors: Sequence[Ref]) -> Self:
        """Add edges a -> b -> c ... along the sequence."""
        if len(executors) < 2:
            raise GraphError("add_chain needs at least two executors")
        for a, b in itertools.pairwise(executors):
            self._add("direct", [a], [b], when=None)
        return self

    def add_fan_out(self, src: Ref, dsts: Sequence[Ref]) -> Self:
        """Send every message of `src` to each of `dsts` that accepts it."""
        if not dsts:
            raise GraphError("add_fan_out needs at least one target")
        return self._add("fan_out", [src], dsts)

    def add_fan_in(self, srcs: Sequence[Ref], dst: Ref) -> Self:
        """`dst` receives `list[T]`, one item per source in the order of `srcs`, once all sent."""
        if not srcs:
            raise GraphError("add_fan_in needs at least one source")
        return self._add("fan_in", srcs, [dst])

    def add_switch(self, src: Ref, cases: Sequence[Case], *, default: Ref | None = None) -> Self:
        """Route each message of `src` to the first case whose `when` holds, else `default`."""
        if not cases:
            raise GraphError("add_switch needs at least one Case")
        for case in cases:
            if not isinstance(case, Case):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise GraphError(f"add_switch takes sg.Case objects, got {type(case).__name__}")
            if not callable(case.when):
                raise GraphError("every Case needs a callable when=")
        targets = [c.target for c in cases] + ([default] if default is not None else [])
        conds = [c.when for c in cases]
        return self._add(
            "switch", [src], targets, conditions=conds, has_default=default is not None
        )

    def add_multi_select(
        self,
        src: Ref,
        dsts: Sequence[Ref],
        selector: Callable[[Any, Sequence[str]], Sequence[str]],
    ) -> Self:
        """Route each message of `src` to the targets `selector(message, target_ids)` returns."""
        if not dsts:
            raise GraphError("add_multi_select needs at least one target")
        if not callable(selector):
            raise GraphError("add_multi_select needs a callable selector")
        return self._add("multi_select", [src], dsts, selector=selector)

    def add_map(
        self,
        source: Ref,
        worker: Ref,
        collect: Ref | None = None,
        *,
        max_concurrency: int | None = None,
    ) -> Self:
        """Run `worker` once per item of every sequence `source` sends, concurrently.

        `source` sends a `list[T]` (any list or tuple) over the map edge; in the
        next superstep each item is its own activation of a fresh instance of
        `worker` (so items never share instance state), at most
        `max_concurrency` items of one sequence at a time. With `collect`, what
        the items send is gathered and delivered to `collect` as one `list[R]`
        in item order (each item's messages in send order; an item that sends
        nothing adds nothing, so send a value that carries the item when you
        need to tell) in the superstep after the last item finishes; an empty
        sequence delivers `[]`. Without `collect`, the items' messages follow
        the worker's own edges, in item order.
        """
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int)  # pyright: ignore[reportUnnecessaryIsInstance]
            or isinstance(max_concurrency, bool)
            or max_concurrency < 1
        ):
            raise GraphError(
                f"add_map: max_concurrency must be a positive int or None, got {max_concurrency!r}"
            )
        targets = [worker] if collect is None else [worker, collect]
        return self._add("map", [source], targets, max_concurrency=max_concurrency)

    def add_error_route(self, source: Ref | Sequence[Ref] | None, handler: Ref) -> Self:
        """Deliver an executor's failures to `handler` instead of failing the run.

        When an executor of `source` still fails after its retry policy, its
        superstep commits everything else it did (the other activations, the
        failed one's effects discarded) and `handler` receives an
        `sg.ExecutorFailure` in the next superstep. `source=None` sets the
        workflow-wide default: every executor without a route of its own (but
        the handler itself) gets this one. Without a route, a failure fails the
        run as before.
        """
        target = self._ref(handler)
        if source is None:
            self._error_routes[None] = target
            return self
        refs = [source] if isinstance(source, str | Executor) else list(source)
        for ref in refs:
            self._error_routes[self._ref(ref)] = target
        return self

    def register_types(self, *types: type) -> Self:
        """Declare extra types that may be stored in checkpoints (state values, payloads)."""
        for t in types:
            if not isinstance(t, type):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise GraphError(f"register_types takes classes, got {t!r}")
            self._types.append(t)
        return self

    def set_policy(
        self,
        executor: Ref,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        cache: CachePolicy | None = None,
    ) -> Self:
        """Give one executor a retry policy, a per-invocation timeout and/or a cache policy."""
        if timeout is not None and timeout <= 0:
            raise GraphError(f"timeout must be positive seconds, got {timeout!r}")
        eid = self._ref(executor)
        self._policies[eid] = ExecutorPolicy(retry, timeout, cache)
        return self

    def migrate(self, from_version: str | int, fn: Migration) -> Self:
        """Register how checkpoints of graph version `from_version` become this version's.

        `fn` receives a `MigrationData` (state, executor snapshots, queued messages,
        pending requests) decoded from the old checkpoint and returns the new one.
        """
        if not callable(fn):
            raise GraphError("migrate() takes a callable (MigrationData) -> MigrationData")
        self._migrations[str(from_version)] = fn
        return self

    # -- build ------------------------------------------------------------------------------

    def build(
        self,
        name: str | None = None,
        max_supersteps: int = 100,
        *,
        version: str | int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        cache: CachePolicy | None = None,
        run_timeout: float | None = None,
    ) -> Workflow[InT]:
        """Validate the graph and return an immutable `Workflow`.

        Args:
            name: the workflow name.
            max_supersteps: supersteps per invocation before `ConvergenceError`.
            version: the graph version recorded in checkpoints (see `migrate`).
            retry: default retry policy of every executor.
            timeout: default per-invocation handler timeout, in seconds.
            cache: default cache policy of every executor.
            run_timeout: default timeout of a whole run, in seconds.

        Raises:
            GraphError: the graph is invalid (the message names executors and types).
        """
        if not isinstance(max_supersteps, int) or max_supersteps < 1:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise GraphError(f"max_supersteps must be a positive int, got {max_supersteps!r}")
        problems = list(self._problems)
        for kind, srcs, dsts, _ in self._groups:
            for eid in [*srcs, *dsts]:
                if eid not in self._executors:
                    problems.append(
                        f"{kind} edge refers to unknown executor {eid!r}: pass the executor "
                        f"object itself at least once (for example add_edge(src, {eid}_executor)) "
                        "before referring to it by id"
                    )
        if self._start not in self._executors:
            problems.append(f"start executor {self._start!r} is not part of the graph")
        if problems:
            raise GraphError("invalid workflow: " + "; ".join(dict.fromkeys(problems)))
        tables = {eid: ex.handler_table() for eid, ex in self._executors.items()}
        for eid, table in tables.items():
            if not table.handlers:
                problems.append(f"executor {eid!r} has no handlers; mark methods with @handler")
        groups = self._edge_groups()
        for group in groups:
            problems.extend(_check_group(group, tables, self._executors))
        problems.extend(_check_duplicates(groups))
        if problems:
            raise GraphError("invalid workflow: " + "; ".join(dict.fromkeys(problems)))
        unknown = set(self._policies) - set(self._executors)
        if unknown:
            raise GraphError(f"set_policy names unknown executors {sorted(unknown)}")
        routes = self._routes(tables)
        _warn_unreachable(self._start, list(self._executors), groups, routes)
        default = ExecutorPolicy(retry, timeout, cache)
        return Workflow(
            name=name or f"workflow-{self._start}",
            executors=list(self._executors.values()),
            groups=groups,
            start=self._start,
            max_supersteps=max_supersteps,
            types=self._types,
            policies=[self._policies.get(e, NO_POLICY).merged(default) for e in self._executors],
            run_timeout=run_timeout,
            version=None if version is None else str(version),
            migrations=dict(self._migrations),
            error_routes=routes,
        )

    def _edge_groups(self) -> list[EdgeGroup]:
        """The declared edges as `EdgeGroup`s, in declaration order."""
        return [
            EdgeGroup(
                kind=kind,
                sources=tuple(srcs),
                targets=tuple(dsts),
                conditions=tuple(
                    extra.get("conditions", [extra.get("when")] if "when" in extra else [])
                ),
                has_default=extra.get("has_default", False),
                selector=extra.get("selector"),
                max_concurrency=extra.get("max_concurrency"),
            )
            for kind, srcs, dsts, extra in self._groups
        ]

    def _routes(self, tables: dict[str, HandlerTable]) -> dict[str, str]:
        """Each routed executor's error handler, checked."""
        problems: list[str] = []
        for src, dst in self._error_routes.items():
            for eid in (src, dst):
                if eid is not None and eid not in self._executors:
                    problems.append(
                        f"add_error_route names unknown executor {eid!r}: pass the executor "
                        "object itself at least once"
                    )
            if dst in tables and not _types.compatible(_FAILURE, tables[dst].accepts):
                problems.append(
                    f"error route handler {dst!r} has no handler for sg.ExecutorFailure (it "
                    f"accepts {tables[dst].describe_accepts()}); add one"
                )
        if problems:
            raise GraphError("invalid workflow: " + "; ".join(dict.fromkeys(problems)))
        default = self._error_routes.get(None)
        routes = {s: d for s, d in self._error_routes.items() if s is not None}
        if default is not None:
            for eid in self._executors:
                if eid != default:
                    routes.setdefault(eid, default)
        return routes


_FAILURE = (TypeSpec(ExecutorFailure),)


def _names(specs: tuple[TypeSpec, ...]) -> str:
    return " | ".join(_types.describe(s) for s in specs) or "nothing"


def _check_map(
    g: EdgeGroup, tables: dict[str, HandlerTable], executors: dict[str, Executor]
) -> list[str]:
    """A map edge: a sequence of what the worker accepts in, a list of what it sends out."""
    src, worker = g.sources[0], g.targets[0]
    problems: list[str] = []
    if is_stateful(executors[worker]):
        problems.append(
            f"map worker {worker!r} keeps state (snapshot()/restore()); every item runs on a "
            "fresh instance, so a map worker must not keep state: use ctx.state or send results"
        )
    if worker == src:
        problems.append(f"map from {src!r} to itself: the worker must be another executor")
    sends = tables[src].sends
    items = _sequence_items(sends)
    if not sends:
        problems.append(
            f"{src!r} has a map edge to {worker!r} but its handlers declare they send nothing"
        )
    elif items is None:
        problems.append(
            f"map {src!r} -> {worker!r}: {src!r} sends {_names(sends)}, not a sequence; a map "
            "source sends list[T] (or tuple[T, ...]) of what the worker accepts"
        )
    elif not _types.compatible(items, tables[worker].accepts):
        problems.append(
            f"map {src!r} -> {worker!r}: {src!r} sends sequences of {_names(items)} but "
            f"{worker!r} accepts {tables[worker].describe_accepts()}"
        )
    if len(g.targets) > 1:
        dst = g.targets[1]
        wanted = tables[dst].list_items()
        if not wanted:
            problems.append(
                f"map collector {dst!r} has no handler for a list (it accepts "
                f"{tables[dst].describe_accepts()}); give it a handler for list[R]"
            )
        else:
            problems.extend(_check_edge(worker, dst, tables[worker].sends, wanted, "collector"))
    return problems


def _sequence_items(sends: tuple[TypeSpec, ...]) -> tuple[TypeSpec, ...] | None:
    """Item types of the sequences among `sends` (ANY for unconstrained), None for none."""
    items: list[TypeSpec] = []
    for spec in sends:
        if spec.literals is not None:
            continue
        if spec.origin is object:
            items.append(ANY)  # an unannotated context
        elif spec.origin is tuple or issubclass(list, spec.origin):
            items.extend(spec.args[0] if spec.args else (ANY,))
    return tuple(dict.fromkeys(items)) or None


def _check_group(
    g: EdgeGroup, tables: dict[str, HandlerTable], executors: dict[str, Executor]
) -> list[str]:
    problems: list[str] = []
    if g.kind == "map":
        return _check_map(g, tables, executors)
    if g.kind == "fan_in":
        dst = g.targets[0]
        if len(set(g.sources)) != len(g.sources):
            problems.append(f"fan-in into {dst!r} lists a source twice: {list(g.sources)}")
        items = tables[dst].list_items()
        if not items:
            return [
                *problems,
                f"fan-in target {dst!r} has no handler for a list (it accepts "
                f"{tables[dst].describe_accepts()}); give it a handler for list[T]",
            ]
        for src in g.sources:
            problems.extend(_check_edge(src, dst, tables[src].sends, items, "fan-in items of"))
        return problems
    if g.kind == "multi_select" and len(set(g.targets)) != len(g.targets):
        problems.append(f"multi-select from {g.sources[0]!r} lists a target twice")
    src = g.sources[0]
    for dst in g.targets:
        problems.extend(_check_edge(src, dst, tables[src].sends, tables[dst].accepts, ""))
    return problems


def _check_edge(
    src: str, dst: str, sends: tuple[TypeSpec, ...], accepts: tuple[TypeSpec, ...], what: str
) -> list[str]:
    if not sends:
        return [
            f"{src!r} has an edge to {dst!r} but its handlers declare they send nothing "
            "(Context[None, ...]); declare what it sends, e.g. Context[str]"
        ]
    if _types.compatible(sends, accepts):
        return []
    target = f"{what} {dst!r}".strip()
    return [
        f"edge {src!r} -> {dst!r}: {src!r} sends {_names(sends)} but {target} accepts "
        f"{_names(accepts)}; fix the Context[...] annotation of {src!r} or add a handler to {dst!r}"
    ]


def _check_duplicates(groups: list[EdgeGroup]) -> list[str]:
    seen: set[tuple[str, str]] = set()
    problems: list[str] = []
    for g in groups:
        if g.kind not in ("direct", "fan_out"):
            continue
        conds = g.conditions or (None,) * len(g.targets)
        for t, c in zip(g.targets, conds, strict=True):
            if c is None:
                if (g.sources[0], t) in seen:
                    problems.append(
                        f"duplicate edge {g.sources[0]!r} -> {t!r}: each message would be "
                        "delivered twice; remove one"
                    )
                seen.add((g.sources[0], t))
    return problems


def _warn_unreachable(
    start: str, ids: list[str], groups: list[EdgeGroup], routes: dict[str, str]
) -> None:
    succ: dict[str, set[str]] = {eid: set() for eid in ids}
    for g in groups:
        for s in g.sources:
            succ[s].update(g.targets)
    for src, handler in routes.items():
        succ[src].add(handler)
    seen = {start}
    todo = [start]
    while todo:
        for nxt in succ[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    lost = [eid for eid in ids if eid not in seen]
    if lost:
        warnings.warn(
            f"executors {lost} cannot be reached from the start executor {start!r}; "
            "add edges to them or remove them",
            GraphWarning,
            stacklevel=3,
        )
