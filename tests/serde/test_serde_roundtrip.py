"""Round trips of every supported kind, and the wire format pinned byte for byte."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import json
import typing
import uuid
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, Optional

import pytest

from stepgraph import serde

Exact = Callable[[object, object], bool]


class Color(enum.Enum):
    RED = "r"
    GREEN = "g"
    CRIMSON = "r"  # an alias of RED


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"
    SAFE = "safe"


class Perm(enum.Flag):
    R = 1
    W = 2
    X = 4


class Pair(NamedTuple):
    left: int
    right: tuple[str, ...]


Legacy = collections.namedtuple("Legacy", ["a", "b"])


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    color: Color = Color.RED
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    area: float = dataclasses.field(init=False, default=0.0)
    cache: str = dataclasses.field(init=False)  # no default: may stay unset

    def __post_init__(self) -> None:
        self.area = float(len(self.points))


@dataclasses.dataclass(slots=True, kw_only=True)
class Slotted:
    a: int
    b: Pair | None = None


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Holder:
    field: Any


REGISTRY = serde.TypeRegistry([Color, Level, Mode, Perm, Pair, Legacy, Shape, Slotted, Node])

UTC_PLUS_0530 = datetime.timezone(datetime.timedelta(hours=5, minutes=30))

VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(10**5000),  # longer than int_max_str_digits allows in decimal
    0.1,
    -0.0,
    float("inf"),
    float("-inf"),
    float("nan"),
    -float("nan"),
    1e308,
    5e-324,
    "",
    "plain",
    "ünïcödé ✓ 😀",
    '\x00\n\t"\\',
    "\ud800 lone surrogate",
    "x" * 10_000,
    "é" * 3000,
    'q"' * 600,
    [],
    [1, "a", None, [2.5, [True]]],
    {},
    {"a": 1, "b": [1, 2], "c": {"d": None}},
    {"!": 1},
    {"!": "tuple", "v": [1, 2]},  # looks like a tag: must stay a dict
    [{"!": 1}],
    {"a": {"!": "tuple", "v": [1]}},
    [[{"x": {"!": None}}], (1,)],
    {1: "a", 2: "b"},
    {(1, 2): "tuple key", frozenset({3}): "set key", None: 0, 1.5: "float key"},
    {"v": 1, 2: "mixed"},
    (),
    (1,),
    (1, (2, (3,)), [4]),
    set(),
    {1, 2, 3},
    frozenset({"a", "b"}),
    {(1, 2), "a", 3, None},
    b"",
    b"\x00\xff bytes",
    bytearray(b"\x01\x02"),
    datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
    datetime.datetime(2024, 1, 1, 12, tzinfo=UTC_PLUS_0530),
    datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.UTC),
    datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(microseconds=1))),
    datetime.time(tzinfo=datetime.timezone(-datetime.timedelta(hours=1, microseconds=1))),
    datetime.date(1, 1, 1),
    datetime.time(23, 59, 59, 1),
    datetime.time(1, 2, tzinfo=UTC_PLUS_0530),
    datetime.timedelta(days=-3, seconds=5, microseconds=7),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    decimal.Decimal("1.10"),
    decimal.Decimal("-0"),
    decimal.Decimal("1E+30"),
    decimal.Decimal("NaN"),
    decimal.Decimal("-Infinity"),
    Color.RED,
    Color.GREEN,
    Level.HIGH,
    Mode.SAFE,
    Perm.R | Perm.X,
    Perm(0),
    Pair(1, ("a", "b")),
    Legacy(a=[1], b={"x": 2}),
    Point(1.0, -0.0),
    Shape("tri", [Point(0, 0), Point(1, 0), Point(0, 1)], Color.GREEN, {"k": (1, 2)}),
    Slotted(a=1, b=Pair(2, ())),
    Node(1, [Node(2, [Node(3)]), Node(4)]),
    ...,
    {"state": {"msgs": [Pair(1, ()), Point(2, 3)], "when": datetime.date(2024, 5, 1)}},
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip(value: object, exact: Exact) -> None:
    data = serde.encode(value, types=REGISTRY)
    data.decode("utf-8")  # always valid UTF-8 (lone surrogates are \u-escaped)
    assert exact(serde.decode(data, types=REGISTRY), value)
    # without `types`, encode accepts the same value and writes the same bytes
    assert serde.encode(value) == data


def test_init_false_fields_keep_their_saved_value() -> None:
    shape = Shape("sq", [Point(0, 0)])
    shape.area = 99.0  # differs from what __post_init__ computes
    shape.cache = "warm"
    back = serde.decode(serde.encode(shape, types=REGISTRY), types=REGISTRY)
    assert isinstance(back, Shape)
    assert back.area == 99.0
    assert back.cache == "warm"
    unset = serde.decode(serde.encode(Shape("x", [])), types=REGISTRY)
    assert isinstance(unset, Shape)
    assert not hasattr(unset, "cache")


def test_enum_alias_and_members_are_identical() -> None:
    assert serde.decode(serde.encode(Color.CRIMSON), types=REGISTRY) is Color.RED
    assert serde.decode(serde.encode([Level.LOW]), types=REGISTRY) == [Level.LOW]
    assert type(serde.decode(serde.encode(Level.LOW), types=REGISTRY)) is Level


def test_aware_datetime_keeps_its_offset() -> None:
    value = datetime.datetime(2024, 3, 1, 8, 30, tzinfo=UTC_PLUS_0530)
    back = serde.decode(serde.encode(value))
    assert isinstance(back, datetime.datetime)
    assert back.utcoffset() == datetime.timedelta(hours=5, minutes=30)
    naive = serde.decode(serde.encode(datetime.datetime(2024, 3, 1)))
    assert isinstance(naive, datetime.datetime)
    assert naive.tzinfo is None


def test_shared_substructures_are_not_cycles(exact: Exact) -> None:
    shared = [1, (2,)]
    value = {"a": shared, "b": shared, "c": (shared, shared)}
    assert exact(serde.decode(serde.encode(value)), value)


# -- type objects ----------------------------------------------------------------------

TYPE_VALUES: list[object] = [
    int,
    str,
    bool,
    bytes,
    type(None),
    object,
    Any,
    datetime.datetime,
    decimal.Decimal,
    uuid.UUID,
    Shape,
    Color,
    list[int],
    dict[str, list[Point]],
    tuple[int, ...],
    tuple[()],
    int | None,
    Optional[Shape],  # noqa: UP045
    Literal["yes", "no"],
    Literal[Color.RED, 3, None],
    list[int | Literal["x"]],
]


@pytest.mark.parametrize("value", TYPE_VALUES, ids=repr)
def test_type_objects_round_trip(value: object) -> None:
    registry = serde.TypeRegistry([Shape, Color, Point])
    back = serde.decode(serde.encode(value, types=registry), types=registry)
    assert back == value


def test_typing_aliases_decode_as_builtin_generics() -> None:
    assert serde.decode(serde.encode(typing.List[int])) == list[int]  # noqa: UP006
    assert serde.decode(serde.encode(typing.Dict)) is dict  # noqa: UP006


# -- the wire format, pinned (golden bytes; change only deliberately) ---------------

GOLDEN: list[tuple[object, bytes]] = [
    ({"a": [1, 2.5, None, True]}, b'{"a":[1,2.5,null,true]}'),
    ("é", '"é"'.encode()),
    ((1, 2), b'{"!":"tuple","v":[1,2]}'),
    ({"b", "a"}, b'{"!":"set","v":["a","b"]}'),
    (frozenset({2, 1}), b'{"!":"frozenset","v":[1,2]}'),
    ({"!": 1}, b'{"!":"dict","v":[["!",1]]}'),
    ({1: "a"}, b'{"!":"dict","v":[[1,"a"]]}'),
    (b"\x00\xff", b'{"!":"bytes","v":"AP8="}'),
    (bytearray(b"a"), b'{"!":"bytearray","v":"YQ=="}'),
    ([float("nan"), float("-inf")], b'[{"!":"float","v":"nan"},{"!":"float","v":"-inf"}]'),
    (16**600, str(16**600).encode()),  # decimal while int_max_str_digits allows it
    (16**4000, b'{"!":"int","v":"1' + b"0" * 4000 + b'"}'),
    (datetime.date(2024, 5, 1), b'{"!":"date","v":"2024-05-01"}'),
    (
        datetime.datetime(2024, 5, 1, 8, tzinfo=UTC_PLUS_0530),
        b'{"!":"datetime","v":"2024-05-01T08:00:00+05:30"}',
    ),
    (datetime.time(8, 0, 1), b'{"!":"time","v":"08:00:01"}'),
    (datetime.timedelta(days=1, seconds=2, microseconds=3), b'{"!":"timedelta","v":[1,2,3]}'),
    (uuid.UUID(int=1), b'{"!":"uuid","v":"00000000-0000-0000-0000-000000000001"}'),
    (decimal.Decimal("1.50"), b'{"!":"decimal","v":"1.50"}'),
    (Color.RED, b'{"!":"test_serde_roundtrip:Color","v":"RED"}'),
    (Perm.R | Perm.W, b'{"!":"test_serde_roundtrip:Perm","v":3}'),
    (Point(1.0, 2.0), b'{"!":"test_serde_roundtrip:Point","v":{"x":1.0,"y":2.0}}'),
    (Pair(1, ()), b'{"!":"test_serde_roundtrip:Pair","v":{"left":1,"right":{"!":"tuple","v":[]}}}'),
    (int, b'{"!":"type","v":"builtins:int"}'),
    (Point, b'{"!":"type","v":"test_serde_roundtrip:Point"}'),
    (
        list[int],
        b'{"!":"generic","v":[{"!":"type","v":"builtins:list"},[{"!":"type","v":"builtins:int"}]]}',
    ),
    (
        int | None,
        b'{"!":"union","v":[{"!":"type","v":"builtins:int"},{"!":"type","v":"builtins:NoneType"}]}',
    ),
    (Literal["a"], b'{"!":"literal","v":["a"]}'),
    (..., b'{"!":"ellipsis","v":null}'),
]


@pytest.mark.parametrize(("value", "data"), GOLDEN, ids=lambda v: type(v).__name__)
def test_golden_bytes(value: object, data: bytes, exact: Exact) -> None:
    registry = serde.TypeRegistry([Color, Perm, Point, Pair])
    assert serde.encode(value) == data
    assert exact(serde.decode(data, types=registry), value)


@pytest.mark.parametrize(
    "text",
    [
        "x" * 600,
        "é" * 600,
        "x" * 600 + '"',
        "\x01" + "x" * 600,
        "😀" * 300,
        "\\" * 600,
        "\x7f" * 600,
    ],
)
def test_long_strings_match_the_json_module(text: str) -> None:
    expected = json.dumps(text, ensure_ascii=False, separators=(",", ":")).encode()
    assert serde.encode(text) == expected
    assert serde.decode(expected) == text
    assert serde.decode(bytearray(expected)) == text
    assert serde.decode(memoryview(expected)) == text


def test_fast_path_and_tagged_path_agree() -> None:
    plain = {"k": [1, "two", {"three": 3.0}], "n": None}
    assert serde.encode(plain) == json.dumps(plain, separators=(",", ":")).encode()
    mixed = {"k": [1, "two", {"three": 3.0}], "n": None, "t": (1,)}
    assert (
        serde.encode(mixed) == b'{"k":[1,"two",{"three":3.0}],"n":null,"t":{"!":"tuple","v":[1]}}'
    )


def test_types_may_be_any_iterable_of_classes() -> None:
    data = serde.encode(Point(1, 2), types=[Point])
    assert serde.decode(data, types=[Point]) == Point(1, 2)
    assert serde.decode(data, types=(Point,)) == Point(1, 2)
    assert serde.decode(data, types={Point}) == Point(1, 2)
