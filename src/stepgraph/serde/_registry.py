"""Which user classes a workflow knows, and how each kind is taken apart.

A `ClassPlan` says how instances of one class are stored: which fields, which
of them go to the constructor, and what stops the class from being stored at
all. Plans hold no reference to their class, so the module-level cache cannot
keep dynamically created classes alive.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, cast

from stepgraph._errors import SerializationError

from ._format import BUILTIN_TYPE_NAMES, BUILTIN_TYPES, class_name

__all__ = ["EMPTY", "ClassPlan", "Kind", "TypeRegistry", "as_registry", "plan_for"]


class Kind(enum.Enum):
    """How instances of a class are stored."""

    DATACLASS = "dataclass"
    NAMEDTUPLE = "namedtuple"
    ENUM = "enum"  # stored by member name
    FLAG = "flag"  # stored by int value, so combined flags round-trip
    MODEL = "model"  # pydantic v2 BaseModel, stored by field name
    ROOT_MODEL = "root_model"  # pydantic RootModel, stored as its root value
    CLASS = "class"  # any other class: only its type object can be stored


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ClassPlan:
    """How instances of one class are encoded and rebuilt.

    Attributes:
        name: the ``module:qualname`` tag.
        kind: the storage strategy.
        fields: every stored field, in declaration order.
        ctor_fields: fields passed to the constructor by keyword when rebuilding.
        set_fields: fields set afterwards with `object.__setattr__` (dataclass
            fields with ``init=False``); optional in the payload.
        extra: a pydantic model that keeps extra keys.
        problem: why instances cannot be stored, or None.
    """

    name: str
    kind: Kind
    fields: tuple[str, ...] = ()
    ctor_fields: frozenset[str] = frozenset()
    set_fields: frozenset[str] = frozenset()
    extra: bool = False
    problem: str | None = None


def pydantic_base() -> type | None:
    """`pydantic.BaseModel` if pydantic is already imported, else None.

    No model instance can exist before pydantic is imported, so looking in
    `sys.modules` detects models without ever importing pydantic.
    """
    module = sys.modules.get("pydantic.main")
    base: object = getattr(module, "BaseModel", None) if module is not None else None
    return base if isinstance(base, type) else None


def plan_for(cls: type) -> ClassPlan:
    """How values of `cls` are encoded (made anew: registries keep theirs, no global cache)."""
    name = class_name(cls)
    if _subclass(cls, enum.Enum):
        return ClassPlan(name, Kind.FLAG if _subclass(cls, enum.Flag) else Kind.ENUM)
    if dataclasses.is_dataclass(cast(object, cls)):
        return _dataclass_plan(cls, name)
    named: object = getattr(cls, "_fields", None)
    if _subclass(cls, tuple) and isinstance(named, tuple):
        fields = cast(tuple[object, ...], named)
        if all(type(field) is str for field in fields):
            names = cast(tuple[str, ...], fields)
            return ClassPlan(name, Kind.NAMEDTUPLE, names, frozenset(names))
    base = pydantic_base()
    if base is not None and _subclass(cls, base):
        model = cast(Any, cls)
        if getattr(model, "__pydantic_root_model__", False) is True:
            return ClassPlan(name, Kind.ROOT_MODEL)
        fields = tuple(cast(dict[str, object], model.model_fields))
        extra = model.model_config.get("extra") == "allow"
        return ClassPlan(name, Kind.MODEL, fields, frozenset(fields), extra=extra)
    return ClassPlan(name, Kind.CLASS)


def _subclass(cls: type, base: type) -> bool:  # issubclass without type narrowing
    return issubclass(cls, base)


def _dataclass_plan(cls: type, name: str) -> ClassPlan:
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return ClassPlan(name, Kind.DATACLASS, names, problem=f"{name} has no inspectable __init__")
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    ctor = frozenset(f.name for f in fields if f.init and (takes_any or f.name in params))
    problem = None
    for param in params.values():
        required = param.default is param.empty and param.kind not in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        )
        if required and param.name not in ctor:
            problem = (
                f"dataclass {name} cannot be rebuilt from its fields: __init__ requires "
                f"{param.name!r}, which is not a stored field (an InitVar without a default?)"
            )
            break
    return ClassPlan(name, Kind.DATACLASS, names, ctor, frozenset(names) - ctor, problem=problem)


def _field_annotations(cls: type, plan: ClassPlan) -> list[object]:
    """The annotations of the stored fields of `cls` (for the registry closure)."""
    if plan.kind in (Kind.MODEL, Kind.ROOT_MODEL):
        model_fields = cast(dict[str, Any], cast(Any, cls).model_fields)
        return [info.annotation for info in model_fields.values()]
    if plan.kind not in (Kind.DATACLASS, Kind.NAMEDTUPLE):
        return []
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: fall back to the raw ones
        hints = {}
    raw: dict[str, object] = {}
    if plan.kind is Kind.DATACLASS:
        raw = {f.name: f.type for f in dataclasses.fields(cls)}
    else:
        raw = dict(cast(dict[str, object], getattr(cls, "__annotations__", {})))
    return [hints.get(field, raw.get(field)) for field in plan.fields]


def _classes_in(annotation: object, out: list[type]) -> None:
    """Append every class named in `annotation` (a class or a type expression)."""
    if isinstance(annotation, type):
        out.append(annotation)
        return
    if isinstance(annotation, (list, tuple)):  # Callable[[A, B], C] argument lists
        for item in cast(Iterable[object], annotation):
            _classes_in(item, out)
        return
    if isinstance(annotation, typing.TypeVar):
        _classes_in(annotation.__bound__, out)
        _classes_in(annotation.__constraints__, out)
        return
    if isinstance(annotation, typing.NewType):
        _classes_in(annotation.__supertype__, out)
        return
    origin = typing.get_origin(annotation)
    if origin is None:
        return  # strings, ForwardRefs, special forms: nothing to register
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        out.extend(type(arg) for arg in args if isinstance(arg, enum.Enum))
        return
    if origin is typing.Annotated:
        args = args[:1]
    elif isinstance(origin, type):
        out.append(origin)
    for arg in args:
        _classes_in(arg, out)


def _is_annotation(obj: object) -> bool:
    return (
        obj is None
        or isinstance(obj, type)
        or typing.get_origin(obj) is not None
        or type(obj).__module__ in ("typing", "typing_extensions", "types")
    )


class TypeRegistry:
    """The user classes a workflow may store, closed over their field types.

    Built once per workflow from handler, request and response annotations plus
    `WorkflowBuilder.register_types(...)`. The closure follows dataclass,
    NamedTuple and pydantic fields, generic arguments (``list[Foo]``,
    ``dict[str, Foo]``), unions, `Literal` enum members and `Annotated`, so
    registering an outer class makes its nested classes decodable. Subclasses
    are not added: register them too.

    Args:
        types: classes or type annotations (``Foo``, ``list[Foo]``, ``Foo | None``).

    Raises:
        SerializationError: an item is not a class or annotation, or two
            different classes share one ``module:qualname`` name.
    """

    __slots__ = ("by_name", "decoder", "plans")

    def __init__(self, types: Iterable[object] = ()) -> None:
        plans: dict[type, ClassPlan] = {}
        pending: list[object] = []
        for item in types:
            if not _is_annotation(item):
                raise SerializationError(
                    f"TypeRegistry takes classes or type annotations, got {item!r}"
                )
            pending.append(item)
        while pending:
            found: list[type] = []
            _classes_in(pending.pop(), found)
            for cls in found:
                if cls in plans or cls in BUILTIN_TYPE_NAMES:
                    continue
                plan = plans[cls] = plan_for(cls)
                pending.extend(_field_annotations(cls, plan))
        by_name: dict[str, tuple[type, ClassPlan]] = {}
        for cls, plan in plans.items():
            other = by_name.setdefault(plan.name, (cls, plan))[0]
            if other is not cls or plan.name in BUILTIN_TYPES:
                raise SerializationError(
                    f"two different classes are both named {plan.name!r}; a checkpoint "
                    "could not tell them apart. Rename one or register only one."
                )
        self.plans: Final[Mapping[type, ClassPlan]] = plans
        """How each registered class is encoded (read-only)."""
        self.by_name: Final[Mapping[str, tuple[type, ClassPlan]]] = by_name
        """Each registered class and its plan, by its tag name (read-only)."""
        self.decoder: object = None
        """The decoder `serde.decode` made for this registry, cached (serde's own use)."""

    def __contains__(self, cls: object) -> bool:
        return isinstance(cls, type) and cls in self.plans

    def __iter__(self) -> Iterator[type]:
        return iter(self.plans)

    def __len__(self) -> int:
        return len(self.plans)

    def __repr__(self) -> str:
        names = ", ".join(sorted(self.by_name))
        return f"TypeRegistry([{names}])"


EMPTY: Final = TypeRegistry()


def as_registry(types: Iterable[object]) -> TypeRegistry:
    """`types` itself when it is a `TypeRegistry`, else a new one built from it."""
    if isinstance(types, TypeRegistry):
        return types
    if isinstance(types, tuple) and not types:
        return EMPTY
    return TypeRegistry(types)
