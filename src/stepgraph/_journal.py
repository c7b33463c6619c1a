"""Completed work never runs twice: activation records and durable steps.

While a superstep runs, every activation (one handler call on one message)
that finishes records what it did (sends, outputs, state writes, requests and
the executor's snapshot) under the superstep's *base*, the checkpoint the
session stood on when the superstep started, and every `ctx.step` records its
result under the activation. The superstep still commits as a unit at its
barrier; its records are then deleted. If it fails, is cancelled or the
process dies instead, the first superstep of `resume()` reads the records of
its base: finished activations apply their recorded effects without calling
their handlers, and steps that finished return their recorded results.

Records live in the session's store when it is a `RecordStore` (all shipped
stores), else in memory. A superstep of a single activation writes no
activation record (its checkpoint is the record); steps always record.
Records are keyed by the base checkpoint, so they never leak into another
branch: a superstep started from any other checkpoint has another base.

`Journaling` is the session's interceptor around supersteps (choosing the
base, deleting records once committed) and handler calls (replaying or
recording); `run_step` implements `ctx.step`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from . import serde
from ._errors import (
    CheckpointError,
    ConvergenceError,
    ExecutorFailedError,
    RunTimeoutError,
    SerializationError,
    WorkflowError,
)
from ._events import Output, RequestIssued
from ._interceptors import Interceptor, Next, RunCall, SuperstepCall
from ._map import ItemSlot, MapSlot
from ._parts import StoresOwnParts
from ._planner import FanInSlot, Target
from ._state import DELETED
from ._store import FAILED_RECORD

if TYPE_CHECKING:
    from ._blueprint import Blueprint
    from ._context import Activation
    from ._events import RunStatus
    from ._store import RecordStore

__all__ = ["EffectsMark", "Journal", "Journaling", "idempotency_key", "run_step"]

_ACTIVATION = "a:"
_STEP = "s:"


class EffectsMark:
    """Where an activation's effects stood before one handler call (or one attempt)."""

    __slots__ = ("outputs", "requests", "sends", "trace", "writes")

    def __init__(self, act: Activation) -> None:
        self.sends = len(act.sends)
        self.outputs = len(act.outputs)
        self.requests = len(act.requests or ())
        self.trace = len(act.trace or ())
        self.writes = dict(act.writes) if act.writes else {}

    def rollback(self, act: Activation) -> None:
        """Drop what the activation did since the mark."""
        del act.sends[self.sends :]
        del act.outputs[self.outputs :]
        if act.requests is not None:
            del act.requests[self.requests :]
        if act.trace is not None:
            del act.trace[self.trace :]
        act.writes = dict(self.writes) if self.writes or act.writes is not None else None

    def written(self, act: Activation) -> dict[str, Any]:
        """State keys written since the mark (`DELETED` for a deletion)."""
        writes = act.writes or {}
        before = self.writes
        return {k: v for k, v in writes.items() if k not in before or before[k] is not v}


class Journal:
    """The records of one session's superstep in progress, under its base checkpoint."""

    __slots__ = ("base", "recording", "records", "session_id", "store", "written")

    def __init__(self, session_id: str, store: RecordStore | None) -> None:
        self.session_id = session_id
        self.store = store
        self.base: str | None = None
        self.records: dict[str, bytes] = {}
        self.recording = False  # record finished activations (more than one in the superstep)
        self.written = False  # records were saved under `base` since it was chosen

    async def open(self, base: str | None, resuming: bool) -> None:
        """Start a superstep on `base`; when it resumes one, read what was recorded there."""
        if base == self.base and (self.records or not resuming):
            return  # the same superstep again, in this process: its records are here
        self.base = base
        if self.records:
            self.records = {}
        self.written = False
        if resuming and base is not None and self.store is not None:
            self.records = await self.store.load_records(self.session_id, base)

    async def put(self, key: str, data: bytes) -> None:
        """Record `data` under `key`, durably when the store keeps records."""
        self.records[key] = data
        if self.store is not None and self.base is not None:
            self.written = True
            await self.store.save_record(self.session_id, self.base, key, data)

    async def committed(self) -> None:
        """The superstep on `base` committed: its records are garbage."""
        if self.written or self.records:
            if self.store is not None and self.base is not None:
                await self.store.delete_records(self.session_id, self.base)
            self.records = {}
            self.written = False
        self.base = None

    async def failed(self, base: str | None, why: str) -> None:
        """A run failed on `base`: say so durably (a reopened session is FAILED, not
        INTERRUPTED). Best effort: a store that cannot take it leaves INTERRUPTED.
        """
        if self.store is None or base is None:
            return
        with contextlib.suppress(CheckpointError):
            await self.store.save_record(self.session_id, base, FAILED_RECORD, why.encode())

    async def discard_all(self) -> None:
        """Forget every record of the session (a reset)."""
        self.records = {}
        self.base = None
        self.written = False
        if self.store is not None:
            await self.store.delete_records(self.session_id, None)


class Journaling(Interceptor):
    """Chooses each superstep's base, replays finished activations, records the rest."""

    def __init__(self, journal: Journal, blueprint: Blueprint) -> None:
        self.journal = journal
        self.blueprint = blueprint

    async def run(self, call: RunCall, next: Next[RunCall, RunStatus]) -> RunStatus:
        try:
            return await next(call)
        except (ExecutorFailedError, ConvergenceError, RunTimeoutError) as exc:
            await self.journal.failed(call.content.head, str(exc))
            raise

    async def superstep(self, call: SuperstepCall, next: Next[SuperstepCall, None]) -> None:
        journal = self.journal
        content = call.content
        if call.resuming or journal.records or journal.written:
            await journal.open(content.head, call.resuming)
        else:  # the usual superstep: nothing recorded, nothing to read (no await)
            journal.base = content.head
        queue = content.queue
        # Record finished activations only when the superstep has more than one.
        journal.recording = len(queue) > 1 or any(len(m) > 1 for m in queue.values())
        await next(call)  # a failure keeps the records for resume()
        if journal.written or journal.records:
            await journal.committed()
        else:
            journal.base = None

    def handle(self, act: Activation, next: Next[Activation, None]) -> Awaitable[None]:
        journal = self.journal
        act.journal = journal
        if not journal.records and not journal.recording:
            return next(act)  # nothing to replay or record: no frame of its own
        return self._handle(act, next)

    async def _handle(self, act: Activation, next: Next[Activation, None]) -> None:
        journal = self.journal
        key = _ACTIVATION + activation_key(act)
        recorded = journal.records.get(key) if journal.records else None
        if recorded is not None:
            await self._replay(act, recorded)
            return
        if not journal.recording:
            await next(act)
            return
        mark = EffectsMark(act)
        await next(act)
        await journal.put(key, await self._encode(act, mark))

    async def _encode(self, act: Activation, mark: EffectsMark) -> bytes:
        bp = self.blueprint
        written = mark.written(act)
        entry: dict[str, Any] = {
            "sends": [[_plain(t), m] for t, m in act.sends[mark.sends :]],
            "outputs": act.outputs[mark.outputs :],
            "writes": [[k, v] for k, v in written.items() if v is not DELETED],
            "deleted": [k for k, v in written.items() if v is DELETED],
            "requests": (act.requests or [])[mark.requests :],
        }
        i = act.index
        if bp.stateful[i]:
            snapshot = await act.executor.snapshot()
            if bp.own_parts[i]:
                keeper = cast(StoresOwnParts, bp.prototypes[i])
                entry["parts"] = dict(keeper.snapshot_parts(snapshot) or {})
            else:
                entry["snapshot"] = snapshot
        try:
            return serde.encode(entry, types=bp.registry)
        except SerializationError as exc:
            raise SerializationError(
                f"cannot record what executor {act.context.executor_id!r} did (so that it "
                f"never runs twice): {exc}"
            ) from exc

    async def _replay(self, act: Activation, data: bytes) -> None:
        """Apply a finished activation's recorded effects instead of calling its handler."""
        bp = self.blueprint
        entry: Any = serde.decode(data, types=bp.registry)
        eid = act.context.executor_id
        for target, message in entry["sends"]:
            act.sends.append((_target(target), message))
        for value in entry["outputs"]:
            act.outputs.append(value)
            act.sink.record((Output, eid, value))
        if entry["writes"] or entry["deleted"]:
            writes = act.writes if act.writes is not None else {}
            for k, v in entry["writes"]:
                writes[k] = v
            for k in entry["deleted"]:
                writes[k] = DELETED
            act.writes = writes
        for request in entry["requests"]:
            if act.requests is None:
                act.requests = []
            act.requests.append(request)
            act.emit(RequestIssued(request))
        i = act.index
        if "parts" in entry:
            keeper = cast(StoresOwnParts, bp.prototypes[i])
            await act.executor.restore(keeper.snapshot_from_parts(entry["parts"]))
        elif "snapshot" in entry:
            await act.executor.restore(entry["snapshot"])


def _plain(target: Target) -> Any:
    if isinstance(target, int):
        return target
    if isinstance(target, FanInSlot):
        return [target.group, target.position, target.target]
    if isinstance(target, MapSlot):
        return ["m", target.group, target.target]
    return ["i", target.group, target.batch, target.index, target.target]


def _target(raw: Any) -> Target:
    if isinstance(raw, int):
        return raw
    if raw[0] == "m":
        return MapSlot(int(raw[1]), int(raw[2]))
    if raw[0] == "i":
        return ItemSlot(int(raw[1]), int(raw[2]), int(raw[3]), int(raw[4]))
    group, position, target = raw
    return FanInSlot(int(group), int(position), int(target))


def activation_key(act: Activation) -> str:
    """The activation's name within its superstep: executor id and message position.

    A map item's adds its batch and item index (its position is in the worker's queue).
    """
    item = act.item
    if item is None:
        return f"{act.context.executor_id}#{act.position}"
    return f"{act.context.executor_id}#{item.batch}.{item.index}@{act.position}"


def idempotency_key(act: Activation) -> str:
    """Stable for one activation across retries, resumes and restarts (32 hex digits)."""
    raw = f"{act.context.session_id}\0{act.base}\0{act.superstep}\0{activation_key(act)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


async def run_step(
    act: Activation,
    name: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    registry: serde.TypeRegistry | tuple[()],
) -> Any:
    """`ctx.step`: the recorded result of step `name`, or `fn`'s, recorded first."""
    if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise WorkflowError(f"ctx.step takes a non-empty string name, got {name!r}")
    names = act.step_names
    if names is None:
        names = act.step_names = set()
    used = f"{act.position}:{name}"
    if used in names:
        raise WorkflowError(
            f"step {name!r} ran twice in one call of executor {act.context.executor_id!r}; "
            "give each ctx.step of a handler its own name (add a loop index: f'fetch-{i}')"
        )
    names.add(used)
    key = f"{_STEP}{activation_key(act)}:{name}"
    journal = act.journal
    records = journal.records if journal is not None else act.step_results
    if records is not None and key in records:
        return serde.decode(records[key], types=registry)
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    try:
        data = serde.encode(result, types=registry)
    except SerializationError as exc:
        raise SerializationError(
            f"the result of step {name!r} of executor {act.context.executor_id!r} cannot be "
            f"recorded: {exc}; return a JSON-like value or register its type"
        ) from exc
    if journal is not None:
        await journal.put(key, data)
    else:
        if act.step_results is None:
            act.step_results = {}
        act.step_results[key] = data
    return result
