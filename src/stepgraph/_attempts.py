"""Running one handler invocation under its executor's policies: cache, timeout, retry.

Only executors with a policy come here; the runner's fast path never does.
An attempt that fails has its effects discarded: the activation's sends,
outputs, state writes and requests are cut back to what they were before the
attempt, and a stateful executor gets its pre-attempt snapshot back.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any

from . import serde
from ._context import Activation, Context
from ._errors import ExecutorTimeoutError, SerializationError
from ._events import Output
from ._handlers import HandlerSpec
from ._policies import CachePolicy, ExecutorPolicy, ExecutorRetrying
from ._requests import Answer
from ._state import DELETED

if TYPE_CHECKING:
    from ._runner import Runner

__all__ = ["invoke_with_policy"]


class _Mark:
    """Where an activation stood before an attempt."""

    __slots__ = ("outputs", "requests", "sends", "trace", "writes")

    def __init__(self, act: Activation) -> None:
        self.sends = len(act.sends)
        self.outputs = len(act.outputs)
        self.requests = len(act.requests or ())
        self.trace = len(act.trace or ())
        self.writes = dict(act.writes) if act.writes else {}

    def rollback(self, act: Activation) -> None:
        del act.sends[self.sends :]
        del act.outputs[self.outputs :]
        if act.requests is not None:
            del act.requests[self.requests :]
        if act.trace is not None:
            del act.trace[self.trace :]
        act.writes = dict(self.writes) if self.writes or act.writes is not None else None


async def invoke_with_policy(
    runner: Runner,
    policy: ExecutorPolicy,
    h: HandlerSpec,
    ex: Any,
    message: Any,
    ctx: Context[Any, Any],
    act: Activation,
) -> None:
    """Invoke `h` on `message` honouring the cache, timeout and retry policies."""
    session = runner.session
    key = None
    if policy.cache is not None and type(message) is not Answer and session._cache is not None:
        key = _key(runner, act, message, policy.cache)
        hit = await session._cache.get(key, session._clock().timestamp())
        if hit is not None:
            _replay(runner, act, hit)
            return
        if act.trace is None:
            act.trace = []
    mark = _Mark(act)
    attempt = 1
    stateful = session.workflow._stateful[act.index]
    while True:
        snapshot = await ex.snapshot() if stateful and policy.retry is not None else None
        try:
            await _attempt(runner, policy, h, ex, message, ctx, act)
            break
        except Exception as error:
            retry = policy.retry
            if retry is None or attempt >= retry.max_attempts or not retry.retries(error):
                raise
            mark.rollback(act)
            if stateful:
                await ex.restore(snapshot)
            delay = retry.delay(attempt)
            act.emit(ExecutorRetrying(ctx.executor_id, act.superstep, attempt, error, delay))
            await _sleep(session._clock, delay)
            attempt += 1
    if key is not None and not (act.requests or ())[mark.requests :]:
        await _record(runner, act, mark, key, policy.cache)


async def _attempt(
    runner: Runner,
    policy: ExecutorPolicy,
    h: HandlerSpec,
    ex: Any,
    message: Any,
    ctx: Context[Any, Any],
    act: Activation,
) -> None:
    if policy.timeout is None:
        await runner.call(h, ex, message, ctx, act)
        return
    limit = asyncio.timeout(policy.timeout)
    try:
        async with limit:
            await runner.call(h, ex, message, ctx, act)
    except TimeoutError:
        if limit.expired():
            raise ExecutorTimeoutError(
                f"executor {ctx.executor_id!r} took longer than its timeout of {policy.timeout} s "
                f"on a {type(message).__name__} and was cancelled"
            ) from None
        raise


async def _sleep(clock: Any, seconds: float) -> None:
    """Sleep on the session's clock when it can (a manual clock jumps), else the loop's."""
    if seconds <= 0:
        return
    sleep: Any = getattr(clock, "sleep", None)
    if sleep is not None:
        await sleep(seconds)
    else:
        await asyncio.sleep(seconds)


def _encoded(message: Any, types: serde.TypeRegistry) -> str:
    """The message's encoding: through the workflow's types (their plans are ready), or
    without them for a class they do not list (a subclass, say). Both give the same text.
    """
    try:
        return serde.encode(message, types=types).decode()
    except SerializationError:
        return serde.encode(message).decode()


def _key(runner: Runner, act: Activation, message: Any, cache: CachePolicy) -> str:
    wf = runner.session.workflow
    eid = wf._plan.ids[act.index]
    raw = cache.key(message) if cache.key is not None else _encoded(message, wf.types)
    digest = hashlib.sha256(f"{wf.signature}\0{eid}\0{raw}".encode()).hexdigest()
    return f"{eid}:{digest}"


async def _record(
    runner: Runner, act: Activation, mark: _Mark, key: str, cache: CachePolicy | None
) -> None:
    session = runner.session
    writes = act.writes or {}
    changed = {k: v for k, v in writes.items() if k not in mark.writes or mark.writes[k] is not v}
    entry = {
        "sends": [[m, to] for m, to in (act.trace or [])[mark.trace :]],
        "outputs": act.outputs[mark.outputs :],
        "writes": [[k, v] for k, v in changed.items() if v is not DELETED],
        "deleted": [k for k, v in changed.items() if v is DELETED],
    }
    data = serde.encode(entry, types=session.workflow._registry)
    ttl = cache.ttl if cache is not None else None
    expires = session._clock().timestamp() + ttl if ttl is not None else None
    assert session._cache is not None
    await session._cache.put(key, data, expires)


def _replay(runner: Runner, act: Activation, data: bytes) -> None:
    """Apply a cached invocation's effects as if the handler had just run."""
    wf = runner.session.workflow
    entry: Any = serde.decode(data, types=wf._registry)
    eid = wf._plan.ids[act.index]
    for message, to in entry["sends"]:
        targets = runner.plan.route(act.index, message, to)
        act.sends.extend((t, message) for t in targets)
    for value in entry["outputs"]:
        act.outputs.append(value)
        act.emit(Output(eid, value))
    if entry["writes"] or entry["deleted"]:
        if act.writes is None:
            act.writes = {}
        for k, v in entry["writes"]:
            act.writes[k] = v
        for k in entry["deleted"]:
            act.writes[k] = DELETED
