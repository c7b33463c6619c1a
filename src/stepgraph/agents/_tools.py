"""Tools: Python functions an agent may call, described from type hints and docstrings."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union, get_args, get_origin, overload

from .._coerce import coerce
from .._errors import WorkflowError
from ._client import ToolSpec

__all__ = ["Tool", "ToolError", "json_schema", "tool", "tool_idempotency_key"]

_KEY: contextvars.ContextVar[str | None] = contextvars.ContextVar("tool_key", default=None)


def tool_idempotency_key() -> str | None:
    """Inside a tool: a key that is the same for this tool call across retries and resumes.

    An agent in a workflow (`AgentExecutor`, the orchestrations) derives it from
    the handler's `ctx.idempotency_key` and the call's step name. Pass it to APIs
    that deduplicate on a key (payments, e-mail, tickets): it closes the one
    window a journaled call leaves, a crash after the tool returned but before
    its result was recorded. None outside such a call.
    """
    return _KEY.get()


class ToolError(WorkflowError):
    """A tool is misdeclared, or was called with arguments that do not fit it."""


class Tool:
    """A callable tool: name, description, JSON schema of its arguments, and the function.

    Args:
        func: the function (sync functions run in a worker thread).
        name: the name the model sees (the function name by default).
        description: what the tool does (the docstring's first paragraph by default).
        approval_required: a person must approve each call before it runs.
        ends_turn: a call to it ends the agent's run right after its result (handoffs).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        approval_required: bool = False,
        ends_turn: bool = False,
    ) -> None:
        self.func = func
        self.ends_turn = ends_turn
        self.name = name or func.__name__
        doc = inspect.getdoc(func) or ""
        self.description = description or doc.split("\n\n", 1)[0].strip()
        self.approval_required = approval_required
        self._hints = typing.get_type_hints(func)
        self._params = list(inspect.signature(func).parameters.values())
        arg_docs = _arg_docs(doc)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for p in self._params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise ToolError(f"tool {self.name}: *args/**kwargs cannot be described to a model")
            schema = json_schema(self._hints.get(p.name, Any))
            if p.name in arg_docs:
                schema = {**schema, "description": arg_docs[p.name]}
            properties[p.name] = schema
            if p.default is p.empty:
                required.append(p.name)
        self.parameters: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }

    @property
    def spec(self) -> ToolSpec:
        """The tool as the model sees it."""
        return ToolSpec(self.name, self.description, self.parameters)

    async def invoke(self, arguments: Mapping[str, Any], idempotency_key: str | None = None) -> Any:
        """Call the tool with JSON arguments converted to the annotated types.

        `idempotency_key` is what `tool_idempotency_key()` returns during the call.

        Raises:
            ToolError: unknown, missing or ill-typed arguments.
        """
        known = {p.name for p in self._params}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise ToolError(f"tool {self.name} has no parameters {unknown}")
        kwargs: dict[str, Any] = {}
        for p in self._params:
            if p.name in arguments:
                try:
                    kwargs[p.name] = coerce(arguments[p.name], self._hints.get(p.name, Any), p.name)
                except TypeError as exc:
                    raise ToolError(f"tool {self.name}: {exc}") from None
            elif p.default is p.empty:
                raise ToolError(f"tool {self.name} needs argument {p.name!r}")
        token = _KEY.set(idempotency_key)  # a worker thread runs in a copy of this context
        try:
            if inspect.iscoroutinefunction(self.func):
                return await self.func(**kwargs)
            return await asyncio.to_thread(self.func, **kwargs)
        finally:
            _KEY.reset(token)

    def __repr__(self) -> str:
        return f"<Tool {self.name}{' (approval required)' if self.approval_required else ''}>"


@overload
def tool(func: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, approval_required: bool = False
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    approval_required: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function a `Tool`; `@tool(approval_required=True)` pauses for a person."""

    def make(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, approval_required=approval_required)

    return make(func) if func is not None else make


def _arg_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google-style `Args:` section."""
    match = re.search(r"^\s*(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?)+)", doc, re.M)
    if not match:
        return {}
    out: dict[str, str] = {}
    for line in match.group(1).splitlines():
        m = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


_SIMPLE: dict[object, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
}


def json_schema(annotation: Any) -> dict[str, Any]:
    """A JSON schema for a type annotation (classes, containers, unions, enums, dataclasses)."""
    if annotation is Any or annotation is object:
        return {}
    if annotation is None:
        return {"type": "null"}
    if annotation in _SIMPLE:
        return dict(_SIMPLE[annotation])
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return json_schema(args[0])
    if origin is Union or origin is types.UnionType:
        return {"anyOf": [json_schema(a) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (list, set, frozenset, tuple) or (
        isinstance(origin, type) and issubclass(origin, (list, set, tuple))
    ):
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array", "prefixItems": [json_schema(a) for a in args]}
        return {"type": "array", "items": json_schema(args[0]) if args else {}}
    if origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return {"type": "object", "additionalProperties": json_schema(args[1]) if args else {}}
    if isinstance(annotation, type):
        return _class_schema(annotation)
    return {}


def _class_schema(annotation: type) -> dict[str, Any]:
    cls: Any = annotation
    if issubclass(annotation, enum.Enum):
        members: list[enum.Enum] = list(annotation)
        return {"enum": [m.value for m in members]}
    make_schema: Any = getattr(cls, "model_json_schema", None)
    if callable(make_schema):
        schema = typing.cast(dict[str, Any], make_schema())
        return schema
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        fields = [f for f in dataclasses.fields(cls) if f.init]
        return {
            "type": "object",
            "properties": {f.name: json_schema(hints.get(f.name, Any)) for f in fields},
            "required": [
                f.name
                for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ],
        }
    if issubclass(cls, list):
        return {"type": "array"}
    if issubclass(cls, dict):
        return {"type": "object"}
    return {}
