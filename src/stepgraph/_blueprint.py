"""The compiled graph a `Workflow` runs: plan, prototypes and what the engine derives once.

A `Blueprint` is immutable and holds no per-run state. The engine's modules
(sessions, runner, checkpointer, backends) read it through
`Workflow.blueprint`; workflow code never needs it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _types, serde
from ._edges import EdgeGroup
from ._executor import Executor, is_stateful
from ._handlers import HandlerTable
from ._map import MapItem
from ._names import module_of
from ._parts import StoresOwnParts
from ._planner import Plan
from ._policies import NO_POLICY, ExecutorPolicy
from ._requests import Answer, ExecutorFailure, Request
from ._subworkflow import SubWorkflow

if TYPE_CHECKING:
    from ._migrations import Migration

__all__ = ["Blueprint"]


def _known_types(tables: Sequence[HandlerTable], extra: Sequence[type]) -> list[type]:
    """Every class named by handler annotations, plus registered types and `Request`."""
    found: list[type] = [Request, Answer, ExecutorFailure, *extra]

    def walk(spec: _types.TypeSpec) -> None:
        if spec.origin.__module__ != "builtins":
            found.append(spec.origin)
        for group in spec.args or ():
            for inner in group:
                walk(inner)

    for table in tables:
        for h in (*table.handlers, *table.responses):
            for spec in (*h.accepts, *h.sends, *(h.accepts_response or ())):
                walk(spec)
    return list(dict.fromkeys(found))


class Blueprint:
    """Everything the engine derives from a built graph, computed once at `build()`.

    Attributes:
        plan: the routing plan (executor ids, handler tables, edges).
        prototypes: the executors handed to the builder, in declaration order.
        start: index of the start executor.
        stateful: per executor, whether it keeps state (`snapshot()`/`restore()`).
        own_parts: per executor, whether it stores its snapshot as parts of its own.
        known: every class the workflow can store.
        registry: the serde registry of `known`.
        policies: per executor, its cache/timeout/retry policy.
        policy_active: per executor, whether its policy does anything.
        description: the graph description the signature digests.
        description_json: that description as stored in checkpoints (with the version).
        signature: hex digest of `description`.
        migrations: checkpoint migrations by the graph version they come from.
        error_routes: per executor, the index of its error route's handler, or None.
        any_map: whether the graph has a map edge (the runner's map work is skipped if not).
    """

    __slots__ = (
        "any_cache",
        "any_map",
        "any_policy",
        "any_stateful",
        "description",
        "description_json",
        "error_routes",
        "groups",
        "known",
        "migrations",
        "own_parts",
        "plan",
        "policies",
        "policy_active",
        "prototypes",
        "registry",
        "signature",
        "start",
        "stateful",
    )

    def __init__(
        self,
        *,
        executors: Sequence[Executor],
        groups: Sequence[EdgeGroup],
        start: str,
        types: Sequence[type],
        children_known: Sequence[type],
        policies: Sequence[ExecutorPolicy],
        version: str | None,
        migrations: Mapping[str, Migration] | None,
        error_routes: Mapping[str, str],
    ) -> None:
        self.migrations: dict[str, Migration] = dict(migrations or {})
        self.prototypes = tuple(executors)
        self.groups = tuple(groups)
        ids = [e.id for e in self.prototypes]
        self.plan = Plan(ids, [e.handler_table() for e in self.prototypes], self.groups)
        self.start = self.plan.index[start]
        self.stateful = tuple(is_stateful(e) for e in self.prototypes)
        self.any_stateful = any(self.stateful)
        self.any_map = bool(self.plan.maps)
        self.own_parts = tuple(isinstance(e, StoresOwnParts) for e in self.prototypes)
        known = _known_types(self.plan.tables, tuple(types))
        known.extend(children_known)  # a child's requests and state surface in this workflow
        if self.plan.maps:  # only then: other graphs keep their registries
            known.append(MapItem)
        self.known: list[type] = list(dict.fromkeys(known))
        self.registry = serde.TypeRegistry(self.known)
        self.policies = tuple(policies) or (NO_POLICY,) * len(self.prototypes)
        self.policy_active = tuple(p.active for p in self.policies)
        self.any_policy = any(self.policy_active)
        self.any_cache = any(p.cache is not None for p in self.policies)
        index = self.plan.index
        self.error_routes: tuple[int | None, ...] = tuple(
            index[error_routes[e]] if e in error_routes else None for e in ids
        )
        self.description = self._describe(error_routes)
        digest_input = json.dumps(self.description, sort_keys=True, separators=(",", ":"))
        self.signature = hashlib.sha256(digest_input.encode()).hexdigest()
        stored = self.description if version is None else {**self.description, "version": version}
        self.description_json = json.dumps(stored, sort_keys=True, separators=(",", ":"))

    @property
    def start_id(self) -> str:
        """Id of the start executor."""
        return self.plan.ids[self.start]

    def _describe(self, error_routes: Mapping[str, str]) -> dict[str, Any]:
        executors: list[dict[str, Any]] = []
        for ex, table in zip(self.prototypes, self.plan.tables, strict=True):
            entry: dict[str, Any] = {
                "id": ex.id,
                "type": f"{module_of(type(ex))}.{type(ex).__qualname__}",
                "accepts": sorted(_types.describe(s) for s in table.accepts),
            }
            if isinstance(ex, SubWorkflow):  # a changed child graph changes the parent's
                entry["child"] = ex.workflow.signature
            executors.append(entry)
        out: dict[str, Any] = {
            "start": self.start_id,
            "executors": executors,
            "edges": [g.describe() for g in self.groups],
        }
        if error_routes:  # only then: graphs without routes keep their signatures
            out["error_routes"] = sorted([s, d] for s, d in error_routes.items())
        return out
