"""The immutable `Workflow`: a validated graph plus executor prototypes.

A workflow holds no per-run state, so any number of sessions and runs may use
it at once, in one event loop or several (successive `asyncio.run` calls
included). Everything that changes lives in a `Session`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from . import _viz, serde
from ._blueprint import Blueprint
from ._cache import Cache
from ._edges import EdgeGroup
from ._executor import Executor
from ._leasing import LeasePolicy
from ._migrations import Migration
from ._policies import ExecutorPolicy
from ._retention import Retention
from ._run import Run
from ._session import Session
from ._subworkflow import SubWorkflow

__all__ = ["Workflow", "default_clock", "default_ids"]

if TYPE_CHECKING:
    from ._backend import Backend
    from ._store import CheckpointStore
    from .tracing import Tracer

InT = TypeVar("InT", default=Any)


def default_clock() -> datetime:
    """The wall clock, timezone-aware UTC."""
    return datetime.now(UTC)


def default_ids() -> str:
    """A random 32-hex-digit id (128 random bits)."""
    return os.urandom(16).hex()


class Workflow(Generic[InT]):
    """A built workflow: immutable, shareable, cheap to open sessions on.

    Made by `WorkflowBuilder.build()`; never construct it directly.
    """

    def __init__(
        self,
        *,
        name: str,
        executors: Sequence[Executor],
        groups: Sequence[EdgeGroup],
        start: str,
        max_supersteps: int,
        types: Sequence[type],
        policies: Sequence[ExecutorPolicy] = (),
        run_timeout: float | None = None,
        version: str | None = None,
        migrations: Mapping[str, Migration] | None = None,
        error_routes: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.max_supersteps = max_supersteps
        self.run_timeout = run_timeout
        self.version = version
        """The graph version recorded in checkpoints, or None."""
        self._groups = tuple(groups)
        children = [e for e in executors if isinstance(e, SubWorkflow)]
        self.blueprint = Blueprint(
            executors=executors,
            groups=groups,
            start=start,
            types=types,
            children_known=[t for c in children for t in c.workflow.blueprint.known],
            policies=policies,
            version=version,
            migrations=migrations,
            error_routes=error_routes or {},
        )
        """The compiled graph the engine runs (read-only; workflow code never needs it)."""
        self.signature: str = self.blueprint.signature
        """Hex digest over executors, handler types, edges, edge kinds and predicate names."""

    @property
    def start_id(self) -> str:
        """Id of the start executor."""
        return self.blueprint.start_id

    @property
    def types(self) -> serde.TypeRegistry:
        """The types this workflow can store: `checkpoint.with_types(wf.types).state`."""
        return self.blueprint.registry

    @property
    def executor_ids(self) -> tuple[str, ...]:
        """Executor ids in declaration order."""
        return self.blueprint.plan.ids

    @property
    def edges(self) -> tuple[EdgeGroup, ...]:
        """The edge groups, one per builder `add_*` call."""
        return self._groups

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the graph (what the signature digests)."""
        return json.loads(json.dumps(self.blueprint.description))

    def session(
        self,
        session_id: str | None = None,
        store: CheckpointStore | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        ids: Callable[[], str] | None = None,
        retention: Retention | None = None,
        cache: Cache | None = None,
        tracer: Tracer | None = None,
        lease: LeasePolicy | bool = True,
        backend: Backend | None = None,
        memory: Any = None,
    ) -> Session[InT]:
        """Open a session: cheap and synchronous.

        Args:
            session_id: the conversation id; a new random id when None.
            store: where checkpoints are saved after every superstep; an id that has
                checkpoints there continues from its latest one.
            clock: returns the current time (inject a manual clock in tests).
            ids: returns new unique ids (inject a deterministic factory in tests).
            retention: prune old checkpoints after every run (see `Session.prune`).
            cache: where `CachePolicy` executors keep results; share one (e.g. a
                `SqliteCache`) to reuse results across sessions. In memory by default.
            tracer: traces runs, supersteps and handlers (`stepgraph.tracing`); off by default.
            lease: with a store that arbitrates leases (file, SQLite, PostgreSQL), every run
                holds the session's lease, so no two processes run it at once (`LeasePolicy`
                sets ttl, wait and owner; False turns it off).
            backend: where executors run (`stepgraph.distributed`); in this process by default.
            memory: long-term memory handlers reach as `ctx.memory` (a
                `stepgraph.agents.MemoryStore`; share one across sessions).
        """
        id_factory = ids or default_ids
        return Session(
            self,
            session_id if session_id is not None else id_factory(),
            store=store,
            clock=clock or default_clock,
            ids=id_factory,
            retention=retention,
            cache=cache,
            tracer=tracer,
            lease=lease,
            backend=backend,
            memory=memory,
        )

    def run(self, input: InT, store: CheckpointStore | None = None) -> Run:
        """Run `input` on a new one-shot session; await the `Run` for a `RunResult`."""
        return self._one_shot(store).run(input)

    def stream(self, input: InT, store: CheckpointStore | None = None) -> Run:
        """Run `input` on a new one-shot session; iterate the `Run` for live events."""
        return self._one_shot(store).run(input)

    def _one_shot(self, store: CheckpointStore | None) -> Session[InT]:
        """`session(store=store)` with every default, without its keyword plumbing."""
        return Session(self, default_ids(), store=store, clock=default_clock, ids=default_ids)

    def as_agent(
        self,
        name: str | None = None,
        *,
        description: str = "",
        store: CheckpointStore | None = None,
    ) -> Any:
        """This workflow behind the `Agent` interface: `stepgraph.agents.as_agent(self, ...)`.

        Returns a `stepgraph.agents.WorkflowAgent`. Each conversation maps to
        its own session (in `store`, or in memory); outputs become the reply,
        requests become function calls answered with function results.
        """
        # The engine never imports the agents layer, not even for type checking (agents
        # build on the engine, not the reverse): the import happens only when this is
        # called, and the return type stays loose; `agents.as_agent` is the typed spelling.
        from .agents import as_agent

        return as_agent(self, name, description=description, store=store)

    def to_yaml(self) -> str:
        """The graph as a declarative YAML file that `sg.load_workflow` loads back.

        Needs the `yaml` extra. Every part must be importable: executor classes
        (with YAML-plain constructor arguments) or module-level executor objects,
        conditions written as `declarative.Condition` or module-level functions,
        agents declared in YAML.

        Raises:
            GraphError: a part that cannot be named by an import path (a lambda
                condition, a local class); the message names it.
        """
        from .declarative import to_yaml

        return to_yaml(self)

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        return _viz.to_mermaid(self.start_id, self.blueprint.plan.ids, self._groups)

    def to_svg(self) -> str:
        """The graph as an SVG picture (a layered layout; no Graphviz needed)."""
        from ._svg import to_svg

        return to_svg(self.describe(), title=self.name)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT."""
        return _viz.to_dot(self.name, self.start_id, self.blueprint.plan.ids, self._groups)

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} executors={len(self.blueprint.prototypes)}>"
