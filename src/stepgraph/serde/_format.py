"""The tagged-JSON wire format shared by the encoder and the decoder.

A plain JSON value (str, finite float, int, bool, null, list, object whose keys
are all str and none is ``"!"``) stands for itself. Every other value is a
*tagged object*: a JSON object with exactly the keys ``"!"`` (the tag) and
``"v"`` (the payload)::

    {"!":"tuple","v":[1,2]}
    {"!":"myapp.models:Order","v":{"id":7,"lines":[...]}}

A tag without a colon names a builtin kind (the constants below). A tag with a
colon names a user class as ``module:qualname``; it is only ever looked up in
the `TypeRegistry` given to `decode`, never imported. Type objects are tagged
``type`` with the same ``module:qualname`` name; the builtin ones are listed in
`BUILTIN_TYPES` and always decodable.
"""

from __future__ import annotations

import datetime
import decimal
import types
import typing
import uuid
from typing import Any, Final

from .._names import module_of

__all__ = [
    "BUILTIN_TYPES",
    "BUILTIN_TYPE_NAMES",
    "BYTEARRAY",
    "BYTES",
    "DATE",
    "DATETIME",
    "DECIMAL",
    "DICT",
    "ELLIPSIS",
    "FLOAT",
    "FROZENSET",
    "GENERIC",
    "INT",
    "LITERAL",
    "MARKER",
    "MAX_DEPTH",
    "MAX_UNION",
    "PAYLOAD",
    "SET",
    "TIME",
    "TIMEDELTA",
    "TUPLE",
    "TYPE",
    "UNION",
    "UUID",
    "class_name",
    "short_repr",
]

MARKER: Final = "!"
"""Key holding the tag of a tagged object; plain dicts containing it are escaped."""
PAYLOAD: Final = "v"
"""Key holding the payload of a tagged object."""

MAX_DEPTH: Final = 256
"""Deepest JSON nesting `encode` writes; `json` can read ~900 levels back."""

MAX_UNION: Final = 64
"""Most members a union type may have (counted flattened) to be stored or read back.

Python 3.11 checks the members of every `X | Y` it builds against each other, so
a union costs the square of its size; this bound keeps decoding linear in the
size of the data (a hostile 120 KB union took 17 s before).
"""

TUPLE: Final = "tuple"  # v: list of items
SET: Final = "set"  # v: list of items
FROZENSET: Final = "frozenset"  # v: list of items
DICT: Final = "dict"  # v: list of [key, value] pairs (non-str keys, or a "!" key)
BYTES: Final = "bytes"  # v: standard base64 str
BYTEARRAY: Final = "bytearray"  # v: standard base64 str
FLOAT: Final = "float"  # v: "nan" | "-nan" | "inf" | "-inf"
INT: Final = "int"  # v: hex str, for ints too long for decimal JSON
DATETIME: Final = "datetime"  # v: isoformat str; [naive iso, [d, s, µs]] if the offset has µs
DATE: Final = "date"  # v: isoformat str
TIME: Final = "time"  # v: like datetime
TIMEDELTA: Final = "timedelta"  # v: [days, seconds, microseconds]
UUID: Final = "uuid"  # v: canonical 8-4-4-4-12 str
DECIMAL: Final = "decimal"  # v: str(Decimal)
ELLIPSIS: Final = "ellipsis"  # v: null (only useful inside tuple[int, ...])
TYPE: Final = "type"  # v: "module:qualname" of a class
GENERIC: Final = "generic"  # v: [origin type, [type args]], e.g. list[int]
UNION: Final = "union"  # v: [member types], e.g. int | None
LITERAL: Final = "literal"  # v: [values], e.g. Literal["yes", "no"]


def class_name(cls: type) -> str:
    """The stable ``module:qualname`` name a class is tagged with."""
    return f"{module_of(cls)}:{cls.__qualname__}"


def short_repr(obj: object, limit: int = 60) -> str:
    """`repr(obj)` cut to `limit` characters, for error messages."""
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_SAFE_TYPES: tuple[Any, ...] = (
    types.NoneType,
    bool,
    int,
    float,
    str,
    bytes,
    bytearray,
    list,
    dict,
    tuple,
    set,
    frozenset,
    object,
    type,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    decimal.Decimal,
    typing.Any,  # a class since Python 3.11
)

BUILTIN_TYPES: Final[dict[str, type]] = {class_name(t): t for t in _SAFE_TYPES}
"""Type objects every checkpoint may name, by tag name."""
BUILTIN_TYPE_NAMES: Final[dict[type, str]] = {t: name for name, t in BUILTIN_TYPES.items()}
"""The reverse of `BUILTIN_TYPES`."""
