"""Micro-benchmark of stepgraph.serde: µs per encode/decode for typical checkpoint values.

Run with `.venv/bin/python benchmarks/bench_serde.py`. Prints numbers only; no
assertions on time (machines differ).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import timeit
import uuid
from collections.abc import Callable

from stepgraph import serde


@dataclasses.dataclass(frozen=True)
class Message:
    role: str
    text: str
    at: datetime.datetime
    id: uuid.UUID


@dataclasses.dataclass
class Conversation:
    messages: list[Message]
    turns: int = 0


def _values() -> dict[str, object]:
    at = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    msgs = [Message("user", f"hello {i} " * 8, at, uuid.UUID(int=i)) for i in range(20)]
    return {
        "str 10 KiB": "x" * 10_240,
        "small state dict": {"user": "ada", "count": 3, "done": False, "score": 0.5},
        "list of 1000 ints": list(range(1000)),
        "nested JSON (100 records)": [
            {"id": i, "name": f"n{i}", "tags": ["a", "b"], "meta": {"ok": True, "w": 1.5}}
            for i in range(100)
        ],
        "tuple + datetime + set": {"pair": (1, "a"), "at": at, "seen": {1, 2, 3}},
        "dataclass (20 messages)": Conversation(msgs, 20),
    }


def _per_call_us(fn: Callable[[], object]) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    best = min(timer.repeat(repeat=5, number=number))
    return best / number * 1e6


def main() -> None:
    registry = serde.TypeRegistry([Conversation])
    print(f"{'value':28} {'encode µs':>10} {'decode µs':>10} {'bytes':>7} {'json.dumps µs':>14}")
    for name, value in _values().items():
        data = serde.encode(value, types=registry)
        assert serde.decode(data, types=registry) == value
        enc = _per_call_us(lambda value=value: serde.encode(value, types=registry))
        dec = _per_call_us(lambda data=data: serde.decode(data, types=registry))
        try:
            ref = f"{_per_call_us(lambda value=value: json.dumps(value)):14.2f}"
        except TypeError:
            ref = f"{'n/a':>14}"
        print(f"{name:28} {enc:10.2f} {dec:10.2f} {len(data):7d} {ref}")


if __name__ == "__main__":
    main()
