"""Plain JSON views of values and events, for people and clients (one way: nothing is rebuilt).

`to_jsonable(value)` turns dataclasses, pydantic models, enums, tuples, sets,
datetimes and the like into plain JSON data; `event_plain(event)` and
`request_plain(request)` give the shapes the server's streams, the dev UI and
checkpoint traces (`Checkpoint.trace`) use. Checkpoints themselves are stored
with `stepgraph.serde`, which keeps types.
"""

from __future__ import annotations

from ._plain import to_jsonable
from ._trace import event_plain, request_plain

__all__ = ["event_plain", "request_plain", "to_jsonable"]
