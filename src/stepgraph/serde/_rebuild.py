"""Rebuilding values from tags: fixed tables for builtin kinds, the registry for classes.

A tag's payload arrives already decoded (the JSON scanner works innermost
first), so each rebuilder checks the payload's shape and builds one value.
Nothing is imported or resolved by name: a name is only a key into
`BUILTIN_TYPES` or the `TypeRegistry`.

Dataclasses are rebuilt by calling the class with its ``init=True`` fields
(so ``__post_init__`` runs again and may validate), then setting
``init=False`` fields with `object.__setattr__`. Pydantic models go through
`model_validate` (validators run again); RootModels get their root value.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import inspect
import math
import re
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, Final, NoReturn, cast

from stepgraph._errors import CheckpointDecodeError

from ._format import (
    BUILTIN_TYPE_NAMES,
    BUILTIN_TYPES,
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
    MAX_UNION,
    SET,
    TIME,
    TIMEDELTA,
    TUPLE,
    TYPE,
    UNION,
    UUID,
    short_repr,
)
from ._registry import ClassPlan, Kind, TypeRegistry, pydantic_base

__all__ = ["malformed", "rebuild"]


def rebuild(registry: TypeRegistry, tag: object, payload: object) -> object:
    """The value a tagged object ``{"!": tag, "v": payload}`` stands for."""
    if type(tag) is not str:
        raise malformed(f"a tag is a string, not {short_repr(tag)}")
    builtin = _BUILTINS.get(tag)
    if builtin is not None:
        return builtin(registry, payload)
    entry = registry.by_name.get(tag)
    if entry is None:
        raise CheckpointDecodeError(_unknown(tag))
    cls, plan = entry
    try:
        return _REBUILD[plan.kind](cls, plan, payload)
    except CheckpointDecodeError:
        raise
    except Exception as exc:  # the class's own constructor or validators refused
        raise CheckpointDecodeError(
            f"cannot rebuild {plan.name} from the checkpoint: "
            f"{type(exc).__name__}: {short_repr(str(exc), 200)}"
        ) from exc


def malformed(detail: str) -> CheckpointDecodeError:
    return CheckpointDecodeError(f"checkpoint data is malformed: {detail}")


def _unknown(tag: str) -> str:
    if ":" in tag:
        return (
            f"the checkpoint names class {short_repr(tag)}, which this workflow does not "
            "know; if it is one of yours, add it with WorkflowBuilder.register_types(...) "
            "(classes are never imported by name from checkpoint data)"
        )
    return f"checkpoint data is malformed: unknown tag {short_repr(tag)}"


def _type_named(registry: TypeRegistry, name: object) -> type:
    if type(name) is not str:
        raise malformed(f"a type name is a string, not {short_repr(name)}")
    cls = BUILTIN_TYPES.get(name)
    if cls is not None:
        return cls
    entry = registry.by_name.get(name)
    if entry is None:
        raise CheckpointDecodeError(_unknown(name))
    return entry[0]


# -- builtin kinds ---------------------------------------------------------------------


def _need(kind: type, tag: str, payload: object) -> Any:
    if type(payload) is not kind:
        raise malformed(f"{tag!r} needs a {kind.__name__} payload, not {short_repr(payload)}")
    return payload


def _hashable_items(kind: Callable[[list[Any]], Any], tag: str, payload: object) -> Any:
    try:
        return kind(_need(list, tag, payload))
    except TypeError:
        raise malformed(f"{tag!r} holds an unhashable item") from None


def _pairs(payload: object) -> dict[Any, Any]:
    pairs = cast(list[object], _need(list, DICT, payload))
    out: dict[Any, Any] = {}
    for index, item in enumerate(pairs):
        pair = cast(list[object], item) if type(item) is list else None
        if pair is None or len(pair) != 2:
            raise malformed(f"'dict' needs [key, value] pairs, not {short_repr(pairs[index])}")
        key, value = pair
        try:
            out[key] = value
        except TypeError:
            raise malformed(f"dict key {short_repr(key)} is unhashable") from None
    return out


_NONFINITE: Final = {"nan": math.nan, "-nan": -math.nan, "inf": math.inf, "-inf": -math.inf}
_HEX_INT: Final = re.compile(r"-?[0-9a-f]+")
_DECIMAL: Final = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|Infinity|s?NaN[0-9]*)"
)


def _float(payload: object) -> float:
    value = _NONFINITE.get(_need(str, FLOAT, payload))
    if value is None:
        raise malformed(f"'float' payload is nan, -nan, inf or -inf, not {short_repr(payload)}")
    return value


def _matching(pattern: re.Pattern[str], tag: str, payload: object) -> str:
    text = _need(str, tag, payload)
    if pattern.fullmatch(text) is None:
        raise malformed(f"bad {tag!r} payload {short_repr(text)}")
    return text


def _base64(tag: str, payload: object) -> bytes:
    try:
        return base64.b64decode(_need(str, tag, payload), validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise malformed(f"bad {tag!r} payload: {exc}") from None


_Clock = typing.TypeVar("_Clock", datetime.datetime, datetime.time)


def _clock(kind: type[_Clock], tag: str, payload: object) -> _Clock:
    if type(payload) is str:
        return kind.fromisoformat(payload)
    parts = cast(list[object], _need(list, tag, payload))  # [naive isoformat, offset]
    if len(parts) != 2 or type(parts[0]) is not str:
        raise malformed(f"{tag!r} needs an isoformat string, not {short_repr(parts)}")
    naive = kind.fromisoformat(parts[0])
    if naive.tzinfo is not None:
        raise malformed(f"{tag!r} has two offsets: {short_repr(parts)}")
    return naive.replace(tzinfo=datetime.timezone(_timedelta(parts[1])))


def _timedelta(payload: object) -> datetime.timedelta:
    parts = cast(list[object], _need(list, TIMEDELTA, payload))
    if len(parts) != 3 or any(type(part) is not int for part in parts):
        raise malformed(f"'timedelta' needs [days, seconds, microseconds], not {parts!r}")
    days, seconds, micros = cast(list[int], parts)
    return datetime.timedelta(days=days, seconds=seconds, microseconds=micros)


def _is_type_arg(arg: object) -> bool:
    kind = type(arg)
    if kind is list:
        return all(_is_type_arg(item) for item in cast(list[object], arg))
    return (
        arg is None
        or arg is Ellipsis
        or isinstance(arg, (type, types.GenericAlias, types.UnionType))
        or kind.__module__ == "typing"
    )


def _type_args(tag: str, payload: object) -> tuple[Any, ...]:
    args = cast(list[object], _need(list, tag, payload))
    if not all(_is_type_arg(arg) for arg in args):
        raise malformed(f"{tag!r} arguments must be types, not {short_repr(args)}")
    return tuple(args)


def _generic(registry: TypeRegistry, payload: object) -> object:
    parts = cast(list[object], _need(list, GENERIC, payload))
    if len(parts) != 2 or not isinstance(parts[0], type):
        raise malformed(f"'generic' needs [origin, [args]], not {short_repr(parts)}")
    origin, args = parts[0], _type_args(GENERIC, parts[1])
    if origin in BUILTIN_TYPE_NAMES:
        return types.GenericAlias(origin, args)
    return cast(Any, origin)[args]  # a registered generic class: its __class_getitem__


def _union(payload: object) -> object:
    """The union of the members, as `functools.reduce(operator.or_, members)` builds it
    (`int | None` is a `types.UnionType`, `Literal[1] | None` a `typing.Union`), in time
    linear in the payload: at most `MAX_UNION` members (flattened), joined in a
    balanced tree, or in one `typing.Union[...]` when `|` would make one anyway.
    """
    members = _type_args(UNION, payload)
    if not members:
        raise malformed("'union' needs at least one member")
    size = sum(len(typing.get_args(m)) if _is_union(m) else 1 for m in members)
    if size > MAX_UNION:
        raise malformed(f"'union' has {size} members; at most {MAX_UNION} are read")
    if len(members) == 1:
        return members[0]
    if any(m is Ellipsis or type(m) is list for m in members):
        raise malformed(f"'union' members must be types, not {short_repr(members)}")
    if not all(_or_makes_union_type(m) for m in members):
        return cast(Any, typing.Union)[members]
    level: list[Any] = [types.NoneType if m is None else m for m in members]  # as `|` reads it
    while len(level) > 1:  # (a | b) | (c | d) is a | b | c | d: same members, same order
        pairs = zip(level[::2], level[1::2], strict=False)
        level = [a | b for a, b in pairs] + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def _is_union(tp: object) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or origin is types.UnionType


def _or_makes_union_type(tp: object) -> bool:
    """Whether `tp | x` gives a `types.UnionType` (C's `is_unionable`), not a `typing.Union`."""
    return tp is None or isinstance(tp, type | types.GenericAlias | types.UnionType)


_LITERAL_KINDS: Final = frozenset({str, int, bool, bytes, types.NoneType})


def _literal(payload: object) -> object:
    values = cast(list[object], _need(list, LITERAL, payload))
    if not values:
        raise malformed("'literal' needs at least one value")
    for value in values:
        if type(value) not in _LITERAL_KINDS and not isinstance(value, enum.Enum):
            raise malformed(f"{short_repr(value)} cannot be a Literal value")
    return typing.Literal[tuple(values)]


_BUILTINS: Final[dict[str, Callable[[TypeRegistry, Any], object]]] = {
    TUPLE: lambda _, v: tuple(_need(list, TUPLE, v)),
    SET: lambda _, v: _hashable_items(set, SET, v),
    FROZENSET: lambda _, v: _hashable_items(frozenset, FROZENSET, v),
    DICT: lambda _, v: _pairs(v),
    BYTES: lambda _, v: _base64(BYTES, v),
    BYTEARRAY: lambda _, v: bytearray(_base64(BYTEARRAY, v)),
    FLOAT: lambda _, v: _float(v),
    INT: lambda _, v: int(_matching(_HEX_INT, INT, v), 16),
    DATETIME: lambda _, v: _clock(datetime.datetime, DATETIME, v),
    DATE: lambda _, v: datetime.date.fromisoformat(_need(str, DATE, v)),
    TIME: lambda _, v: _clock(datetime.time, TIME, v),
    TIMEDELTA: lambda _, v: _timedelta(v),
    UUID: lambda _, v: uuid.UUID(_need(str, UUID, v)),
    DECIMAL: lambda _, v: decimal.Decimal(_matching(_DECIMAL, DECIMAL, v)),
    ELLIPSIS: lambda _, v: ... if v is None else _need(types.NoneType, ELLIPSIS, v),
    TYPE: _type_named,
    GENERIC: _generic,
    UNION: lambda _, v: _union(v),
    LITERAL: lambda _, v: _literal(v),
}


# -- registered classes -----------------------------------------------------------------


def _fields(plan: ClassPlan, payload: object, *, required: frozenset[str]) -> dict[str, Any]:
    if type(payload) is not dict:
        raise malformed(f"{plan.name} needs an object of fields, not {short_repr(payload)}")
    fields = cast(dict[str, Any], payload)
    missing = required - fields.keys()
    unknown: set[str] = set() if plan.extra else fields.keys() - set(plan.fields)
    if missing or unknown:
        problems = [f"missing {sorted(missing)}"] if missing else []
        problems += [f"unknown {sorted(unknown)}"] if unknown else []
        raise malformed(f"fields of {plan.name} do not match the class: {', '.join(problems)}")
    return fields


def _enum(cls: type, plan: ClassPlan, payload: object) -> object:
    members = cast(Any, cls).__members__
    if type(payload) is not str or payload not in members:
        raise malformed(f"{short_repr(payload)} is not a member of {plan.name}")
    return members[payload]


def _flag(cls: type, plan: ClassPlan, payload: object) -> object:
    return cast(Any, cls)(_need(int, plan.name, payload))


def _dataclass(cls: type, plan: ClassPlan, payload: object) -> object:
    if plan.problem is not None:
        raise CheckpointDecodeError(plan.problem)
    fields = _fields(plan, payload, required=plan.ctor_fields)
    obj = cast(Any, cls)(**{name: fields[name] for name in plan.ctor_fields})
    for name in plan.set_fields:
        if name in fields:
            object.__setattr__(obj, name, fields[name])
    return obj


def _namedtuple(cls: type, plan: ClassPlan, payload: object) -> object:
    fields = _fields(plan, payload, required=plan.ctor_fields)
    return cast(Any, cls)(*(fields[name] for name in plan.fields))


_validate_options: dict[str, bool] | None = None


def _model(cls: type, plan: ClassPlan, payload: object) -> object:
    global _validate_options
    model = cast(Any, cls)
    fields = _fields(plan, payload, required=plan.ctor_fields)
    if _validate_options is None:
        params = inspect.signature(cast(Any, pydantic_base()).model_validate).parameters
        _validate_options = {"by_alias": False, "by_name": True} if "by_name" in params else {}
    if _validate_options:
        return model.model_validate(fields, **_validate_options)
    renamed: dict[str, Any] = {}  # pydantic < 2.11: fields go in under their str alias
    for name, value in fields.items():
        info = model.model_fields.get(name)
        alias: object = None if info is None else (info.validation_alias or info.alias)
        renamed[alias if isinstance(alias, str) else name] = value
    return model.model_validate(renamed)


def _root_model(cls: type, plan: ClassPlan, payload: object) -> object:
    return cast(Any, cls).model_validate(payload)


def _class_only(cls: type, plan: ClassPlan, payload: object) -> NoReturn:
    raise malformed(f"{plan.name} is registered as a class only; its instances are not stored")


_REBUILD: Final[dict[Kind, Callable[[type, ClassPlan, Any], object]]] = {
    Kind.ENUM: _enum,
    Kind.FLAG: _flag,
    Kind.DATACLASS: _dataclass,
    Kind.NAMEDTUPLE: _namedtuple,
    Kind.MODEL: _model,
    Kind.ROOT_MODEL: _root_model,
    Kind.CLASS: _class_only,
}
