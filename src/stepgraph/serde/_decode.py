"""Tagged JSON bytes -> value, rebuilding only builtin kinds and registered classes.

The C JSON scanner calls `_Decoder._hook` for each object, innermost first, so
a tag's payload is already decoded when the tag is rebuilt and plain values
cost no Python work beyond one call per object. Tags are looked up in fixed
tables and the `TypeRegistry`; nothing is ever imported or resolved by name.

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
import json
import math
import re
import types
import typing
import uuid
from collections.abc import Callable, Iterable
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
    MARKER,
    PAYLOAD,
    SET,
    TIME,
    TIMEDELTA,
    TUPLE,
    TYPE,
    UNION,
    UUID,
    short_repr,
)
from ._registry import ClassPlan, Kind, TypeRegistry, as_registry, pydantic_base

__all__ = ["decode"]


def decode(data: bytes, *, types: Iterable[object] = ()) -> object:
    """Decode bytes written by `encode`.

    Args:
        data: the encoded bytes (bytes, bytearray or memoryview).
        types: the user classes that may appear (a `TypeRegistry`, reused with
            its cached decoder, or an iterable wrapped in a new one). Builtin
            kinds are always decodable.

    Returns:
        The decoded value.

    Raises:
        CheckpointDecodeError: for malformed input of any kind: not UTF-8, not
            JSON, too deeply nested, an unknown tag, a class outside `types`,
            fields that do not fit the class, or a constructor that refuses
            them. No other exception escapes.
    """
    registry = as_registry(types)
    decoder = registry._decoder
    if not isinstance(decoder, _Decoder):
        decoder = registry._decoder = _Decoder(registry)
    return decoder.decode(data)


_LONG_STR: Final = 512
_ESCAPED_BYTES: Final = (*range(32), ord("\\"))


def _malformed(detail: str) -> CheckpointDecodeError:
    return CheckpointDecodeError(f"checkpoint data is malformed: {detail}")


def _reject_constant(name: str) -> NoReturn:
    raise _malformed(f"{name} is not valid JSON")


class _Decoder:
    __slots__ = ("_json", "_registry")

    def __init__(self, registry: TypeRegistry) -> None:
        self._registry = registry
        self._json = json.JSONDecoder(object_hook=self._hook, parse_constant=_reject_constant)

    def decode(self, data: object) -> object:
        if (
            type(data) is bytes
            and len(data) >= _LONG_STR
            and data[:1] == data[-1:] == b'"'
            and data.count(b'"') == 2
            and not any(map(data.__contains__, _ESCAPED_BYTES))
        ):
            try:  # a long string without escapes: skip the JSON scanner's per-char loop
                return str(data[1:-1], "utf-8")
            except UnicodeDecodeError:
                pass  # reported below
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CheckpointDecodeError(f"checkpoint data must be bytes, not {type(data).__name__}")
        try:
            text = str(cast(bytes, data), "utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointDecodeError(
                f"checkpoint data is not UTF-8 JSON (a pickle or another format?): {exc}"
            ) from None
        try:
            return self._json.decode(text)
        except CheckpointDecodeError:
            raise
        except json.JSONDecodeError as exc:
            raise CheckpointDecodeError(f"checkpoint data is not valid JSON: {exc}") from None
        except RecursionError:
            raise CheckpointDecodeError("checkpoint data is nested too deeply") from None
        except Exception as exc:  # any other failure is malformed input too
            raise _malformed(f"{type(exc).__name__}: {short_repr(str(exc))}") from exc

    def _hook(self, obj: dict[str, Any]) -> Any:
        if MARKER not in obj:
            return obj
        if len(obj) != 2 or PAYLOAD not in obj:
            raise _malformed(f"a tagged object has exactly the keys '!' and 'v', not {list(obj)}")
        tag = obj[MARKER]
        if type(tag) is not str:
            raise _malformed(f"a tag is a string, not {short_repr(tag)}")
        builtin = _BUILTINS.get(tag)
        if builtin is not None:
            return builtin(self, obj[PAYLOAD])
        entry = self._registry._by_name.get(tag)
        if entry is None:
            raise CheckpointDecodeError(_unknown(tag))
        cls, plan = entry
        try:
            return _REBUILD[plan.kind](cls, plan, obj[PAYLOAD])
        except CheckpointDecodeError:
            raise
        except Exception as exc:  # the class's own constructor or validators refused
            raise CheckpointDecodeError(
                f"cannot rebuild {plan.name} from the checkpoint: "
                f"{type(exc).__name__}: {short_repr(str(exc), 200)}"
            ) from exc

    def type_named(self, name: object) -> type:
        if type(name) is not str:
            raise _malformed(f"a type name is a string, not {short_repr(name)}")
        cls = BUILTIN_TYPES.get(name)
        if cls is not None:
            return cls
        entry = self._registry._by_name.get(name)
        if entry is None:
            raise CheckpointDecodeError(_unknown(name))
        return entry[0]


def _unknown(tag: str) -> str:
    if ":" in tag:
        return (
            f"the checkpoint names class {short_repr(tag)}, which this workflow does not "
            "know; if it is one of yours, add it with WorkflowBuilder.register_types(...) "
            "(classes are never imported by name from checkpoint data)"
        )
    return f"checkpoint data is malformed: unknown tag {short_repr(tag)}"


# -- builtin kinds ---------------------------------------------------------------------


def _need(kind: type, tag: str, payload: object) -> Any:
    if type(payload) is not kind:
        raise _malformed(f"{tag!r} needs a {kind.__name__} payload, not {short_repr(payload)}")
    return payload


def _hashable_items(kind: Callable[[list[Any]], Any], tag: str, payload: object) -> Any:
    try:
        return kind(_need(list, tag, payload))
    except TypeError:
        raise _malformed(f"{tag!r} holds an unhashable item") from None


def _pairs(payload: object) -> dict[Any, Any]:
    pairs = cast(list[object], _need(list, DICT, payload))
    out: dict[Any, Any] = {}
    for index, item in enumerate(pairs):
        pair = cast(list[object], item) if type(item) is list else None
        if pair is None or len(pair) != 2:
            raise _malformed(f"'dict' needs [key, value] pairs, not {short_repr(pairs[index])}")
        key, value = pair
        try:
            out[key] = value
        except TypeError:
            raise _malformed(f"dict key {short_repr(key)} is unhashable") from None
    return out


_NONFINITE: Final = {"nan": math.nan, "-nan": -math.nan, "inf": math.inf, "-inf": -math.inf}
_HEX_INT: Final = re.compile(r"-?[0-9a-f]+")
_DECIMAL: Final = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|Infinity|s?NaN[0-9]*)"
)


def _float(payload: object) -> float:
    value = _NONFINITE.get(_need(str, FLOAT, payload))
    if value is None:
        raise _malformed(f"'float' payload is nan, -nan, inf or -inf, not {short_repr(payload)}")
    return value


def _matching(pattern: re.Pattern[str], tag: str, payload: object) -> str:
    text = _need(str, tag, payload)
    if pattern.fullmatch(text) is None:
        raise _malformed(f"bad {tag!r} payload {short_repr(text)}")
    return text


def _timedelta(payload: object) -> datetime.timedelta:
    parts = cast(list[object], _need(list, TIMEDELTA, payload))
    if len(parts) != 3 or any(type(part) is not int for part in parts):
        raise _malformed(f"'timedelta' needs [days, seconds, microseconds], not {parts!r}")
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
        raise _malformed(f"{tag!r} arguments must be types, not {short_repr(args)}")
    return tuple(args)


def _generic(decoder: _Decoder, payload: object) -> object:
    parts = cast(list[object], _need(list, GENERIC, payload))
    if len(parts) != 2 or not isinstance(parts[0], type):
        raise _malformed(f"'generic' needs [origin, [args]], not {short_repr(parts)}")
    origin, args = parts[0], _type_args(GENERIC, parts[1])
    if origin in BUILTIN_TYPE_NAMES:
        return types.GenericAlias(origin, args)
    return cast(Any, origin)[args]  # a registered generic class: its __class_getitem__


_LITERAL_KINDS: Final = frozenset({str, int, bool, bytes, types.NoneType})


def _literal(payload: object) -> object:
    values = cast(list[object], _need(list, LITERAL, payload))
    for value in values:
        if type(value) not in _LITERAL_KINDS and not isinstance(value, enum.Enum):
            raise _malformed(f"{short_repr(value)} cannot be a Literal value")
    return typing.Literal[tuple(values)]


_BUILTINS: Final[dict[str, Callable[[_Decoder, Any], object]]] = {
    TUPLE: lambda _, v: tuple(_need(list, TUPLE, v)),
    SET: lambda _, v: _hashable_items(set, SET, v),
    FROZENSET: lambda _, v: _hashable_items(frozenset, FROZENSET, v),
    DICT: lambda _, v: _pairs(v),
    BYTES: lambda _, v: base64.b64decode(_need(str, BYTES, v), validate=True),
    BYTEARRAY: lambda _, v: bytearray(base64.b64decode(_need(str, BYTEARRAY, v), validate=True)),
    FLOAT: lambda _, v: _float(v),
    INT: lambda _, v: int(_matching(_HEX_INT, INT, v), 16),
    DATETIME: lambda _, v: datetime.datetime.fromisoformat(_need(str, DATETIME, v)),
    DATE: lambda _, v: datetime.date.fromisoformat(_need(str, DATE, v)),
    TIME: lambda _, v: datetime.time.fromisoformat(_need(str, TIME, v)),
    TIMEDELTA: lambda _, v: _timedelta(v),
    UUID: lambda _, v: uuid.UUID(_need(str, UUID, v)),
    DECIMAL: lambda _, v: decimal.Decimal(_matching(_DECIMAL, DECIMAL, v)),
    ELLIPSIS: lambda _, v: ... if v is None else _need(types.NoneType, ELLIPSIS, v),
    TYPE: lambda d, v: d.type_named(v),
    GENERIC: _generic,
    UNION: lambda _, v: typing.Union[_type_args(UNION, v)],  # noqa: UP007
    LITERAL: lambda _, v: _literal(v),
}


# -- registered classes -----------------------------------------------------------------


def _fields(plan: ClassPlan, payload: object, *, required: frozenset[str]) -> dict[str, Any]:
    if type(payload) is not dict:
        raise _malformed(f"{plan.name} needs an object of fields, not {short_repr(payload)}")
    fields = cast(dict[str, Any], payload)
    missing = required - fields.keys()
    unknown: set[str] = set() if plan.extra else fields.keys() - set(plan.fields)
    if missing or unknown:
        raise _malformed(
            f"fields of {plan.name} do not match the class: "
            f"missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    return fields


def _enum(cls: type, plan: ClassPlan, payload: object) -> object:
    members = cast(Any, cls).__members__
    if type(payload) is not str or payload not in members:
        raise _malformed(f"{short_repr(payload)} is not a member of {plan.name}")
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
    raise _malformed(f"{plan.name} is registered as a class only; its instances are not stored")


_REBUILD: Final[dict[Kind, Callable[[type, ClassPlan, Any], object]]] = {
    Kind.ENUM: _enum,
    Kind.FLAG: _flag,
    Kind.DATACLASS: _dataclass,
    Kind.NAMEDTUPLE: _namedtuple,
    Kind.MODEL: _model,
    Kind.ROOT_MODEL: _root_model,
    Kind.CLASS: _class_only,
}
