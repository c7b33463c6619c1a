"""Hypothesis: round trips of arbitrary nested values; garbage in, CheckpointDecodeError out."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepgraph import serde
from stepgraph._errors import CheckpointDecodeError

Exact = Callable[[object, object], bool]
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Hue(enum.Enum):
    RED = "red"
    BLUE = 2


class Bits(enum.IntFlag):
    A = 1
    B = 2


@dataclasses.dataclass
class Box:
    content: Any
    label: str = ""


@dataclasses.dataclass(frozen=True)
class Key:
    a: int
    b: str


class Duo(NamedTuple):
    first: Any
    second: Any


REGISTRY = serde.TypeRegistry([Hue, Bits, Box, Key, Duo])

text = st.text() | st.text(st.characters(codec=None, exclude_categories=()), max_size=8)
offsets = st.timedeltas(
    min_value=datetime.timedelta(hours=-23, minutes=-59), max_value=datetime.timedelta(hours=23)
).map(datetime.timezone)
hashable_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | text
    | st.binary(max_size=16)
    | st.dates()
    | st.datetimes(timezones=st.none() | offsets)
    | st.times(timezones=st.none() | offsets)
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False)
    | st.sampled_from([*Hue, Bits.A | Bits.B, Bits(0)])
    | st.builds(Key, st.integers(), text)
    | st.integers(2000, 20000).map(lambda bits: -(2**bits) + 1)  # beyond 4300 digits too
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=5,
)
leaves = (
    hashable_leaves
    | st.floats()  # nan, inf, -0.0 included
    | st.decimals(allow_nan=True)  # NaN and sNaN, which cannot be in sets
    | st.binary(max_size=16).map(bytearray)
    | st.sampled_from([int, str, type(None), Box, Hue, list[int], dict[str, Box], int | None])
)
dict_keys = text | st.sampled_from(["!", "v", "!!"]) | hashables


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(text, inner, max_size=4)
        | st.dictionaries(dict_keys, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
        | st.builds(Box, inner, text)
        | st.builds(Duo, inner, inner)
    )


values = st.recursive(leaves, _containers, max_leaves=25)


@SETTINGS
@given(values)
def test_round_trip(exact: Exact, value: object) -> None:
    data = serde.encode(value, types=REGISTRY)
    assert exact(serde.decode(data, types=REGISTRY), value)
    assert serde.encode(value) == data
    json.loads(data.decode("utf-8"))  # standard JSON: no NaN/Infinity literals


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(text | st.just("!"), inner, max_size=4)
    ),
    max_leaves=30,
)


@SETTINGS
@given(json_values)
def test_plain_json_is_written_as_json(value: object) -> None:
    data = serde.encode(value)
    assert serde.decode(data) == value
    try:
        expected = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # lone surrogates: serde escapes them instead
        return
    # inf is tagged, and dicts with a "!" key are escaped; everything else is plain JSON
    if "Infinity" not in expected.decode() and '"!":' not in expected.decode():
        assert data == expected


def _expect_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(CheckpointDecodeError):  # anything else fails the test
        serde.decode(data, types=REGISTRY)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _expect_only_decode_errors(data)


@st.composite
def _mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(serde.encode(draw(values), types=REGISTRY))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete", "truncate"]))
        index = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[index:index] = draw(
                st.binary(min_size=1, max_size=4)
                | st.sampled_from(
                    [b"[", b"{", b'"!":', b'{"!":"tuple","v":', b",", b"null", b'"', b"\\"]
                )
            )
        elif kind == "delete":
            del data[index : index + draw(st.integers(1, 8))]
        else:
            del data[index:]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_mutated_encodings(data: bytes) -> None:
    _expect_only_decode_errors(data)


TAGS = [
    "tuple", "set", "frozenset", "dict", "bytes", "bytearray", "float", "int", "datetime",
    "date", "time", "timedelta", "uuid", "decimal", "ellipsis", "type", "generic", "union",
    "literal", "test_serde_properties:Hue", "test_serde_properties:Bits",
    "test_serde_properties:Box", "test_serde_properties:Key", "test_serde_properties:Duo",
    "os:system", "builtins:int", "nope",
]  # fmt: skip
NAMES = ["builtins:int", "builtins:list", "test_serde_properties:Box", "os:system", "x"]
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | st.sampled_from([*NAMES, "RED", "BLUE", "nan", "-inf", "ff", "2024-01-01", "AAA="])
)


def _json_or_tag(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    tag = st.fixed_dictionaries({"!": st.sampled_from(TAGS), "v": inner})
    type_tag = st.fixed_dictionaries({"!": st.just("type"), "v": st.sampled_from(NAMES)})
    return (
        st.lists(inner, max_size=4)
        | st.dictionaries(text | st.sampled_from(["content", "label", "a", "b", "first"]), inner,
                          max_size=4)
        | tag
        | type_tag
        | st.dictionaries(st.sampled_from(["!", "v", "x"]), inner, max_size=3)
    )  # fmt: skip


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(json_leaves, _json_or_tag, max_leaves=20))
def test_hostile_tag_trees(tree: object) -> None:
    """Well-formed JSON with tags in any place and payloads of any shape."""
    _expect_only_decode_errors(json.dumps(tree).encode())
