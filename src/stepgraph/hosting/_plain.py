"""Plain JSON for values that leave the server: outputs, request payloads, answers.

`serde` gives tagged JSON for checkpoints; clients want the plain shape a
person would write: dataclasses and pydantic models as objects, enums as their
values, tuples and sets as arrays, datetimes as ISO strings (`to_jsonable`, from
the core, which also writes checkpoint traces); here the text of an output.
"""

from __future__ import annotations

import json
from typing import Any

from stepgraph.agents import AgentResponse, ChatMessage
from stepgraph.plain import to_jsonable

__all__ = ["dumps", "output_text", "to_jsonable"]


def dumps(value: Any) -> str:
    """Compact JSON text of `to_jsonable(value)`."""
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def output_text(value: Any) -> str:
    """The text of one workflow output: strings as they are, agent replies as their
    text, anything else (structured outputs) as JSON text.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, AgentResponse | ChatMessage):
        return value.text
    return dumps(value)
