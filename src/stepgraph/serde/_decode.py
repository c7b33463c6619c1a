"""Tagged JSON bytes -> value, rebuilding only builtin kinds and registered classes.

The C JSON scanner calls `_Decoder._hook` for each object, innermost first, so
a tag's payload is already decoded when the tag is rebuilt and plain values
cost no Python work beyond one call per object. Tags are looked up in fixed
tables and the `TypeRegistry`; nothing is ever imported or resolved by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final, NoReturn, cast

from stepgraph._errors import CheckpointDecodeError

from ._format import MARKER, PAYLOAD, short_repr
from ._rebuild import malformed, rebuild
from ._registry import TypeRegistry, as_registry

__all__ = ["decode"]


def decode(data: bytes, *, types: Iterable[object] = ()) -> object:
    """Decode bytes written by `encode`.

    Args:
        data: the encoded bytes (bytes, bytearray or memoryview).
        types: the user classes that may appear (a `TypeRegistry`, reused with
            its cached decoder, or an iterable wrapped in a new one). Builtin
            kinds are always decodable.

    Returns:
        The decoded value.

    Raises:
        CheckpointDecodeError: for malformed input of any kind: not UTF-8, not
            JSON, too deeply nested, an unknown tag, a class outside `types`,
            fields that do not fit the class, or a constructor that refuses
            them. No other exception escapes.
    """
    registry = as_registry(types)
    decoder = registry.decoder
    if not isinstance(decoder, _Decoder):
        decoder = registry.decoder = _Decoder(registry)
    return decoder.decode(data)


_LONG_STR: Final = 512
_ESCAPED_BYTES: Final = (*range(32), ord("\\"))


def _reject_constant(name: str) -> NoReturn:
    raise malformed(f"{name} is not valid JSON")


class _Decoder:
    __slots__ = ("_json", "_registry")

    def __init__(self, registry: TypeRegistry) -> None:
        self._registry = registry
        self._json = json.JSONDecoder(object_hook=self._hook, parse_constant=_reject_constant)

    def decode(self, data: object) -> object:
        if (
            type(data) is bytes
            and len(data) >= _LONG_STR
            and data[:1] == data[-1:] == b'"'
            and data.find(b'"', 1, -1) < 0
            and not any(map(data.__contains__, _ESCAPED_BYTES))
        ):
            try:  # a long string without escapes: skip the JSON scanner's per-char loop
                return str(data[1:-1], "utf-8")
            except UnicodeDecodeError:
                pass  # reported below
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CheckpointDecodeError(f"checkpoint data must be bytes, not {type(data).__name__}")
        try:
            text = str(cast(bytes, data), "utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointDecodeError(
                f"checkpoint data is not UTF-8 JSON (a pickle or another format?): {exc}"
            ) from None
        try:
            return self._json.decode(text)
        except CheckpointDecodeError:
            raise
        except json.JSONDecodeError as exc:
            raise CheckpointDecodeError(f"checkpoint data is not valid JSON: {exc}") from None
        except RecursionError:
            raise CheckpointDecodeError("checkpoint data is nested too deeply") from None
        except Exception as exc:  # any other failure is malformed input too
            raise malformed(f"{type(exc).__name__}: {short_repr(str(exc))}") from exc

    def _hook(self, obj: dict[str, Any]) -> Any:
        if MARKER not in obj:
            return obj
        if len(obj) != 2 or PAYLOAD not in obj:
            raise malformed(f"a tagged object has exactly the keys '!' and 'v', not {list(obj)}")
        return rebuild(self._registry, obj[MARKER], obj[PAYLOAD])
