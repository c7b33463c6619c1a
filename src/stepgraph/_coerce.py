"""Converting JSON-like answers (a dict from an HTTP body) into a request's response type.

`coerce(value, T)` returns `value` when it already is a `T`; otherwise it
builds a `T` from plain data when `T` is a dataclass, a pydantic model, an
enum, a NamedTuple, a typed container or a union of those. Anything that does
not fit raises `TypeError` with the path inside the value.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

__all__ = ["coerce"]


def coerce(value: Any, annotation: Any, path: str = "answer") -> Any:
    """Return `value` as an instance of `annotation`, converting plain data when possible.

    Raises:
        TypeError: the value does not fit; the message names the path and the expected type.
    """
    if annotation is Any or annotation is object:
        return value
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return coerce(value, get_args(annotation)[0], path)
    if origin is Union or origin is types.UnionType:
        errors: list[str] = []
        for arg in get_args(annotation):
            try:
                return coerce(value, arg, path)
            except TypeError as exc:
                errors.append(str(exc))
        raise TypeError(f"{path}: {value!r} fits none of {_name(annotation)} ({'; '.join(errors)})")
    if origin is Literal:
        if value in get_args(annotation):
            return value
        raise TypeError(f"{path}: {value!r} is not one of {get_args(annotation)}")
    if annotation is None or annotation is type(None):
        if value is None:
            return None
        raise TypeError(f"{path}: expected None, got {type(value).__name__}")
    if origin is not None:
        return _container(value, typing.cast(type, origin), get_args(annotation), path)
    if not isinstance(annotation, type):
        return value  # a TypeVar or another typing construct: accept as is
    return _to_class(value, annotation, path)


def _to_class(value: Any, cls: Any, path: str) -> Any:
    """`value` as an instance of the plain class `cls` (dynamic by nature: any class)."""
    if isinstance(value, cls) and not (cls is int and isinstance(value, bool)):
        return value
    if cls is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if issubclass(cls, enum.Enum):
        return _enum(value, cls, path)
    if dataclasses.is_dataclass(cls) and isinstance(value, Mapping):
        return _dataclass(typing.cast(Mapping[str, Any], value), cls, path)
    validate: Any = getattr(cls, "model_validate", None)
    if callable(validate) and isinstance(value, Mapping):
        try:
            return validate(value)
        except Exception as exc:  # pydantic.ValidationError, kept out of our imports
            raise TypeError(f"{path}: does not fit {cls.__qualname__}: {exc}") from None
    names: Any = getattr(cls, "_fields", None)
    if isinstance(names, tuple) and isinstance(value, list | tuple):
        fields = typing.cast(tuple[str, ...], names)
        return _namedtuple(list(typing.cast(list[Any], value)), cls, fields, path)
    raise TypeError(f"{path}: expected {cls.__qualname__}, got {type(value).__name__} {value!r}")


def _namedtuple(items: list[Any], cls: Any, names: tuple[str, ...], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    if len(items) != len(names):
        raise TypeError(f"{path}: {cls.__qualname__} takes {len(names)} items")
    return cls(
        *(coerce(v, hints.get(f, Any), f"{path}.{f}") for v, f in zip(items, names, strict=True))
    )


def _enum(value: Any, cls: type[enum.Enum], path: str) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        if isinstance(value, str) and value in cls.__members__:
            return cls[value]
    allowed = [m.value for m in cls]
    raise TypeError(f"{path}: {value!r} is not a {cls.__qualname__} (one of {allowed})")


def _dataclass(value: Mapping[str, Any], cls: type, path: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise TypeError(f"{path}: {cls.__qualname__} has no fields {unknown}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = coerce(value[name], hints.get(name, Any), f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise TypeError(f"{path}: {cls.__qualname__} needs field {name!r}")
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise TypeError(f"{path}: {cls.__qualname__} refused {kwargs!r}: {exc}") from None


def _container(value: Any, origin: type, args: tuple[Any, ...], path: str) -> Any:
    if issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{path}: expected a mapping, got {type(value).__name__}")
        kt, vt = args if len(args) == 2 else (Any, Any)
        items = typing.cast(Mapping[Any, Any], value).items()
        return {coerce(k, kt, f"{path} key"): coerce(v, vt, f"{path}[{k!r}]") for k, v in items}
    if not isinstance(value, list | tuple | set | frozenset):
        raise TypeError(f"{path}: expected a sequence, got {type(value).__name__}")
    items = list(typing.cast(list[Any], value))
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise TypeError(f"{path}: expected {len(args)} items, got {len(items)}")
        return tuple(
            coerce(v, t, f"{path}[{i}]") for i, (v, t) in enumerate(zip(items, args, strict=True))
        )
    item = args[0] if args else Any
    converted = [coerce(v, item, f"{path}[{i}]") for i, v in enumerate(items)]
    if origin in (set, frozenset, tuple):
        make: Any = origin
        return make(converted)
    return converted


def _name(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)
