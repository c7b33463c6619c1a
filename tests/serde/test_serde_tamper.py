"""Malformed or hostile input: `decode` raises CheckpointDecodeError and nothing else."""

from __future__ import annotations

import builtins
import dataclasses
import enum
import importlib
import json
import os
import pathlib
import pickle
import re
import sys
from typing import Any, NamedTuple

import pytest

from stepgraph import serde
from stepgraph._errors import CheckpointDecodeError, CheckpointError


@dataclasses.dataclass
class Account:
    owner: str
    balance: int = 0

    def __post_init__(self) -> None:
        if self.balance < 0:
            raise ValueError("balance must not be negative")


class Suit(enum.Enum):
    HEARTS = 1


class Perm(enum.Flag):
    R = 1
    W = 2


class Coord(NamedTuple):
    x: int
    y: int


class Opaque:  # registered, but only its type object can be stored
    pass


REGISTRY = serde.TypeRegistry([Account, Suit, Perm, Coord, Opaque])
ACCOUNT = "test_serde_tamper:Account"


def _fails(data: bytes, match: str | None = None) -> CheckpointDecodeError:
    with pytest.raises(CheckpointDecodeError, match=match) as info:
        serde.decode(data, types=REGISTRY)
    return info.value


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_blobs_are_refused(protocol: int) -> None:
    blob = pickle.dumps({"a": 1, "b": Account("x")}, protocol=protocol)
    _fails(blob)


def test_pickle_of_a_malicious_reduce_is_inert(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (pathlib.Path.touch, (marker,))

    for protocol in (0, 2, 5):
        _fails(pickle.dumps(Evil(), protocol=protocol))
    assert not marker.exists()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b" ",
        b"\xff\xfe",
        b"\xef\xbb\xbf{}",  # UTF-8 BOM
        '{"a": 1}'.encode("utf-16"),
        b'"\xed\xa0\x80"',  # a surrogate encoded as UTF-8 is not UTF-8
        b'"' + b"\xc3" * 600 + b'"',  # invalid UTF-8 inside a long string
        b"{",
        b"[1,",
        b"[1] [2]",
        b"NaN",
        b"[Infinity]",
        b"-Infinity",
        b"{'a': 1}",
        b'"' + b"x" * 600,  # unterminated long string
        b'"' + b"x" * 300 + b'"' + b"x" * 300 + b'"',  # a quote inside a long string
        b'"' + b"x" * 600 + b"\\" + b'"',  # ends in an escaped quote: unterminated
        b'"\x01' + b"x" * 600 + b'"',  # raw control character
        b"1" * 5000,  # beyond int_max_str_digits
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        os.urandom(64),
    ],
)
def test_malformed_bytes(data: bytes) -> None:
    _fails(data)


def test_wrong_input_types() -> None:
    for data in ("[]", None, 1, ["x"]):
        with pytest.raises(CheckpointDecodeError, match="must be bytes"):
            serde.decode(data)  # type: ignore[arg-type]


def test_decode_error_is_a_checkpoint_error() -> None:
    assert issubclass(CheckpointDecodeError, CheckpointError)


BAD_TAGS: list[object] = [
    {"!": "tuple"},
    {"!": "tuple", "v": [], "x": 1},
    {"!": 1, "v": []},
    {"!": None, "v": []},
    {"!": ["tuple"], "v": []},
    {"!": "nope", "v": 1},
    {"!": "os:system", "v": "echo hi"},
    {"!": "subprocess:Popen", "v": {"args": "echo"}},
    {"!": "builtins:eval", "v": "1"},
    {"!": "type", "v": "os:system"},
    {"!": "type", "v": "builtins:eval"},
    {"!": "type", "v": "builtins:Exception"},
    {"!": "type", "v": 3},
    {"!": "tuple", "v": {"a": 1}},
    {"!": "set", "v": [[1]]},
    {"!": "set", "v": "abc"},
    {"!": "frozenset", "v": [{"a": 1}]},
    {"!": "dict", "v": [[1]]},
    {"!": "dict", "v": [[[1], 2]]},
    {"!": "dict", "v": {"a": 1}},
    {"!": "dict", "v": [1, 2]},
    {"!": "bytes", "v": "not base64!"},
    {"!": "bytes", "v": "é"},
    {"!": "bytes", "v": 12},
    {"!": "bytearray", "v": None},
    {"!": "float", "v": "nah"},
    {"!": "float", "v": 1.0},
    {"!": "int", "v": "0x1f"},
    {"!": "int", "v": " 1f"},
    {"!": "int", "v": 31},
    {"!": "datetime", "v": "yesterday"},
    {"!": "datetime", "v": 0},
    {"!": "datetime", "v": ["2024-01-01T00:00:00+01:00", [0, 0, 1]]},  # two offsets
    {"!": "datetime", "v": ["2024-01-01T00:00:00", [1, 0, 0]]},  # offset of a whole day
    {"!": "datetime", "v": ["2024-01-01T00:00:00"]},
    {"!": "time", "v": [1, [0, 0, 1]]},
    {"!": "date", "v": "2024-13-01"},
    {"!": "time", "v": "25:00"},
    {"!": "timedelta", "v": [1, 2]},
    {"!": "timedelta", "v": [1, 2, "3"]},
    {"!": "timedelta", "v": [10**12, 0, 0]},
    {"!": "timedelta", "v": [True, 0, 0]},
    {"!": "uuid", "v": "not-a-uuid"},
    {"!": "uuid", "v": 5},
    {"!": "decimal", "v": "1_000"},
    {"!": "decimal", "v": " 1"},
    {"!": "decimal", "v": 1.5},
    {"!": "ellipsis", "v": 1},
    {"!": "generic", "v": [{"!": "type", "v": "builtins:list"}, [1]]},
    {"!": "generic", "v": [{"!": "type", "v": "builtins:list"}]},
    {"!": "generic", "v": [1, []]},
    {"!": "generic", "v": [{"!": "type", "v": ACCOUNT}, [{"!": "type", "v": "builtins:int"}]]},
    {"!": "union", "v": []},
    {"!": "union", "v": [1, 2]},
    {"!": "union", "v": [{"!": "ellipsis", "v": None}, {"!": "type", "v": "builtins:int"}]},
    {"!": "literal", "v": [[1]]},
    {"!": "literal", "v": []},
    {"!": "literal", "v": "abc"},
    {"!": ACCOUNT, "v": {"owner": "a"}},  # missing field
    {"!": ACCOUNT, "v": {"owner": "a", "balance": 1, "admin": True}},  # unknown field
    {"!": ACCOUNT, "v": ["a", 1]},
    {"!": ACCOUNT, "v": {"owner": "a", "balance": -5}},  # __post_init__ refuses
    {"!": "test_serde_tamper:Suit", "v": "SPADES"},
    {"!": "test_serde_tamper:Suit", "v": 1},
    {"!": "test_serde_tamper:Suit", "v": ["HEARTS"]},
    {"!": "test_serde_tamper:Perm", "v": 64},
    {"!": "test_serde_tamper:Perm", "v": "R"},
    {"!": "test_serde_tamper:Coord", "v": {"x": 1}},
    {"!": "test_serde_tamper:Coord", "v": {"x": 1, "y": 2, "z": 3}},
    {"!": "test_serde_tamper:Coord", "v": [1, 2]},
    {"!": "test_serde_tamper:Opaque", "v": {}},
    {"!": "test_serde_tamper:account", "v": {"owner": "a", "balance": 1}},  # names are exact
]


@pytest.mark.parametrize("tree", BAD_TAGS, ids=lambda t: json.dumps(t)[:60])
def test_bad_tags(tree: object) -> None:
    _fails(json.dumps(tree).encode())
    _fails(json.dumps({"nested": [tree]}).encode())


def test_good_versions_of_the_tagged_classes_decode() -> None:
    assert serde.decode(
        json.dumps({"!": ACCOUNT, "v": {"owner": "a", "balance": 1}}).encode(), types=REGISTRY
    ) == Account("a", 1)
    assert serde.decode(b'{"!":"type","v":"test_serde_tamper:Opaque"}', types=REGISTRY) is Opaque


def test_error_messages_say_what_to_do() -> None:
    error = _fails(b'{"!":"os:system","v":"rm"}')
    assert "'os:system'" in str(error)
    assert "register_types" in str(error)
    assert "never imported" in str(error)
    error = _fails(json.dumps({"!": ACCOUNT, "v": {"owner": "a", "balance": -1}}).encode())
    assert isinstance(error.__cause__, ValueError)
    assert "balance must not be negative" in str(error)
    missing = _fails(json.dumps({"!": ACCOUNT, "v": {"balance": 1}}).encode())
    assert str(missing).endswith(
        "fields of test_serde_tamper:Account do not match the class: missing ['owner']"
    )
    unknown = _fails(json.dumps({"!": ACCOUNT, "v": {"owner": "a", "balance": 1, "x": 0}}).encode())
    assert str(unknown).endswith("unknown ['x']")


def test_unregistered_user_class_is_unknown_even_if_imported() -> None:
    data = serde.encode(Account("a", 1))
    assert serde.decode(data, types=REGISTRY) == Account("a", 1)
    with pytest.raises(CheckpointDecodeError, match="does not know"):
        serde.decode(data)  # no types: only builtin kinds
    with pytest.raises(CheckpointDecodeError, match="does not know"):
        serde.decode(data, types=[Suit])


def test_decode_never_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    module = "tabnanny"  # importable, and not imported by anything here
    assert module not in sys.modules
    attempts: list[str] = []

    def forbidden(name: str, *args: object, **kwargs: object) -> Any:
        attempts.append(name)
        raise ImportError(f"import of {name} attempted during decode")

    payloads = [
        json.dumps({"!": f"{module}:check", "v": {}}).encode(),
        json.dumps({"!": "type", "v": f"{module}:check"}).encode(),
        json.dumps({"!": f"{module}:NannyNag", "v": {"lineno": 1}}).encode(),
        json.dumps([{"!": "generic", "v": [{"!": "type", "v": f"{module}:X"}, []]}]).encode(),
    ]
    good = serde.encode(
        [Account("a", 1), Suit.HEARTS, Coord(1, 2), (1, {2}), b"x", 1.5, float("nan")],
        types=REGISTRY,
    )
    errors: list[BaseException] = []
    results: list[object] = []
    monkeypatch.setattr(importlib, "import_module", forbidden)
    real_import = builtins.__import__
    builtins.__import__ = forbidden  # by hand: monkeypatch itself imports lazily
    try:
        for data in payloads:
            try:
                serde.decode(data, types=REGISTRY)
            except BaseException as exc:  # checked below, after imports work again
                errors.append(exc)
        try:
            results.append(serde.decode(good, types=REGISTRY))
        except BaseException as exc:
            errors.append(exc)
    finally:
        builtins.__import__ = real_import
    assert attempts == []
    assert module not in sys.modules
    assert len(errors) == len(payloads)
    assert all(type(e) is CheckpointDecodeError for e in errors)
    assert results[0][:3] == [Account("a", 1), Suit.HEARTS, Coord(1, 2)]  # type: ignore[index]


def test_the_package_has_no_dynamic_import_or_pickle() -> None:
    package = pathlib.Path(serde.__file__).parent
    sources = {path.name: path.read_text() for path in package.glob("*.py")}
    assert set(sources) >= {"__init__.py", "_decode.py", "_encode.py", "_registry.py"}
    for name, text in sources.items():
        for word in ("importlib", "__import__", "import_module", "import pickle", "marshal"):
            assert word not in text, f"{word} in serde/{name}"
        calls = re.findall(r"(?<![\w.])(?:eval|exec|compile)\(", text)
        assert not calls, f"{calls} in serde/{name}"
