"""TypeRegistry: the closure over field types, and what it accepts."""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Annotated, Generic, Literal, NamedTuple, NewType, Optional, TypeVar

import pytest

from stepgraph import serde
from stepgraph._errors import CheckpointDecodeError, SerializationError


class Tag(enum.Enum):
    A = "a"
    B = "b"


class Status(enum.Enum):
    OK = 1


@dataclasses.dataclass
class Leaf:
    tag: Tag


@dataclasses.dataclass
class ByKey:
    value: int


@dataclasses.dataclass
class Maybe:
    flag: bool


@dataclasses.dataclass
class Annotated_:
    note: str


class Row(NamedTuple):
    leaf: Leaf
    more: tuple[ByKey, ...]


@dataclasses.dataclass
class Bound:
    x: int


T = TypeVar("T", bound=Bound)
UserId = NewType("UserId", Maybe)


@dataclasses.dataclass
class Outer:
    leaves: list[Leaf]  # a list of dataclasses
    by_key: dict[str, ByKey]
    maybe: Optional[Maybe]  # noqa: UP045
    either: Row | None
    status: Literal[Status.OK]
    note: Annotated[Annotated_, "metadata"]
    generic: list[T]  # type: ignore[valid-type]
    user: UserId
    plain: int = 0


@dataclasses.dataclass
class Tree:
    value: int
    children: list[Tree]  # self-reference through a string annotation


@dataclasses.dataclass
class Box(Generic[T]):
    item: T


EXPECTED = {Outer, Leaf, Tag, ByKey, Maybe, Row, Status, Annotated_, Bound}


def test_closure_follows_field_types_transitively() -> None:
    registry = serde.TypeRegistry([Outer])
    assert set(registry) >= EXPECTED
    for cls in EXPECTED:
        assert cls in registry
    assert int not in registry  # builtins are implicit
    assert "Outer" not in registry


def test_outer_registration_makes_nested_values_decodable() -> None:
    value = Outer(
        leaves=[Leaf(Tag.A), Leaf(Tag.B)],
        by_key={"k": ByKey(1)},
        maybe=Maybe(True),
        either=Row(Leaf(Tag.A), (ByKey(2),)),
        status=Status.OK,
        note=Annotated_("n"),
        generic=[Bound(1)],
        user=UserId(Maybe(False)),
    )
    registry = serde.TypeRegistry([Outer])
    data = serde.encode(value, types=registry)
    assert serde.decode(data, types=registry) == value
    assert serde.decode(data, types=[Outer]) == value


def test_self_referencing_class() -> None:
    registry = serde.TypeRegistry([Tree])
    assert list(registry) == [Tree]
    value = Tree(1, [Tree(2, []), Tree(3, [Tree(4, [])])])
    assert serde.decode(serde.encode(value, types=registry), types=registry) == value


def test_annotations_are_accepted_as_roots() -> None:
    registry = serde.TypeRegistry([list[Leaf], Optional[ByKey], dict[str, tuple[Maybe, ...]]])  # noqa: UP045
    assert {Leaf, Tag, ByKey, Maybe} <= set(registry)
    assert len(serde.TypeRegistry([int, str, list[int], dict[str, float], typing.Any])) == 0
    assert Box in serde.TypeRegistry([Box[Bound]])
    assert Bound in serde.TypeRegistry([Box[Bound]])


def test_subclasses_are_not_added() -> None:
    @dataclasses.dataclass
    class Child(Leaf):
        extra: int = 0

    registry = serde.TypeRegistry([Leaf])
    assert Child not in registry
    with pytest.raises(SerializationError, match="Child is not registered"):
        serde.encode(Child(Tag.A), types=registry)


def test_unresolvable_forward_references_do_not_break_the_registry() -> None:
    @dataclasses.dataclass
    class Dangling:
        ghost: list[Missing]  # type: ignore[name-defined]  # noqa: F821
        leaf: Leaf

    registry = serde.TypeRegistry([Dangling])
    assert Dangling in registry
    assert Leaf not in registry  # hints could not be resolved as a whole
    with pytest.raises(SerializationError, match="Leaf is not registered"):
        serde.encode(Dangling([], Leaf(Tag.A)), types=registry)


def test_two_classes_with_one_name_are_refused() -> None:
    def make() -> type:
        @dataclasses.dataclass
        class Twin:
            n: int

        return Twin

    with pytest.raises(SerializationError, match=r"Twin.*could not tell them apart"):
        serde.TypeRegistry([make(), make()])


@pytest.mark.parametrize("item", [3, "Outer", b"x", [Outer], None.__class__.__name__])
def test_non_annotations_are_refused(item: object) -> None:
    with pytest.raises(SerializationError, match="takes classes or type annotations"):
        serde.TypeRegistry([item])  # type: ignore[list-item]


def test_registry_is_a_reusable_collection() -> None:
    registry = serde.TypeRegistry([Leaf])
    assert len(registry) == 2
    assert set(registry) == {Leaf, Tag}
    assert repr(registry) == ("TypeRegistry([test_serde_registry:Leaf, test_serde_registry:Tag])")
    again = serde.TypeRegistry(registry)
    assert set(again) == set(registry)
    data = serde.encode([Leaf(Tag.A)] * 3, types=registry)
    for _ in range(3):  # the registry caches its decoder; results stay independent
        first = serde.decode(data, types=registry)
        second = serde.decode(data, types=registry)
        assert first == second == [Leaf(Tag.A)] * 3
        assert first is not second


def test_types_none_accepts_everything_but_decode_needs_registration() -> None:
    data = serde.encode(Leaf(Tag.A))
    with pytest.raises(CheckpointDecodeError):
        serde.decode(data)
    assert serde.decode(data, types=[Leaf]) == Leaf(Tag.A)
