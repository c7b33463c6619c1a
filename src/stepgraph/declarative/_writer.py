"""`Workflow.to_yaml()`: a built graph written back as a declaration.

Every part must be reachable by an import path that leads back to the same
object (an executor class with YAML-plain constructor arguments, a module-level
executor object, a module-level predicate), or be declarative already (a
`Condition`, a `Selector`, an agent loaded from YAML). Anything else (a lambda,
a local function, a class built with an object argument) raises `GraphError`
naming the part, since the YAML could not rebuild it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

from .._edges import EdgeGroup
from .._errors import GraphError
from .._executor import Executor, FunctionExecutor
from .._policies import CachePolicy, ExecutorPolicy, RetryPolicy
from .._workflow import Workflow
from ..agents import AgentExecutor
from ._expressions import Condition, Selector
from ._imports import ImportFailed, attribute_path, path_of
from ._loader import DeclaredAgent

__all__ = ["declaration", "dump"]

_RETRY_DEFAULTS = RetryPolicy()


def dump(workflow: Workflow[Any]) -> str:
    """`declaration(workflow)` as YAML text."""
    from ._source import yaml_module

    yaml = yaml_module()
    text: str = yaml.safe_dump(
        declaration(workflow), sort_keys=False, default_flow_style=None, allow_unicode=True
    )
    return text


def declaration(workflow: Workflow[Any]) -> dict[str, Any]:
    """The plain-data declaration of `workflow` (what `dump` writes).

    Raises:
        GraphError: a part has no import path (the message names it).
    """
    try:
        return _Writer(workflow).run()
    except ImportFailed as exc:
        raise GraphError(f"cannot write workflow {workflow.name!r} as YAML: {exc}") from None


class _Writer:
    __slots__ = ("wf",)

    def __init__(self, workflow: Workflow[Any]) -> None:
        self.wf = workflow

    def run(self) -> dict[str, Any]:
        wf = self.wf
        bp = wf.blueprint
        out: dict[str, Any] = {"name": wf.name, "start": wf.start_id}
        if wf.max_supersteps != 100:
            out["max_supersteps"] = wf.max_supersteps
        if wf.version is not None:
            out["version"] = wf.version
        if wf.run_timeout is not None:
            out["run_timeout"] = wf.run_timeout
        types = [t for t in bp.known if _user_type(t)]
        if types:
            out["types"] = [path_of(t, f"registered type {t.__qualname__}") for t in types]
        out["executors"] = {
            ex.id: {**_executor(ex), **_policies(policy)}
            for ex, policy in zip(bp.prototypes, bp.policies, strict=True)
        }
        out["edges"] = [_edge(g) for g in wf.edges]
        routes = [
            {"from": eid, "to": bp.plan.ids[dst]}
            for eid, dst in zip(bp.plan.ids, bp.error_routes, strict=True)
            if dst is not None
        ]
        if routes:
            out["error_routes"] = routes
        return out


def _user_type(t: type) -> bool:
    module = getattr(t, "__module__", "")
    return module != "builtins" and not module.startswith(("stepgraph.", "typing", "collections"))


def _executor(ex: Executor) -> dict[str, Any]:
    what = f"executor {ex.id!r}"
    if isinstance(ex, AgentExecutor):
        agent = ex.agent
        if not isinstance(agent, DeclaredAgent):
            raise ImportFailed(
                f"{what} runs an agent made in Python; only agents declared in YAML "
                "(agent: instructions, client, tools) can be written back"
            )
        out: dict[str, Any] = {"agent": agent.declaration}
        if ex.context_mode != "full":
            out["context_mode"] = ex.context_mode
        if not ex.stream:
            out["stream"] = False
        return out
    if isinstance(ex, FunctionExecutor):
        return {"use": attribute_path(ex, ex.func.__module__, f"{what} (@executor function)")}
    try:
        return {"use": attribute_path(ex, type(ex).__module__, what)}
    except ImportFailed:
        pass  # not a module-level object: its class and constructor arguments
    cls = path_of(type(ex), f"the class of {what}")
    args, kwargs = ex._sg_init_args  # pyright: ignore[reportPrivateUsage]
    try:
        bound = inspect.signature(type(ex)).bind(*args, **kwargs).arguments
    except TypeError as exc:
        raise ImportFailed(f"{what}: its constructor arguments cannot be named: {exc}") from None
    if bound.get("id") != ex.id:
        raise ImportFailed(f"{what}: its class {cls} does not take the id as id=")
    rest = {k: v for k, v in bound.items() if k != "id"}
    for name, value in rest.items():
        if not _plain(value):
            raise ImportFailed(
                f"{what}: argument {name}={value!r} cannot be written in YAML (only strings, "
                "numbers, booleans, None, lists and mappings of them)"
            )
    return {"use": cls, "args": _plain_copy(rest)} if rest else {"use": cls}


def _plain(value: object) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in cast(list[Any], value))
    if isinstance(value, dict):
        items = cast(dict[Any, Any], value)
        return all(isinstance(k, str) and _plain(v) for k, v in items.items())
    return False


def _plain_copy(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain_copy(v) for v in cast(list[Any], value)]
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in cast(dict[str, Any], value).items()}
    return value


def _policies(policy: ExecutorPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if policy.retry is not None:
        out["retry"] = _retry(policy.retry)
    if policy.timeout is not None:
        out["timeout"] = policy.timeout
    if policy.cache is not None:
        out["cache"] = _cache(policy.cache)
    return out


def _retry(retry: RetryPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("max_attempts", "initial_delay", "backoff", "max_delay", "jitter"):
        if getattr(retry, name) != getattr(_RETRY_DEFAULTS, name):
            out[name] = getattr(retry, name)
    if retry.retry_on != _RETRY_DEFAULTS.retry_on:
        out["retry_on"] = [path_of(t, f"retry_on type {t.__qualname__}") for t in retry.retry_on]
    return out


def _cache(cache: CachePolicy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cache.key is not None:
        out["key"] = path_of(cache.key, "cache key function")
    if cache.ttl is not None:
        out["ttl"] = cache.ttl
    return out


def _condition(cond: Callable[[Any], bool], where: str) -> str | dict[str, str]:
    if isinstance(cond, Condition):
        return cond.source
    return {"use": path_of(cond, f"the condition of {where}")}


def _edge(g: EdgeGroup) -> dict[str, Any]:
    src, targets = g.sources[0], list(g.targets)
    if g.kind == "direct":
        out: dict[str, Any] = {"from": src, "to": targets[0]}
        cond = g.conditions[0] if g.conditions else None
        if cond is not None:
            out["when"] = _condition(cond, f"edge {src} -> {targets[0]}")
        return out
    if g.kind == "fan_out":
        return {"from": src, "fan_out": targets}
    if g.kind == "fan_in":
        return {"fan_in": list(g.sources), "to": targets[0]}
    if g.kind == "switch":
        n = len(g.conditions)
        cases = [
            {"when": _condition(_present(c), f"switch {src} -> {t}"), "to": t}
            for c, t in zip(g.conditions, targets[:n], strict=True)
        ]
        out = {"from": src, "switch": cases}
        if g.has_default:
            out["default"] = targets[-1]
        return out
    if g.kind == "multi_select":
        out = {"from": src, "multi_select": targets}
        if isinstance(g.selector, Selector):
            out["select"] = g.selector.source
        else:
            out["selector"] = path_of(g.selector, f"the selector of multi-select from {src}")
        return out
    out = {"from": src, "map": targets[0]}
    if len(targets) > 1:
        out["collect"] = targets[1]
    if g.max_concurrency is not None:
        out["max_concurrency"] = g.max_concurrency
    return out


def _present(cond: Callable[[Any], bool] | None) -> Callable[[Any], bool]:
    assert cond is not None  # a switch case always has its condition
    return cond
