"""The one exception tree of stepgraph.

```
WorkflowError
├── GraphError (also TypeError)        the graph is wrong; raised by build()
├── RoutingError (also TypeError)      a message no edge or handler accepts
├── ConcurrentRunError                 a session already has a run in progress
├── NotIdleError                       the session holds undelivered messages
├── ExecutorFailedError                a handler raised; original as __cause__
├── ExecutorTimeoutError (also TimeoutError) a handler ran past its timeout
├── RunTimeoutError (also TimeoutError) a run ran past its timeout
├── ConvergenceError                   max_supersteps reached with messages queued
├── RequestError                       an answer to a pending request is invalid
├── ReplayDivergenceError              a functional workflow re-ran its steps differently
├── SerializationError (also TypeError) a value cannot be stored
└── CheckpointError                    saving or loading a checkpoint failed
    ├── CheckpointNotFoundError
    ├── CheckpointDecodeError          stored bytes are malformed or unsafe
    ├── LeaseLostError                 another process took the session over
    └── GraphMismatchError             checkpoint made by a different graph
```

`GraphWarning` is the warning category for graphs that build but look wrong.
Every message says what happened and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointDecodeError",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConcurrentRunError",
    "ConvergenceError",
    "ExecutorFailedError",
    "ExecutorTimeoutError",
    "GraphError",
    "GraphMismatchError",
    "GraphWarning",
    "NotIdleError",
    "ReplayDivergenceError",
    "RequestError",
    "RoutingError",
    "RunTimeoutError",
    "SerializationError",
    "WorkflowError",
]


class WorkflowError(Exception):
    """Root of every error stepgraph raises on purpose."""


class GraphError(WorkflowError, TypeError):
    """The workflow graph is invalid; raised by `WorkflowBuilder.build()`."""


class RoutingError(WorkflowError, TypeError):
    """A message reached no target: no edge, every condition false, or no handler.

    Raised inside the sending handler (so the run fails with
    `ExecutorFailedError` whose `__cause__` is this error), or directly by
    `Session.run()` when the start executor cannot handle the input.
    """


class ConcurrentRunError(WorkflowError):
    """The session already has a run in progress; one run at a time per session."""


class NotIdleError(WorkflowError):
    """The session holds undelivered messages from a run that did not finish.

    Call `session.resume()` to continue it or `session.reset()` to discard it.
    """


class ExecutorFailedError(WorkflowError):
    """A handler raised; its superstep was rolled back. The original is `__cause__`.

    Attributes:
        executor_id: id of the executor whose handler raised.
        superstep: the superstep that failed and was rolled back.
    """

    def __init__(self, message: str, *, executor_id: str, superstep: int) -> None:
        super().__init__(message)
        self.executor_id = executor_id
        self.superstep = superstep


class ExecutorTimeoutError(WorkflowError, TimeoutError):
    """A handler invocation ran longer than its executor's timeout and was cancelled."""


class RunTimeoutError(WorkflowError, TimeoutError):
    """A run ran longer than its timeout; it ended FAILED at its last committed superstep."""


class ConvergenceError(WorkflowError):
    """An invocation reached `max_supersteps` with messages still queued."""

    @classmethod
    def after(cls, session_id: str, budget: int, workflow: str) -> ConvergenceError:
        """The error of a run of `session_id` that used its `budget` of supersteps."""
        return cls(
            f"session {session_id!r} still had messages queued after {budget} supersteps "
            f"(max_supersteps of workflow {workflow!r}); call session.resume() to grant "
            "another budget, raise max_supersteps in build(), or check the graph for an "
            "unintended cycle"
        )


class RequestError(WorkflowError):
    """An answer to a pending request is invalid (unknown id or wrong type)."""


class ReplayDivergenceError(WorkflowError):
    """A functional workflow called its steps in another order than when it first ran.

    The function of a `@workflow` re-runs from the top after an answer, a
    failure or a restart; every step call must have the name the call at the
    same position had before, or recorded results would go to the wrong calls.
    Raised inside the handler, so the run fails with `ExecutorFailedError`.
    """


class SerializationError(WorkflowError, TypeError):
    """A value cannot be encoded for storage (unknown or unsupported type)."""


class CheckpointError(WorkflowError):
    """Saving or loading a checkpoint failed; durability is never silently off."""


class CheckpointNotFoundError(CheckpointError, KeyError):
    """No checkpoint with that id exists in the store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CheckpointDecodeError(CheckpointError):
    """Stored bytes are malformed, tampered with, or name a type the workflow does not know."""


class GraphMismatchError(CheckpointError):
    """The checkpoint was made by a different graph; the message names what changed."""


class GraphWarning(UserWarning):
    """The graph builds but looks wrong (for example an unreachable executor)."""
