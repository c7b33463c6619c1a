"""Building a `Workflow` from a checked declaration: executors, agents, edges, policies.

Each edge entry is one builder call (`from`/`to` is `add_edge`, `fan_out`,
`fan_in`, `switch`, `multi_select`, `map`, `chain`); executors are declared
in the builder in the order of the `executors` mapping (the start first), so
that order is the delivery and commit order. Every problem is a `GraphError`
naming the file and the line of the value at fault.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from .._builder import WorkflowBuilder
from .._edges import Case
from .._errors import GraphError
from .._executor import Executor
from .._policies import CachePolicy, RetryPolicy
from .._subworkflow import SubWorkflow
from .._workflow import Workflow
from ..agents import Agent, AgentExecutor, Tool
from ._expressions import Condition, ExpressionError, Selector
from ._imports import ImportFailed, resolve
from ._source import Path_, Source, read

__all__ = ["DeclaredAgent", "load"]

_KINDS = ("chain", "fan_out", "fan_in", "switch", "multi_select", "map")


class DeclaredAgent(Agent):
    """An `Agent` built from a YAML declaration, which it keeps for `Workflow.to_yaml()`.

    Args:
        declaration: the `agent:` mapping as written (import paths, not objects).
        name, client, **options: as for `Agent`.
    """

    def __init__(
        self, declaration: Mapping[str, Any], name: str, client: Any, **options: Any
    ) -> None:
        super().__init__(name, client, **options)
        self.declaration = dict(declaration)


def load(path: str | Path) -> Workflow[Any]:
    """Read, check and build the workflow declared in the YAML file at `path`.

    Raises:
        GraphError: anything wrong, naming the file and line.
    """
    file = Path(path)
    source = read(file)
    return _Loader(source, file.resolve().parent, file.stem).build()


class _Loader:
    __slots__ = ("folder", "source", "stem")

    def __init__(self, source: Source, folder: Path, stem: str) -> None:
        self.source = source
        self.folder = folder
        self.stem = stem

    # -- helpers ------------------------------------------------------------------------------

    def fail(self, path: Path_, message: str) -> GraphError:
        return self.source.error(path, message)

    def resolve(self, import_path: str, at: Path_) -> Any:
        try:
            return resolve(import_path, self.folder)
        except ImportFailed as exc:
            raise self.fail(at, f"unknown import path {import_path!r}: {exc}") from None

    def callable_at(self, import_path: str, at: Path_, what: str) -> Callable[..., Any]:
        value = self.resolve(import_path, at)
        if not callable(value):
            raise self.fail(at, f"{what} {import_path!r} is a {type(value).__name__}, not callable")
        return cast(Callable[..., Any], value)

    # -- the whole graph ----------------------------------------------------------------------

    def build(self) -> Workflow[Any]:
        data: dict[str, Any] = self.source.data
        specs: dict[str, dict[str, Any]] = data["executors"]
        executors = {eid: self.executor(eid, spec) for eid, spec in specs.items()}
        start = data["start"]
        if start not in executors:
            raise self.fail(("start",), f"start {start!r} is not one of the executors")
        builder: WorkflowBuilder[Any] = WorkflowBuilder(start=executors[start])
        for eid, ex in executors.items():  # declaration order: the mapping's (start first)
            builder.set_policy(ex, **self.policies(("executors", eid), specs[eid]))
        for i, edge in enumerate(data.get("edges", [])):
            self.edge(builder, ("edges", i), edge, executors)
        for i, route in enumerate(data.get("error_routes", [])):
            at: Path_ = ("error_routes", i)
            sources = route.get("from")
            refs = [sources] if isinstance(sources, str) else sources
            for ref in [*(refs or []), route["to"]]:
                self.known(ref, at, executors)
            builder.add_error_route(refs, route["to"])
        for i, name in enumerate(data.get("types", [])):
            cls = self.resolve(name, ("types", i))
            if not isinstance(cls, type):
                raise self.fail(("types", i), f"{name!r} is not a class")
            builder.register_types(cls)
        defaults = self.policies(("defaults",), data.get("defaults", {}))
        try:
            return builder.build(
                name=data.get("name") or self.stem,
                max_supersteps=data.get("max_supersteps", 100),
                version=data.get("version"),
                run_timeout=data.get("run_timeout"),
                **defaults,
            )
        except GraphError as exc:
            raise GraphError(f"{self.source.file}: {exc}") from None

    def known(self, eid: str, at: Path_, executors: Mapping[str, Executor]) -> str:
        if eid not in executors:
            raise self.fail(at, f"unknown executor {eid!r}; declared: {', '.join(executors)}")
        return eid

    # -- executors ----------------------------------------------------------------------------

    def executor(self, eid: str, spec: Mapping[str, Any]) -> Executor:
        at: Path_ = ("executors", eid)
        if "agent" in spec:
            return self.agent(eid, spec, at)
        for key in ("context_mode", "stream"):
            if key in spec:
                raise self.fail((*at, key), f"{key} applies only to an agent executor")
        use: str = spec["use"]
        value: object = self.resolve(use, (*at, "use"))
        kind = "class" if isinstance(value, type) else type(value).__name__
        args: dict[str, Any] = spec.get("args", {})
        if isinstance(value, type) and issubclass(value, Executor):
            try:
                return value(id=eid, **args)
            except Exception as exc:
                raise self.fail(
                    at, f"{use}(id={eid!r}, ...) failed: {type(exc).__name__}: {exc}"
                ) from None
        if "args" in spec:
            raise self.fail((*at, "args"), f"{use} is an object, not a class: it takes no args")
        if isinstance(value, Executor):
            if value.id != eid:
                raise self.fail(at, f"{use} is the executor {value.id!r}; declare it under that id")
            return value
        if isinstance(value, Workflow):
            return SubWorkflow(cast(Workflow[Any], value), id=eid)
        raise self.fail(
            (*at, "use"),
            f"{use} is a {kind}, not an Executor subclass, an executor "
            "object (@sg.executor) or a Workflow",
        )

    def agent(self, eid: str, spec: Mapping[str, Any], at: Path_) -> Executor:
        decl: dict[str, Any] = spec["agent"]
        client = self.object_ref(decl["client"], (*at, "agent", "client"))
        tools: list[Tool | Callable[..., Any]] = []
        for i, path in enumerate(decl.get("tools", [])):
            tool = self.resolve(path, (*at, "agent", "tools", i))
            if not (isinstance(tool, Tool) or callable(tool)):
                raise self.fail((*at, "agent", "tools", i), f"tool {path!r} is not callable")
            tools.append(cast(Tool | Callable[..., Any], tool))
        try:
            agent = DeclaredAgent(
                decl,
                decl.get("name", eid),
                client,
                instructions=decl.get("instructions", ""),
                tools=tools,
                max_tool_iterations=decl.get("max_tool_iterations", 8),
            )
            return AgentExecutor(
                agent,
                id=eid,
                context_mode=spec.get("context_mode", "full"),
                stream=spec.get("stream", True),
            )
        except Exception as exc:
            raise self.fail(at, f"building agent {eid!r} failed: {exc}") from None

    def object_ref(self, ref: str | Mapping[str, Any], at: Path_) -> Any:
        if isinstance(ref, str):
            value = self.resolve(ref, at)
            return value() if inspect.isclass(value) else value
        factory = self.callable_at(ref["use"], (*at, "use"), "factory")
        try:
            return factory(**ref.get("args", {}))
        except Exception as exc:
            raise self.fail(at, f"{ref['use']}(...) failed: {type(exc).__name__}: {exc}") from None

    # -- policies -----------------------------------------------------------------------------

    def policies(self, at: Path_, spec: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"retry": None, "timeout": spec.get("timeout"), "cache": None}
        if "retry" in spec:
            retry = dict(spec["retry"])
            errors: list[type[BaseException]] = []
            for i, name in enumerate(retry.pop("retry_on", [])):
                cls = self.resolve(name, (*at, "retry", "retry_on", i))
                if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                    raise self.fail((*at, "retry", "retry_on", i), f"{name} is not an exception")
                errors.append(cls)
            if errors:
                retry["retry_on"] = tuple(errors)
            try:
                out["retry"] = RetryPolicy(**retry)
            except ValueError as exc:
                raise self.fail((*at, "retry"), str(exc)) from None
        if "cache" in spec:
            cache: Mapping[str, Any] = spec["cache"]
            key = cache.get("key")
            out["cache"] = CachePolicy(
                key=self.callable_at(key, (*at, "cache", "key"), "cache key") if key else None,
                ttl=cache.get("ttl"),
            )
        return out

    # -- edges --------------------------------------------------------------------------------

    def condition(self, value: str | Mapping[str, str], at: Path_) -> Callable[[Any], bool]:
        if isinstance(value, str):
            try:
                return Condition(value)
            except ExpressionError as exc:
                raise self.fail(at, str(exc)) from None
        return self.callable_at(value["use"], (*at, "use"), "condition")

    def edge(
        self,
        b: WorkflowBuilder[Any],
        at: Path_,
        e: Mapping[str, Any],
        executors: Mapping[str, Executor],
    ) -> None:
        def one(key: str) -> str:
            return self.known(e[key], (*at, key), executors)

        def many(key: str) -> list[str]:
            return [self.known(x, (*at, key, i), executors) for i, x in enumerate(e[key])]

        kind = next((k for k in _KINDS if k in e), "edge")
        if kind == "chain":
            b.add_chain(many("chain"))
        elif kind == "fan_out":
            b.add_fan_out(one("from"), many("fan_out"))
        elif kind == "fan_in":
            b.add_fan_in(many("fan_in"), one("to"))
        elif kind == "switch":
            cases = [
                Case(
                    when=self.condition(c["when"], (*at, "switch", i, "when")),
                    target=self.known(c["to"], (*at, "switch", i, "to"), executors),
                )
                for i, c in enumerate(e["switch"])
            ]
            b.add_switch(one("from"), cases, default=one("default") if "default" in e else None)
        elif kind == "multi_select":
            b.add_multi_select(one("from"), many("multi_select"), self.selector(e, at))
        elif kind == "map":
            collect = one("collect") if "collect" in e else None
            b.add_map(one("from"), one("map"), collect, max_concurrency=e.get("max_concurrency"))
        else:
            when = self.condition(e["when"], (*at, "when")) if "when" in e else None
            b.add_edge(one("from"), one("to"), when=when)

    def selector(self, e: Mapping[str, Any], at: Path_) -> Callable[[Any, Sequence[str]], Any]:
        if "select" in e:
            try:
                return Selector(e["select"])
            except ExpressionError as exc:
                raise self.fail((*at, "select"), str(exc)) from None
        return self.callable_at(e["selector"], (*at, "selector"), "selector")
