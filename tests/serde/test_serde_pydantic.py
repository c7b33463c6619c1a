"""Pydantic v2 models: round trips, the registry closure, tampering, lazy import."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys

import pytest

from stepgraph import serde
from stepgraph._errors import CheckpointDecodeError, SerializationError

pydantic = pytest.importorskip("pydantic")


class Address(pydantic.BaseModel):
    city: str
    zip_code: str = pydantic.Field(alias="zip")


class Person(pydantic.BaseModel):
    name: str
    born: datetime.date
    tags: tuple[str, ...] = ()
    home: Address | None = None
    others: list[Address] = pydantic.Field(default_factory=list)
    scores: dict[str, float] = pydantic.Field(default_factory=dict)
    anything: object = None


class Frozen(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)
    n: int


class Open(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    known: int


class Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    count: int


class Names(pydantic.RootModel[list[str]]):
    pass


PERSON = Person(
    name="Ada",
    born=datetime.date(1815, 12, 10),
    tags=("math", "engines"),
    home=Address(city="London", zip="W1"),
    others=[Address(city="Paris", zip="75")],
    scores={"x": float("inf")},
    anything=(1, {2}),
)


def test_models_round_trip_with_their_nested_models() -> None:
    registry = serde.TypeRegistry([Person])
    assert Address in registry  # found through the field annotations
    back = serde.decode(serde.encode(PERSON, types=registry), types=registry)
    assert back == PERSON
    assert isinstance(back, Person)
    assert type(back.anything) is tuple  # an `object` field keeps the exact value
    assert back.home is not None
    assert back.home.zip_code == "W1"


@pytest.mark.parametrize(
    "value",
    [
        Frozen(n=1),
        Open(known=1, extra_field=[1, 2], **{"!": "bang"}),
        Names(["a", "b"]),
        Strict(count=2),
    ],
    ids=lambda v: type(v).__name__,
)
def test_other_model_shapes(value: pydantic.BaseModel) -> None:
    registry = serde.TypeRegistry([type(value)])
    back = serde.decode(serde.encode(value, types=registry), types=registry)
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, Open):
        assert back.model_extra == {"extra_field": [1, 2], "!": "bang"}


def test_alias_fields_without_by_name_support(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pydantic < 2.11 branch: fields are passed under their alias."""
    from stepgraph.serde import _rebuild

    monkeypatch.setattr(_rebuild, "_validate_options", {})
    registry = serde.TypeRegistry([Person])
    assert serde.decode(serde.encode(PERSON, types=registry), types=registry) == PERSON


def test_unregistered_model_is_refused_on_encode() -> None:
    with pytest.raises(
        SerializationError, match=r"Address is not registered.*register_types\(Address\)"
    ):
        serde.encode({"a": Address(city="x", zip="1")}, types=[Frozen])
    assert serde.encode(Address(city="x", zip="1"))  # types=None accepts it


@pytest.mark.parametrize(
    "fields",
    [
        {"count": "not a number"},
        {"count": 1, "surplus": 2},
        {},
        [1],
    ],
)
def test_tampered_models_fail_to_decode(fields: object) -> None:
    data = json.dumps({"!": "test_serde_pydantic:Strict", "v": fields}).encode()
    with pytest.raises(CheckpointDecodeError):
        serde.decode(data, types=[Strict])


def test_validation_errors_are_chained() -> None:
    data = json.dumps(
        {
            "!": "test_serde_pydantic:Person",
            "v": {
                "name": "x",
                "born": "not a date",
                "tags": [],
                "home": None,
                "others": [],
                "scores": {},
                "anything": None,
            },
        }
    ).encode()
    with pytest.raises(
        CheckpointDecodeError, match="cannot rebuild test_serde_pydantic:Person"
    ) as info:
        serde.decode(data, types=[Person])
    assert isinstance(info.value.__cause__, pydantic.ValidationError)


def test_importing_serde_does_not_import_pydantic() -> None:
    code = (
        "import sys, stepgraph.serde as s\n"
        "assert 'pydantic' not in sys.modules, 'pydantic imported eagerly'\n"
        "s.decode(s.encode({'a': (1, 2)}))\n"
        "assert 'pydantic' not in sys.modules, 'pydantic imported by encode/decode'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
