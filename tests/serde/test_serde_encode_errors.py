"""What `encode` refuses, and how it says so."""

from __future__ import annotations

import collections
import dataclasses
import enum
import re
import socket
import threading
from typing import Any, NamedTuple

import pytest

from stepgraph import serde
from stepgraph._errors import SerializationError


@dataclasses.dataclass
class Holder:
    field: Any


@dataclasses.dataclass
class Inner:
    n: int


@dataclasses.dataclass
class Outer:
    inner: Inner


class Tone(enum.Enum):
    LOW = 1


class Row(NamedTuple):
    a: int


@dataclasses.dataclass
class NeedsInitVar:
    a: int
    secret: dataclasses.InitVar[str]

    def __post_init__(self, secret: str) -> None:
        pass


@dataclasses.dataclass
class DefaultInitVar:
    a: int
    secret: dataclasses.InitVar[str] = "x"

    def __post_init__(self, secret: str) -> None:
        pass


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyList(list[int]):
    pass


def _generator() -> Any:
    yield 1


UNSUPPORTED: list[tuple[object, str]] = [
    (object(), "object of type object is not supported"),
    (lambda: 1, "object of type function"),
    (_generator(), "object of type generator"),
    (threading.Lock(), "_thread.lock"),
    (1j, "object of type complex"),
    (range(3), "object of type range"),
    (memoryview(b"x"), "memoryview"),
    (collections.OrderedDict(a=1), "collections.OrderedDict is a dict subclass"),
    (collections.defaultdict(list), "collections.defaultdict is a dict subclass"),
    (collections.Counter("ab"), "collections.Counter is a dict subclass"),
    (MyStr("x"), "MyStr is a str subclass"),
    (MyInt(1), "MyInt is a int subclass"),
    (MyList([1]), "MyList is a list subclass"),
    (NotImplemented, "NotImplementedType"),
]


@pytest.mark.parametrize(("value", "message"), UNSUPPORTED, ids=lambda v: type(v).__name__)
def test_unsupported_kinds_are_refused(value: object, message: str) -> None:
    for types in (None, ()):
        with pytest.raises(SerializationError, match=re.escape(message)):
            serde.encode(value, types=types)
        with pytest.raises(SerializationError, match=re.escape(message)):
            serde.encode({"deep": [value]}, types=types)


def test_a_socket_is_refused_with_its_type() -> None:
    with (
        socket.socket() as sock,
        pytest.raises(SerializationError, match=r"value\['conn'\]: object of type socket\.socket"),
    ):
        serde.encode({"conn": sock})


def test_the_message_gives_the_path_inside_the_value() -> None:
    value = {"x": [1, 2, Holder(field=object())]}
    with pytest.raises(SerializationError) as info:
        serde.encode(value)
    assert str(info.value).startswith("cannot encode value['x'][2].field: object of type object")
    with pytest.raises(SerializationError, match=r"value\[0\]\[1\]\.a: object of type function"):
        serde.encode([(1, Row(a=lambda: 0))])  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match=r"value<key \(1, <function"):
        serde.encode({(1, lambda: 0): "key holds a lambda"})
    with pytest.raises(SerializationError, match=r"value\[2\]: object of type complex"):
        serde.encode({1: "a", 2: 3j})
    with pytest.raises(SerializationError, match=r"value\{…\}: object of type complex"):
        serde.encode({1j})


def test_serialization_error_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        serde.encode(object())


def test_cycles_are_reported_not_recursion_errors() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    with pytest.raises(SerializationError, match=r"value\[1\]: reference cycle"):
        serde.encode(loop)
    mapping: dict[str, object] = {}
    mapping["self"] = mapping
    with pytest.raises(SerializationError, match="reference cycle"):
        serde.encode(mapping)
    holder = Holder(field=None)
    holder.field = [holder]
    with pytest.raises(SerializationError, match=r"value\.field\[0\]: reference cycle"):
        serde.encode(holder)
    keyed: dict[object, object] = {1: None}
    keyed[1] = keyed
    with pytest.raises(SerializationError, match="reference cycle"):
        serde.encode(keyed)


def test_nesting_limit() -> None:
    ok: object = "leaf"
    for _ in range(200):
        ok = [ok]
    assert serde.decode(serde.encode(ok)) == ok
    too_deep: object = "leaf"
    for _ in range(300):
        too_deep = [too_deep]
    with pytest.raises(SerializationError, match="nested deeper than 256 levels"):
        serde.encode(too_deep)
    tuples: object = ()
    for _ in range(300):
        tuples = (tuples,)
    with pytest.raises(SerializationError, match="nested deeper"):
        serde.encode(tuples)


def test_values_written_at_the_limit_decode_from_a_deep_stack() -> None:
    value: object = 1
    for _ in range(255):
        value = [value]
    data = serde.encode(value)

    def at_depth(n: int) -> object:
        return serde.decode(data) if n == 0 else at_depth(n - 1)

    assert at_depth(300) == value


def test_unregistered_classes_are_refused_when_types_are_given() -> None:
    registry = serde.TypeRegistry([Holder])
    assert serde.decode(serde.encode(Holder(1), types=registry), types=registry) == Holder(1)
    for value, name in [
        (Inner(1), "Inner"),
        (Tone.LOW, "Tone"),
        (Row(1), "Row"),
        (Holder(Inner(1)), "Inner"),
        (Inner, "Inner"),
        (list[Inner], "Inner"),
    ]:
        with pytest.raises(SerializationError) as info:
            serde.encode(value, types=registry)
        message = str(info.value)
        assert f"class test_serde_encode_errors.{name} is not registered" in message
        assert f"WorkflowBuilder.register_types({name})" in message
    # the same values are fine without `types`, and builtin types always are
    assert serde.encode(Inner(1))
    assert serde.encode([int, str, dict[str, int]], types=registry)


def test_registration_is_by_class_not_by_name() -> None:
    def make() -> type:
        @dataclasses.dataclass
        class Inner:  # same module and qualname as the one in the registry
            n: int

        return Inner

    first, second = make(), make()
    registry = serde.TypeRegistry([first])
    assert serde.encode(first(1), types=registry)
    with pytest.raises(SerializationError, match="is not registered"):
        serde.encode(second(1), types=registry)


def test_initvar_without_default_cannot_be_stored() -> None:
    with pytest.raises(SerializationError, match="InitVar"):
        serde.encode(NeedsInitVar(1, "s"))
    back = serde.decode(serde.encode(DefaultInitVar(1)), types=[DefaultInitVar])
    assert back == DefaultInitVar(1)


def test_unset_init_field_is_refused() -> None:
    value = Inner(1)
    del value.n
    with pytest.raises(SerializationError, match=r"field 'n' of .*Inner is not set"):
        serde.encode(value)


def test_unsupported_type_expressions() -> None:
    from collections.abc import Callable
    from typing import TypeVar

    with pytest.raises(SerializationError, match="not supported"):
        serde.encode(TypeVar("T"))
    with pytest.raises(SerializationError, match="not registered"):
        serde.encode(Callable[[int], str], types=())
