"""Decoding costs O(size): a record of N bytes decodes, or fails, in time linear in N.

A checkpoint must never stall a process (issue 18, item 2): each shape below
is decoded at two sizes, N and 8N, and the larger may cost at most three times
its share (24x; a quadratic decoder costs 64x, the `union` tag did). Costs are
the best CPU time of a few runs, compared as ratios, never to a fixed budget.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import tracemalloc
import types
import typing
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from stepgraph import CheckpointDecodeError, CheckpointError, SerializationError, serde
from stepgraph._checkpoint import Checkpoint, CheckpointInfo
from stepgraph.serde._format import MAX_UNION
from stepgraph.stores import _record

GROWTH = 8
SLACK = 3


def _cpu(call: Callable[[], object], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        with contextlib.suppress(CheckpointDecodeError):
            call()
        best = min(best, time.process_time() - start)
    return max(best, 1e-6)


def _assert_linear(make: Callable[[int], bytes], decode: Callable[[bytes], object], n: int) -> None:
    small, large = make(n), make(GROWTH * n)
    sizes = len(large) / len(small)
    _cpu(lambda: decode(small), runs=1)  # warm caches (typing's, the decoder's)
    costs = _cpu(lambda: decode(large)) / _cpu(lambda: decode(small))
    assert costs < SLACK * sizes, f"{len(small)} -> {len(large)} bytes: cost x{costs:.1f}"


def _tags(n: int) -> list[Any]:
    """n distinct type expressions: `list[list[...int]]` and literals."""
    return [{"!": "literal", "v": [i]} for i in range(n)]


def _generic(i: int) -> Any:
    """`tuple[Literal[i]]`: a distinct `types.GenericAlias` for each i."""
    return {
        "!": "generic",
        "v": [{"!": "type", "v": "builtins:tuple"}, [{"!": "literal", "v": [i]}]],
    }


SHAPES: dict[str, tuple[Callable[[int], Any], int]] = {
    # one union of n distinct members (17 s at 123 KB before)
    "union-of-literals": (lambda n: {"!": "union", "v": _tags(n)}, 300),
    "union-of-generics": (lambda n: {"!": "union", "v": [_generic(d) for d in range(n)]}, 40),
    # a union of unions: n members that flatten to 16 distinct ones each
    "union-of-unions": (
        lambda n: {
            "!": "union",
            "v": [{"!": "union", "v": _tags(16 * (i + 1))[16 * i :]} for i in range(n)],
        },
        40,
    ),
    # many unions as large as may be read, each of distinct generics
    "many-full-unions": (
        lambda n: [{"!": "union", "v": [_generic(d) for d in range(MAX_UNION)]} for _ in range(n)],
        2,
    ),
    "literal": (lambda n: {"!": "literal", "v": list(range(n))}, 5_000),
    "nesting": (lambda n: "[" * n + "]" * n, 100),  # past ~1000 levels: refused at once
    "tuples": (
        lambda n: [{"!": "tuple", "v": [i, {"!": "set", "v": [i]}]} for i in range(n)],
        3_000,
    ),
    "dict-pairs": (lambda n: {"!": "dict", "v": [[i, i] for i in range(n)]}, 10_000),
    "hex-int": (lambda n: {"!": "int", "v": "f" * n}, 200_000),
    "decimal": (lambda n: {"!": "decimal", "v": "9" * n}, 200_000),
    "bytes": (lambda n: {"!": "bytes", "v": "QUJD" * n}, 100_000),
    "string": (lambda n: "x" * n, 50_000),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_serde_decode_is_linear(shape: str) -> None:
    build, n = SHAPES[shape]

    def make(k: int) -> bytes:
        tree = build(k)
        if shape == "nesting":
            return str(tree).encode()
        return json.dumps(tree, separators=(",", ":")).encode()

    _assert_linear(make, lambda data: serde.decode(data), n)


def test_a_union_past_the_limit_is_refused_both_ways() -> None:
    big = typing.Union[tuple(Literal[i] for i in range(MAX_UNION + 1))]  # noqa: UP007
    with pytest.raises(SerializationError, match="at most 64"):
        serde.encode(big)
    data = json.dumps({"!": "union", "v": _tags(MAX_UNION + 1)}).encode()
    with pytest.raises(CheckpointDecodeError, match="at most 64"):
        serde.decode(data)
    nested = {"!": "union", "v": [{"!": "union", "v": _tags(40)}, {"!": "union", "v": _tags(30)}]}
    with pytest.raises(CheckpointDecodeError, match="70 members"):
        serde.decode(json.dumps(nested).encode())
    fits = typing.Union[tuple(Literal[i] for i in range(MAX_UNION))]  # noqa: UP007
    assert serde.decode(serde.encode(fits)) == fits
    plain = int | str | list[int] | None
    back = serde.decode(serde.encode(plain))
    assert type(back) is types.UnionType
    assert back == plain


# -- records ----------------------------------------------------------------------------


def _checkpoint(graph: str, parts: dict[str, bytes]) -> Checkpoint:
    info = CheckpointInfo("cp", None, "s", 0, datetime(2026, 1, 1, tzinfo=UTC))
    return Checkpoint(info, "sig", graph, "idle", types.MappingProxyType(parts))


def _with_header(blob: bytes, **changes: Any) -> bytes:
    (hlen,) = _record._LEN.unpack_from(blob, 4)
    header = json.loads(blob[8 : 8 + hlen])
    header.update(changes)
    head = json.dumps(header).encode()
    return _record.MAGIC + _record._LEN.pack(len(head)) + head + blob[8 + hlen :]


RECORDS: dict[str, tuple[Callable[[int], bytes], int]] = {
    "graph": (lambda n: _record.pack(_checkpoint(json.dumps(list(range(n))), {})), 20_000),
    "parts": (
        lambda n: _record.pack(_checkpoint("{}", {f"s:{i}": b"x" * 20 for i in range(n)})),
        5_000,
    ),
    "deep-header": (
        lambda n: _with_header(
            _record.pack(_checkpoint("{}", {})), x=json.loads("[" * n + "]" * n)
        ),
        100,
    ),
    "graph-bomb": (  # zeros compress 1000:1; past MAX_GRAPH the record is refused at once
        lambda n: _with_header(
            _record.pack(_checkpoint("{}", {})),
            graphz=base64.b64encode(zlib.compress(b"0" * (n * 1024), 9)).decode(),
        ),
        16 * 1024,
    ),
}


@pytest.mark.parametrize("shape", list(RECORDS))
def test_record_unpack_is_linear(shape: str) -> None:
    make, n = RECORDS[shape]
    _assert_linear(make, _record.unpack, n)


def test_a_graph_description_unpacking_past_the_limit_is_refused() -> None:
    bomb = zlib.compress(b"0" * (4 * _record.MAX_GRAPH), 9)  # 64 MiB from ~64 KB
    blob = _with_header(_record.pack(_checkpoint("{}", {})), graphz=base64.b64encode(bomb).decode())
    assert len(blob) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointDecodeError, match="unpacks to more than"):
            _record.unpack(blob)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * _record.MAX_GRAPH + len(blob) * 4
    fits = _checkpoint("g" * _record.MAX_GRAPH, {})
    assert _record.unpack(_record.pack(fits)).graph == fits.graph
    with pytest.raises(CheckpointError, match="more than"):
        _record.pack(_checkpoint("g" * (_record.MAX_GRAPH + 1), {}))
    truncated = _with_header(
        _record.pack(_checkpoint("{}", {})),
        graphz=base64.b64encode(zlib.compress(b"{}" * 1000)[:-8]).decode(),
    )
    with pytest.raises(CheckpointDecodeError, match="truncated"):
        _record.unpack(truncated)
