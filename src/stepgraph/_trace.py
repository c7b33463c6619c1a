"""What a checkpoint tells of the superstep that made it: handler timings and events.

A durable run writes a small trace into each checkpoint it saves
(`Checkpoint.trace`), so the dev UI and the CLI can show a run's events and
timeline when the live stream is gone (another process, a restart):

```
{"run": "3f9c0a61b2d4",             # one id per run (run, respond or resume)
 "kind": "superstep",               # or "input", "paused", "cancelled" (see Checkpoint.trace)
 "us": 12500,                       # the superstep's wall time (µs), start to barrier
 "handlers": [["writer", 10, 12400], ["map", 200, 3100, 7]],
                                    # executor id, start and duration (µs), map item
 "events": [{"type": "output", "executor_id": "writer", "value": ...}]}
```

Events are stored as plain JSON (`event_plain`), not as objects: a trace is for
reading, and needs no types to decode. Lifecycle events are left out (the
timings and the checkpoint tell them), and so are events whose class sets
`ephemeral = True` (`Event.ephemeral`), such as agents' token updates: a reply
is stored once, as its output, not once per token. One event's JSON is capped at `MAX_EVENT` bytes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _tape
from ._events import (
    CheckpointSaved,
    Event,
    ExecutorCompleted,
    ExecutorFailed,
    ExecutorInvoked,
    Output,
    RequestIssued,
    RunCompleted,
    RunStarted,
    RunStatus,
    StateUpdated,
    SubWorkflowEvent,
    SuperstepCompleted,
    SuperstepStarted,
)
from ._plain import to_jsonable

if TYPE_CHECKING:
    from ._requests import Request

__all__ = ["MAX_EVENT", "Tracer", "event_plain", "kept_events", "request_plain"]

MAX_EVENT = 64 * 1024
"""Largest JSON (UTF-8 bytes) of one event a trace keeps; a larger one keeps its type only."""

_LIFECYCLE: frozenset[type[Event]] = frozenset(
    {
        RunStarted,
        SuperstepStarted,
        SuperstepCompleted,
        ExecutorInvoked,
        ExecutorCompleted,
        CheckpointSaved,
        RunCompleted,
        StateUpdated,
    }
)
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def request_plain(request: Request) -> dict[str, Any]:
    """A request as plain JSON: id, executor, payload, and the response type by name."""
    rtype = request.response_type
    return {
        "id": request.id,
        "executor_id": request.executor_id,
        "payload": to_jsonable(request.payload),
        "response_type": getattr(rtype, "__qualname__", None) or repr(rtype),
    }


def event_plain(event: Event, text: Callable[[Any], str] | None = None) -> dict[str, Any]:
    """One event as `{"type": snake_case_name, ...fields}` in plain JSON.

    With `text`, an output also carries `"text": text(value)`.
    """
    match event:
        case Output(executor_id=eid, value=value):
            out: dict[str, Any] = {
                "type": "output",
                "executor_id": eid,
                "value": to_jsonable(value),
            }
            if text is not None:
                out["text"] = text(value)
            return out
        case RequestIssued(request=request):
            return {"type": "request_issued", "request": request_plain(request)}
        case ExecutorFailed(executor_id=eid, error=error):
            return {
                "type": "executor_failed",
                "executor_id": eid,
                "error": f"{type(error).__name__}: {error}",
            }
        case RunCompleted(status=status):
            return {"type": "run_completed", "status": status.value}
        case SubWorkflowEvent(executor_id=eid, event=inner):
            return {
                "type": "subworkflow_event",
                "executor_id": eid,
                "event": event_plain(inner, text),
            }
        case _:
            out = {"type": _SNAKE.sub("_", type(event).__name__).lower()}
            if dataclasses.is_dataclass(event):
                for f in dataclasses.fields(event):
                    out[f.name] = to_jsonable(getattr(event, f.name))
            return out


def _kept(event: Event) -> bool:
    """Whether a trace keeps `event` (not lifecycle, not ephemeral), inside sub-workflows too."""
    while type(event) is SubWorkflowEvent:
        event = event.event
    return type(event) not in _LIFECYCLE and not getattr(type(event), "ephemeral", False)


def _stored(event: Event) -> dict[str, Any]:
    try:
        plain = event_plain(event)
        size = len(json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode())
    except Exception as exc:  # a repr that raises, a lone surrogate: keep the type
        return {"type": _SNAKE.sub("_", type(event).__name__).lower(), "omitted": repr(exc)[:200]}
    if size > MAX_EVENT:
        return {"type": plain["type"], "omitted": f"{size} bytes, over the {MAX_EVENT} kept"}
    return plain


def kept_events(recorded: list[Any]) -> list[dict[str, Any]]:
    """The events a trace keeps of `recorded` (a tape, or a list of events), stored.

    Scans a tape without building its lifecycle events (`_tape` records them flat).
    """
    out: list[dict[str, Any]] = []
    one = _tape.ONE_FIELD
    i, n = 0, len(recorded)
    while i < n:
        item = recorded[i]
        if type(item) is type:  # kind, then one or two fields
            if item is Output:
                out.append(_stored(Output(recorded[i + 1], recorded[i + 2])))
            i += 2 if item in one else 3
            continue
        if _kept(item):
            out.append(_stored(item))
        i += 1
    return out


class Tracer:
    """A durable run's trace writer: the runner and map items time each activation
    into `timings` (`clock()` before and after); a save collects the superstep's events.
    """

    __slots__ = ("clock", "run", "started", "timings")

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.run = os.urandom(6).hex()
        self.clock = clock
        self.started = 0.0
        self.timings: list[tuple[str, int | None, float, float]] = []

    def start(self) -> None:
        """A superstep begins."""
        self.started = self.clock()
        self.timings.clear()

    def note(self, status: RunStatus) -> dict[str, Any]:
        """The trace of a save that ends no superstep, made with `status`: kind `input`
        (a run's start, RUNNING), else the status's value (`paused`, `cancelled`).
        """
        kind = "input" if status is RunStatus.RUNNING else status.value
        return {"run": self.run, "kind": kind}

    def superstep(self, recorded: list[Any], mark: int) -> dict[str, Any]:
        """The trace of the superstep begun at `start()`; its events are `recorded[mark:]`."""
        t0 = self.started
        timings = self.timings
        if len(timings) > 1:
            timings.sort(key=lambda t: t[2])
        handlers: list[list[Any]] = []
        for eid, item, began, ended in timings:
            row: list[Any] = [eid, int((began - t0) * 1e6), int((ended - began) * 1e6)]
            if item is not None:
                row.append(item)
            handlers.append(row)
        trace: dict[str, Any] = {
            "run": self.run,
            "kind": "superstep",
            "us": int((self.clock() - t0) * 1e6),
            "handlers": handlers,
        }
        events = kept_events(recorded[mark:])
        if events:
            trace["events"] = events
        return trace
