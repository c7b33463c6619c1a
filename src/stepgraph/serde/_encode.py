"""Value -> tagged JSON tree -> UTF-8 bytes.

Fast path: a value made only of str/int/float/bool/None, lists and str-keyed
dicts is handed to the C JSON encoder as is, after a check that looks at
`set(map(type, ...))` per container rather than at each item in Python. If the
C encoder then rejects it (nan/inf, an int too long for decimal JSON), the
tagged path runs. The tagged path builds a new tree, reusing plain sub-lists
and sub-dicts untouched; when even that fails on a float or int, a last pass
checks every leaf.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

from stepgraph._errors import SerializationError

from ._registry import as_registry
from ._tagger import EncodeFailure, Tagger, is_plain

__all__ = ["encode"]

_LONG_STR: Final = 512  # from here on, skipping the C escaper's per-char loop pays off
_ESC: Final = (*map(chr, range(32)), '"', "\\")

_JSON: Final = json.JSONEncoder(
    ensure_ascii=False, check_circular=False, allow_nan=False, separators=(",", ":")
)
_JSON_ASCII: Final = json.JSONEncoder(
    ensure_ascii=True, check_circular=False, allow_nan=False, separators=(",", ":")
)


def encode(value: object, *, types: Iterable[object] | None = None) -> bytes:
    """Encode `value` as tagged JSON (UTF-8 bytes).

    Args:
        value: a JSON value, tuple, set, frozenset, bytes, bytearray, datetime,
            date, time, timedelta, UUID, Decimal, enum member, dataclass,
            NamedTuple, pydantic model, class or type expression, nested freely.
        types: the classes the reader will know (a `TypeRegistry` or an
            iterable wrapped in one). When given, instances and type objects of
            user classes outside it are refused, so nothing is written that
            `decode(..., types=types)` could not read. None accepts any class.

    Returns:
        Compact JSON text, UTF-8 encoded.

    Raises:
        SerializationError: an unsupported or unregistered type, a reference
            cycle, or nesting deeper than 256 levels; the message gives the
            path inside `value`, e.g. ``value['x'][2].field``.
    """
    if type(value) is str and len(value) >= _LONG_STR and not any(map(value.__contains__, _ESC)):
        try:  # nothing to escape: the JSON text is the string in quotes
            return b'"' + value.encode("utf-8") + b'"'
        except UnicodeEncodeError:  # lone surrogates: the general path escapes them
            pass
    try:
        if is_plain(value):
            try:
                return _dump(value)
            except ValueError:  # nan/inf or a huge int somewhere: tag it below
                pass
        registry = None if types is None else as_registry(types)
        tree = Tagger(registry, shortcuts=True).tree(value, 1)
        try:
            return _dump(tree)
        except ValueError:  # nan/inf or a huge int in a reused plain part: check every leaf
            return _dump(Tagger(registry, shortcuts=False).tree(value, 1))
    except EncodeFailure as failure:
        raise SerializationError(failure.message()) from None
    except RecursionError as exc:
        raise SerializationError("cannot encode value: it is nested too deeply") from exc


def _dump(tree: object) -> bytes:
    text = _JSON.encode(tree)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: \u-escape them instead
        return _JSON_ASCII.encode(tree).encode("ascii")
