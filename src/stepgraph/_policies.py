"""Executor policies: retry, timeout and cache, set per executor or as workflow defaults.

* `RetryPolicy`: a failing handler invocation is retried (only that handler;
  what its failed attempt sent, output or wrote is discarded), with backoff
  slept on the session's clock; `ExecutorRetrying` events show each attempt.
* `timeout`: a handler invocation longer than this is cancelled and fails with
  `ExecutorTimeoutError` (retried when the retry policy covers it).
* `CachePolicy`: a handler invocation whose key was computed before is not run;
  its recorded sends, outputs and state writes are replayed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._events import Event

__all__ = ["CachePolicy", "ExecutorPolicy", "ExecutorRetrying", "RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a failing handler invocation.

    Attributes:
        max_attempts: attempts in all (1 = no retry).
        initial_delay: seconds before the second attempt.
        backoff: factor by which each further delay grows.
        max_delay: cap on one delay.
        jitter: up to this fraction of a delay is added at random (0 = none).
        retry_on: exception types that are retried; others fail at once.
    """

    max_attempts: int = 3
    initial_delay: float = 0.0
    backoff: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.initial_delay < 0 or self.backoff < 1 or self.max_delay < 0 or self.jitter < 0:
            raise ValueError("delays must be >= 0, backoff >= 1 and jitter >= 0")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = min(self.max_delay, self.initial_delay * self.backoff ** (attempt - 1))
        return base + (base * self.jitter * random.random() if self.jitter else 0.0)

    def retries(self, error: BaseException) -> bool:
        """True when `error` is one this policy retries."""
        return isinstance(error, self.retry_on)


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Reuse a handler's effects for an input seen before.

    Attributes:
        key: maps the input message to a cache key (str); by default the encoded message.
        ttl: seconds an entry stays valid (None = forever), on the session's clock.
    """

    key: Callable[[Any], str] | None = None
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class ExecutorPolicy:
    """The policies of one executor (None = the workflow default, or none)."""

    retry: RetryPolicy | None = None
    timeout: float | None = None
    cache: CachePolicy | None = None

    def merged(self, default: ExecutorPolicy) -> ExecutorPolicy:
        """This policy with unset fields taken from `default`."""
        return ExecutorPolicy(
            retry=self.retry if self.retry is not None else default.retry,
            timeout=self.timeout if self.timeout is not None else default.timeout,
            cache=self.cache if self.cache is not None else default.cache,
        )

    @property
    def active(self) -> bool:
        """True when any policy is set (the runner's fast path skips all of this otherwise)."""
        return self.retry is not None or self.timeout is not None or self.cache is not None


NO_POLICY = ExecutorPolicy()


@dataclass(frozen=True, slots=True)
class ExecutorRetrying(Event):
    """A handler invocation failed and will be tried again after `delay` seconds."""

    executor_id: str
    superstep: int
    attempt: int
    error: BaseException = field(compare=False)
    delay: float = 0.0
