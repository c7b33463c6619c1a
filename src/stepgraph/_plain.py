"""Plain JSON for values shown outside a run: checkpoint traces, the server's wire.

`serde` gives tagged JSON for checkpoints; people and clients want the plain
shape a person would write: dataclasses and pydantic models as objects, enums
as their values, tuples and sets as arrays, datetimes as ISO strings. The
conversion is one way (nothing is rebuilt from it) and never fails: what has
no plain form becomes its `repr`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, cast

__all__ = ["to_jsonable"]

_MAX_DEPTH = 64


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """`value` as plain JSON data (dicts, lists, strings, numbers, booleans, None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if _depth > _MAX_DEPTH:
        return repr(value)
    d = _depth + 1
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, d)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), d) for f in dataclasses.fields(value)}
    dump: Any = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return to_jsonable(dump(mode="json"), d)
    if isinstance(value, Mapping):
        items = cast(Mapping[Any, Any], value)
        return {str(k): to_jsonable(v, d) for k, v in items.items()}
    if isinstance(value, list | tuple | set | frozenset):
        seq = cast(Iterable[Any], value)
        if isinstance(value, set | frozenset):
            seq = sorted(cast(set[Any], value), key=repr)
        return [to_jsonable(v, d) for v in seq]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, type):
        return value.__qualname__
    return repr(value)
