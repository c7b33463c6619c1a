"""Running one handler invocation under its executor's policies: cache, timeout, retry.

`Policies` is the `handle` interceptor of an executor that has a policy;
executors without one never get it in their chain.
An attempt that fails has its effects discarded: the activation's sends,
outputs, state writes and requests are cut back to what they were before the
attempt, and a stateful executor gets its pre-attempt snapshot back.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING, Any

from . import serde
from ._clock import sleep
from ._context import Activation
from ._errors import ExecutorTimeoutError, SerializationError
from ._events import Output
from ._interceptors import Interceptor, Next
from ._journal import EffectsMark
from ._policies import CachePolicy, ExecutorPolicy, ExecutorRetrying
from ._requests import Answer
from ._state import DELETED

if TYPE_CHECKING:
    from ._core import SessionCore

__all__ = ["Policies"]


class Policies(Interceptor):
    """The cache, timeout and retry policy of one executor of one session."""

    def __init__(self, core: SessionCore, index: int, policy: ExecutorPolicy) -> None:
        bp = core.workflow.blueprint
        self.policy = policy
        self.cache = core.cache
        self.clock = core.clock
        self.plan = bp.plan
        self.registry = bp.registry
        self.types = core.workflow.types
        self.signature = bp.signature
        self.stateful = bp.stateful[index]

    async def handle(self, act: Activation, next: Next[Activation, None]) -> None:
        """Invoke the handler on `act.message` honouring the cache, timeout and retry policies."""
        policy = self.policy
        message = act.message
        cache = self.cache
        key = None
        if policy.cache is not None and type(message) is not Answer and cache is not None:
            key = self._key(act, message, policy.cache)
            hit = await cache.get(key, self.clock().timestamp())
            if hit is not None:
                self._replay(act, hit)
                return
            if act.trace is None:
                act.trace = []
        mark = EffectsMark(act)
        await self._attempts(act, next, mark)
        if key is not None and not (act.requests or ())[mark.requests :]:
            await self._record(act, mark, key, policy.cache)

    async def _attempts(
        self, act: Activation, next: Next[Activation, None], mark: EffectsMark
    ) -> None:
        retry = self.policy.retry
        ex = act.executor
        attempt = 1
        while True:
            snapshot = await ex.snapshot() if self.stateful and retry is not None else None
            act.step_names = None  # each attempt may call the same steps again
            try:
                await self._attempt(act, next)
                return
            except Exception as error:
                if retry is None or attempt >= retry.max_attempts or not retry.retries(error):
                    act.attempts = attempt
                    raise
                mark.rollback(act)
                if self.stateful:
                    await ex.restore(snapshot)
                delay = retry.delay(attempt)
                eid = act.context.executor_id
                act.emit(ExecutorRetrying(eid, act.superstep, attempt, error, delay))
                await sleep(self.clock, delay)
                attempt += 1

    async def _attempt(self, act: Activation, next: Next[Activation, None]) -> None:
        timeout = self.policy.timeout
        if timeout is None:
            await next(act)
            return
        limit = asyncio.timeout(timeout)
        try:
            async with limit:
                await next(act)
        except TimeoutError:
            if limit.expired():
                raise ExecutorTimeoutError(
                    f"executor {act.context.executor_id!r} took longer than its timeout of "
                    f"{timeout} s on a {type(act.message).__name__} and was cancelled"
                ) from None
            raise

    def _key(self, act: Activation, message: Any, cache: CachePolicy) -> str:
        eid = self.plan.ids[act.index]
        raw = cache.key(message) if cache.key is not None else _encoded(message, self.types)
        digest = hashlib.sha256(f"{self.signature}\0{eid}\0{raw}".encode()).hexdigest()
        return f"{eid}:{digest}"

    async def _record(
        self, act: Activation, mark: EffectsMark, key: str, cache: CachePolicy | None
    ) -> None:
        writes = act.writes or {}
        changed = {
            k: v for k, v in writes.items() if k not in mark.writes or mark.writes[k] is not v
        }
        entry = {
            "sends": [[m, to] for m, to in (act.trace or [])[mark.trace :]],
            "outputs": act.outputs[mark.outputs :],
            "writes": [[k, v] for k, v in changed.items() if v is not DELETED],
            "deleted": [k for k, v in changed.items() if v is DELETED],
        }
        data = serde.encode(entry, types=self.registry)
        ttl = cache.ttl if cache is not None else None
        expires = self.clock().timestamp() + ttl if ttl is not None else None
        assert self.cache is not None
        await self.cache.put(key, data, expires)

    def _replay(self, act: Activation, data: bytes) -> None:
        """Apply a cached invocation's effects as if the handler had just run."""
        entry: Any = serde.decode(data, types=self.registry)
        eid = self.plan.ids[act.index]
        for message, to in entry["sends"]:
            targets = self.plan.route(act.index, message, to)
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


def _encoded(message: Any, types: serde.TypeRegistry) -> str:
    """The message's encoding: through the workflow's types (their plans are ready), or
    without them for a class they do not list (a subclass, say). Both give the same text.
    """
    try:
        return serde.encode(message, types=types).decode()
    except SerializationError:
        return serde.encode(message).decode()
