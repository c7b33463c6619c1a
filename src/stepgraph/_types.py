"""Runtime type introspection: the one place that reads annotations.

Routing is decided by handler annotations. This module turns an annotation
into a tuple of `TypeSpec` (one per union member), checks whether a value
matches a spec, measures how specific a match is (MRO distance), and decides
build-time compatibility between what a source may send and what a target
accepts.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, NewType, TypeVar, Union, get_args, get_origin

import typing_extensions

from ._names import module_of

__all__ = [
    "ANY",
    "TypeSpec",
    "compatible",
    "describe",
    "distance",
    "matches",
    "mismatch",
    "specs_of",
]

_ITEM_ORIGINS = (list, set, frozenset, collections.abc.Sequence, collections.abc.Set)


@dataclass(frozen=True, slots=True)
class TypeSpec:
    """A normalized annotation: a runtime class plus optional item constraints.

    Attributes:
        origin: the class an instance must be (`object` matches anything).
        args: item specs for generic containers, or None when unconstrained.
        literals: allowed values for `Literal[...]`, or None.
    """

    origin: type
    args: tuple[tuple[TypeSpec, ...], ...] | None = None
    literals: tuple[object, ...] | None = None

    @property
    def is_any(self) -> bool:
        """True when the spec accepts every value."""
        return self.origin is object and self.args is None and self.literals is None


ANY = TypeSpec(object)


def specs_of(annotation: object) -> tuple[TypeSpec, ...]:
    """Normalize an annotation into its union members.

    Raises:
        TypeError: for annotations that cannot be checked at run time.
    """
    if annotation is Any or annotation is object or annotation is typing_extensions.Any:
        return (ANY,)
    if annotation is None or annotation is type(None):
        return (TypeSpec(type(None)),)
    if annotation is typing.Never or annotation is typing.NoReturn:
        return ()
    if isinstance(annotation, TypeVar):
        bound = annotation.__bound__
        return specs_of(bound) if bound is not None else (ANY,)
    if isinstance(annotation, NewType):
        return specs_of(annotation.__supertype__)
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return specs_of(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        out: list[TypeSpec] = []
        for arg in get_args(annotation):
            out.extend(specs_of(arg))
        return tuple(dict.fromkeys(out))
    if origin is Literal:
        values: tuple[object, ...] = get_args(annotation)
        kinds: list[type[Any]] = list(dict.fromkeys(type(v) for v in values))
        return tuple(TypeSpec(k, literals=tuple(v for v in values if type(v) is k)) for k in kinds)
    if origin is not None:
        return (_generic_spec(annotation, origin),)
    if isinstance(annotation, type):
        return (TypeSpec(annotation),)
    raise TypeError(
        f"cannot route on annotation {annotation!r}: use a class, a union of classes, "
        "or a generic container of those"
    )


def _generic_spec(annotation: object, origin: object) -> TypeSpec:
    """The spec of a parametrized generic (`list[int]`, `dict[str, X]`, `tuple[T, ...]`)."""
    if not isinstance(origin, type):
        raise TypeError(f"cannot route on annotation {annotation!r}")
    cls = typing.cast(type[Any], origin)
    args: tuple[Any, ...] = get_args(annotation)
    if cls is tuple and len(args) == 2 and args[1] is Ellipsis:
        return TypeSpec(tuple, (specs_of(args[0]),))
    if len(args) == 1 and issubclass(origin, _ITEM_ORIGINS):
        return TypeSpec(cls, (specs_of(args[0]),))
    if len(args) == 2 and issubclass(origin, collections.abc.Mapping):
        return TypeSpec(cls, (specs_of(args[0]), specs_of(args[1])))
    return TypeSpec(cls)


def _match_any(value: object, specs: tuple[TypeSpec, ...]) -> bool:
    return any(matches(value, s) for s in specs)


def matches(value: object, spec: TypeSpec) -> bool:
    """True when `value` is an instance of `spec` (items checked for containers)."""
    if spec.literals is not None:
        return type(value) is spec.origin and value in spec.literals
    if not isinstance(value, spec.origin):
        return False
    if spec.args is None:
        return True
    if isinstance(value, collections.abc.Mapping):
        kspec, vspec = spec.args
        items = typing.cast(collections.abc.Mapping[object, object], value)
        return all(_match_any(k, kspec) and _match_any(v, vspec) for k, v in items.items())
    (item,) = spec.args
    if item == (ANY,):
        return True
    values = typing.cast(collections.abc.Iterable[object], value)
    return all(_match_any(v, item) for v in values)


def mismatch(value: object, spec: TypeSpec) -> str | None:
    """Why `value` does not match `spec`, naming the first offending item; None if it does."""
    if matches(value, spec):
        return None
    if spec.args is None or spec.literals is not None or not isinstance(value, spec.origin):
        return f"{type(value).__name__} is not {describe(spec)}"
    if isinstance(value, collections.abc.Mapping):
        kspec, vspec = spec.args
        items = typing.cast(collections.abc.Mapping[object, object], value)
        for k, v in items.items():
            if not _match_any(k, kspec):
                return f"the key {k!r:.40} is {type(k).__name__}, not {_describe_all(kspec)}"
            if not _match_any(v, vspec):
                return f"the value at {k!r:.40} is {type(v).__name__}, not {_describe_all(vspec)}"
        return None  # pragma: no cover - matches() said no
    (item,) = spec.args
    values = typing.cast(collections.abc.Iterable[object], value)
    for i, v in enumerate(values):
        if not _match_any(v, item):
            return f"item {i} ({v!r:.40}) is {type(v).__name__}, not {_describe_all(item)}"
    return None  # pragma: no cover - matches() said no


def _describe_all(specs: tuple[TypeSpec, ...]) -> str:
    return " | ".join(describe(s) for s in specs) or "Never"


def distance(cls: type, spec: TypeSpec) -> int:
    """Position of `spec.origin` in the MRO of `cls` (0 = exact), or -1 when unrelated."""
    try:
        return cls.__mro__.index(spec.origin)
    except ValueError:
        return -1


def _related(a: TypeSpec, b: TypeSpec) -> bool:
    if a.origin is object or b.origin is object:
        return True
    if not (issubclass(a.origin, b.origin) or issubclass(b.origin, a.origin)):
        return _protocolish(a.origin) or _protocolish(b.origin)
    if a.args is None or b.args is None or len(a.args) != len(b.args):
        return True
    return all(compatible(x, y) for x, y in zip(a.args, b.args, strict=True))


def _protocolish(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False)) or isinstance(cls, type(collections.abc.Sized))


def compatible(sent: tuple[TypeSpec, ...], accepted: tuple[TypeSpec, ...]) -> bool:
    """Build-time check: may some type in `sent` be handled by some type in `accepted`?"""
    return any(_related(a, b) for a in sent for b in accepted)


def describe(spec: TypeSpec) -> str:
    """A short human-readable name for error messages and graph signatures."""
    if spec.literals is not None:
        return "Literal[" + ", ".join(repr(v) for v in spec.literals) + "]"
    name = _qualname(spec.origin)
    if spec.args is None:
        return name
    parts = [" | ".join(describe(s) for s in group) or "Never" for group in spec.args]
    return f"{name}[{', '.join(parts)}]"


def _qualname(cls: type) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{module_of(cls)}.{cls.__qualname__}"
