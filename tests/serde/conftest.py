"""Shared helpers for the serde tests: exact (type- and bit-level) equality."""

from __future__ import annotations

import dataclasses
import decimal
import math
from collections.abc import Callable

import pytest

_UNSET = object()


def same(a: object, b: object) -> bool:
    """Equal, of the very same types all the way down; floats compared by value and sign."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        assert isinstance(b, float)
        if math.isnan(a):
            return math.isnan(b) and math.copysign(1, a) == math.copysign(1, b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple))
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return all(
            same(getattr(a, f.name, _UNSET), getattr(b, f.name, _UNSET))
            for f in dataclasses.fields(a)
        )
    if isinstance(a, (set, frozenset)):
        return a == b and {type(x) for x in a} == {type(x) for x in b}
    return a == b


@pytest.fixture(scope="session")
def exact() -> Callable[[object, object], bool]:
    """The `same` predicate, as a fixture (session-scoped so hypothesis accepts it)."""
    return same
