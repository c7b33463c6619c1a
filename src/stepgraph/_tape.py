"""A compact record of an awaited run's events, made into event objects on demand.

An awaited run (not streamed) keeps its events only for `RunResult.events`,
which many callers never read. The frequent kinds are recorded flat, as the
event class followed by its one or two field values; other events are
recorded as themselves. The record is one list of plain values, which costs
the garbage collector one object per run instead of one per event, and the
event objects are built the first time `RunResult.events` is read.
"""

from __future__ import annotations

from typing import Any

from ._events import (
    Event,
    ExecutorCompleted,
    ExecutorInvoked,
    Output,
    RequestIssued,
    RunCompleted,
    RunStarted,
    SuperstepCompleted,
    SuperstepStarted,
)

__all__ = ["ONE_FIELD", "TWO_FIELDS", "decode", "forget_since"]

ONE_FIELD: frozenset[type[Event]] = frozenset(
    {RunStarted, SuperstepStarted, SuperstepCompleted, RunCompleted}
)
"""Kinds recorded as `kind, value`."""
TWO_FIELDS: frozenset[type[Event]] = frozenset({ExecutorInvoked, ExecutorCompleted, Output})
"""Kinds recorded as `kind, first, second`."""


def decode(tape: list[Any]) -> list[Event]:
    """The events a tape records, in order."""
    out: list[Event] = []
    append = out.append
    i = 0
    n = len(tape)
    while i < n:
        item = tape[i]
        if isinstance(item, type):
            if item in ONE_FIELD:
                append(item(tape[i + 1]))
                i += 2
            else:
                append(item(tape[i + 1], tape[i + 2]))
                i += 3
        else:
            append(item)
            i += 1
    return out


def forget_since(tape: list[Any], mark: int) -> None:
    """Drop the outputs and requests recorded from position `mark` on (a rollback).

    Works on a tape and on a plain list of events alike (events decode to themselves).
    """
    tail = [e for e in decode(tape[mark:]) if not isinstance(e, Output | RequestIssued)]
    del tape[mark:]
    tape.extend(tail)
