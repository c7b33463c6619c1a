"""The tagged path of `encode`: any supported value -> a JSON-ready tree of tags.

`Tagger` walks the value once, tracking the containers on the current path (so
a cycle is reported, not recursed into) and the JSON nesting depth. Failures
unwind as `EncodeFailure`, each container adding its step of the path, so the
message can say ``value['x'][2].field`` without any bookkeeping on success.
`is_plain` is the check the fast path runs first; `Tagger` reuses plain
sub-lists and sub-dicts without visiting their items.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import types
import typing
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Final, cast

from ._format import (
    BUILTIN_TYPE_NAMES,
    BYTEARRAY,
    BYTES,
    DATE,
    DATETIME,
    DECIMAL,
    DICT,
    ELLIPSIS,
    FLOAT,
    FROZENSET,
    GENERIC,
    INT,
    LITERAL,
    MARKER,
    MAX_DEPTH,
    MAX_UNION,
    PAYLOAD,
    SET,
    TIME,
    TIMEDELTA,
    TUPLE,
    TYPE,
    UNION,
    UUID,
    class_name,
    short_repr,
)
from ._registry import ClassPlan, Kind, TypeRegistry, plan_for

__all__ = ["EncodeFailure", "Tagger", "is_plain"]

LEAVES: Final = frozenset({str, int, float, bool, types.NoneType})
_PLAIN: Final = LEAVES | {list, dict}
_STR: Final = frozenset({str})
_SAFE_INT_BITS: Final = 2000  # ~600 digits: below the smallest int_max_str_digits (640)
_UNSET: Final = object()


def is_plain(value: Any) -> bool:
    kind = cast("type[object]", type(value))
    if kind is dict:
        return MARKER not in value and set(map(type, value)) <= _STR and _plain(value.values(), 1)
    return kind in LEAVES or (kind is list and _plain(value, 1))


def _plain(items: Iterable[Any], depth: int) -> bool:
    """True when `items` (of a container at `depth`) can go to `json` untouched."""
    kinds = set(map(type, items))
    if kinds <= LEAVES:
        return True
    if depth >= MAX_DEPTH or not kinds <= _PLAIN:
        return False
    depth += 1
    for item in items:
        kind = cast("type[object]", type(item))
        if kind is dict:
            if (
                MARKER in item
                or not set(map(type, item)) <= _STR
                or not _plain(item.values(), depth)
            ):
                return False
        elif kind is list and not _plain(item, depth):
            return False
    return True


class EncodeFailure(Exception):
    """Why encoding failed, with the path collected while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []

    def message(self) -> str:
        return f"cannot encode value{''.join(reversed(self.path))}: {self.reason}"


def _dotted(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _big_int(value: int) -> object:
    """Decimal like `json` writes it, or hex when `int_max_str_digits` refuses it."""
    try:
        str(value)
    except ValueError:
        return _tagged(INT, f"{value:x}")
    return value


def _tagged(tag: str, payload: object) -> dict[str, object]:
    return {MARKER: tag, PAYLOAD: payload}


def _nonfinite(value: float) -> str:
    if math.isnan(value):
        return "-nan" if math.copysign(1.0, value) < 0 else "nan"
    return "inf" if value > 0 else "-inf"


def _clock(value: datetime.datetime | datetime.time) -> object:
    """isoformat, or [naive isoformat, offset] for offsets with microseconds.

    Python 3.11's fromisoformat drops an offset of only microseconds ("+00:00:00.000001").
    """
    offset = value.utcoffset()
    if offset is None or not offset.microseconds:
        return value.isoformat()
    naive = value.replace(tzinfo=None).isoformat()
    return [naive, [offset.days, offset.seconds, offset.microseconds]]


def _ordered(items: set[Any] | frozenset[Any]) -> list[Any]:
    """Sorted when every item is a str (or every one an int), so output is stable."""
    kinds = set(map(type, items))
    return sorted(items) if kinds == {str} or kinds == {int} else list(items)


_SCALARS: Final[dict[type, Callable[[Any], object]]] = {
    bytes: lambda v: _tagged(BYTES, base64.b64encode(v).decode("ascii")),
    bytearray: lambda v: _tagged(BYTEARRAY, base64.b64encode(v).decode("ascii")),
    datetime.datetime: lambda v: _tagged(DATETIME, _clock(v)),
    datetime.date: lambda v: _tagged(DATE, v.isoformat()),
    datetime.time: lambda v: _tagged(TIME, _clock(v)),
    datetime.timedelta: lambda v: _tagged(TIMEDELTA, [v.days, v.seconds, v.microseconds]),
    uuid.UUID: lambda v: _tagged(UUID, str(v)),
    decimal.Decimal: lambda v: _tagged(DECIMAL, str(v)),
    types.EllipsisType: lambda v: _tagged(ELLIPSIS, None),
}

_BUILTIN_BASES: Final[tuple[type, ...]] = (
    dict,
    list,
    tuple,
    set,
    frozenset,
    str,
    int,
    float,
    bytes,
)


def _unsupported(kind: type) -> str:
    dotted = _dotted(kind)
    base = next((base for base in _BUILTIN_BASES if issubclass(kind, base)), None)
    if base is not None:
        return (
            f"{dotted} is a {base.__name__} subclass; it is not stored as a plain "
            f"{base.__name__}, which would lose its type. Convert it with "
            f"{base.__name__}(...) or use a dataclass"
        )
    return (
        f"object of type {dotted} is not supported; store JSON values, tuples, sets, "
        "bytes, datetimes, UUID, Decimal, enums, dataclasses, NamedTuples or pydantic models"
    )


class Tagger:
    __slots__ = ("_active", "_plans", "_registry", "_shortcuts")

    def __init__(self, registry: TypeRegistry | None, *, shortcuts: bool) -> None:
        self._registry = registry
        self._shortcuts = shortcuts  # reuse plain sub-lists/dicts without a per-item walk
        self._active: set[int] = set()  # ids of the containers being encoded (cycles)
        self._plans: dict[type, ClassPlan] | None = None  # plans of unregistered classes

    def tree(self, value: Any, depth: int) -> Any:
        kind = cast("type[object]", type(value))
        if kind is str or kind is bool or value is None:
            return value
        if kind is int:
            return value if value.bit_length() <= _SAFE_INT_BITS else _big_int(value)
        if kind is float:
            return value if math.isfinite(value) else _tagged(FLOAT, _nonfinite(value))
        scalar = _SCALARS.get(kind)
        if scalar is not None:
            return scalar(value)
        if kind is list:
            if self._shortcuts and _plain(value, depth):
                return value
            return self._items(value, value, depth, "[{}]")
        if kind is dict:
            return self._dict(value, depth)
        if kind is tuple:
            return _tagged(TUPLE, self._items(value, value, depth + 1, "[{}]"))
        if kind is set or kind is frozenset:
            tag = SET if kind is set else FROZENSET
            return _tagged(tag, self._items(value, _ordered(value), depth + 1, "{{…}}"))
        if isinstance(value, type):
            return self._type(value)
        if isinstance(value, (types.GenericAlias, types.UnionType)) or kind.__module__ == "typing":
            return self._type_expression(value, depth)
        return self._instance(value, self._plan(kind), depth)

    def _enter(self, owner: object, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise EncodeFailure(f"it is nested deeper than {MAX_DEPTH} levels")
        key = id(owner)
        if key in self._active:
            raise EncodeFailure("reference cycle: the value contains itself")
        self._active.add(key)

    def _items(self, owner: object, items: Iterable[Any], depth: int, segment: str) -> list[Any]:
        self._enter(owner, depth)
        out: list[Any] = []
        for index, item in enumerate(items):
            try:
                out.append(self.tree(item, depth + 1))
            except EncodeFailure as failure:
                failure.path.append(segment.format(index))
                raise
        self._active.discard(id(owner))
        return out

    def _fields(self, owner: object, items: Iterable[tuple[str, Any]], depth: int) -> Any:
        self._enter(owner, depth)
        out: dict[str, Any] = {}
        for name, item in items:
            try:
                out[name] = self.tree(item, depth + 1)
            except EncodeFailure as failure:
                failure.path.append(f".{name}")
                raise
        self._active.discard(id(owner))
        if MARKER in out:  # a pydantic extra named "!": escape like a plain dict
            return _tagged(DICT, [[name, item] for name, item in out.items()])
        return out

    def _dict(self, value: dict[Any, Any], depth: int) -> Any:
        if MARKER not in value and set(map(type, value)) <= _STR:
            if self._shortcuts and _plain(value.values(), depth):
                return value
            self._enter(value, depth)
            out: dict[str, Any] = {}
            for key, item in value.items():
                try:
                    out[key] = self.tree(item, depth + 1)
                except EncodeFailure as failure:
                    failure.path.append(f"[{short_repr(key, 40)}]")
                    raise
            self._active.discard(id(value))
            return out
        self._enter(value, depth + 1)  # {"!": "dict", "v": [[key, value], ...]}
        pairs: list[list[Any]] = []
        for key, item in value.items():
            try:
                pair = [self.tree(key, depth + 3)]
            except EncodeFailure as failure:
                failure.path.append(f"<key {short_repr(key, 40)}>")
                raise
            try:
                pair.append(self.tree(item, depth + 3))
            except EncodeFailure as failure:
                failure.path.append(f"[{short_repr(key, 40)}]")
                raise
            pairs.append(pair)
        self._active.discard(id(value))
        return _tagged(DICT, pairs)

    def _plan(self, kind: type) -> ClassPlan:
        registry = self._registry
        plan = registry.plans.get(kind) if registry is not None else None
        if plan is None:
            plans = self._plans
            if plans is None:
                plans = self._plans = {}
            plan = plans.get(kind)
            if plan is None:
                plan = plans[kind] = plan_for(kind)
            if plan.kind is not Kind.CLASS and registry is not None:
                raise EncodeFailure(_unregistered(kind))
        if plan.kind is Kind.CLASS:
            raise EncodeFailure(_unsupported(kind))
        if plan.problem is not None:
            raise EncodeFailure(plan.problem)
        return plan

    def _instance(self, value: Any, plan: ClassPlan, depth: int) -> Any:
        kind = plan.kind
        if kind is Kind.ENUM:
            return _tagged(plan.name, value.name)
        if kind is Kind.FLAG:
            return _tagged(plan.name, self.tree(value.value, depth + 1))
        if kind is Kind.ROOT_MODEL:
            return _tagged(plan.name, self._items(value, (value.root,), depth, ".root")[0])
        if kind is Kind.NAMEDTUPLE:
            return _tagged(
                plan.name, self._fields(value, zip(plan.fields, value, strict=True), depth + 1)
            )
        items: list[tuple[str, Any]] = []
        for name in plan.fields:
            item = getattr(value, name, _UNSET)
            if item is _UNSET:
                if name in plan.ctor_fields:
                    raise EncodeFailure(f"field {name!r} of {plan.name} is not set")
                continue  # an init=False field never assigned: leave it unset again
            items.append((name, item))
        if kind is Kind.MODEL:
            extra: object = getattr(value, "__pydantic_extra__", None)
            if isinstance(extra, dict):
                items.extend(extra.items())  # pyright: ignore[reportUnknownArgumentType]
        return _tagged(plan.name, self._fields(value, items, depth + 1))

    def _type(self, cls: type) -> Any:
        name = BUILTIN_TYPE_NAMES.get(cls)
        if name is None:
            if self._registry is not None and cls not in self._registry:
                raise EncodeFailure(_unregistered(cls))
            name = class_name(cls)
        return _tagged(TYPE, name)

    def _type_expression(self, value: object, depth: int) -> Any:
        origin = typing.get_origin(value)
        args = typing.get_args(value)
        if origin is typing.Union or origin is types.UnionType:
            if len(args) > MAX_UNION:  # `decode` would refuse it
                raise EncodeFailure(f"a union of {len(args)} types (at most {MAX_UNION})")
            return _tagged(UNION, self._items(value, args, depth + 1, "[{}]"))
        if origin is typing.Literal:
            return _tagged(LITERAL, self._items(value, args, depth + 1, "[{}]"))
        if isinstance(origin, type):
            if not args and not isinstance(value, types.GenericAlias):  # bare typing.List
                return self._type(origin)
            payload = [self._type(origin), self._items(value, args, depth + 2, "[{}]")]
            return _tagged(GENERIC, payload)
        raise EncodeFailure(f"type expression {value!r} is not supported")


def _unregistered(cls: type) -> str:
    return (
        f"class {_dotted(cls)} is not registered with this workflow, so a checkpoint holding "
        f"it could not be read back; add it with WorkflowBuilder.register_types("
        f"{cls.__qualname__})"
    )
