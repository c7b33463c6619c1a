"""stepgraph: agent workflows as typed graphs of executors, run in Pregel-style supersteps.

Module map (everything public is re-exported here):

* `_executor`, `_handlers`, `_types`: executors (`StatefulExecutor` when they keep
  state), `@handler`/`@executor`, type routing
* `_context`, `_state`: what a handler uses (`Context`) and the shared state view
* `_edges`, `_builder`, `_planner`: edge kinds, `WorkflowBuilder`, pure routing
* `_workflow`, `_blueprint`: the immutable graph and what the engine derives from it
* `_session`, `_core`, `_content`: the public `Session`, its engine side
  (`SessionCore`) and the one owner of what changes in it (`SessionContent`)
* `_steering`, `_updates`: breakpoints and `StateUpdated` events around a run's
  supersteps; `update_state` from outside a run
* `_run`, `_runner`: the `Run` handle and the superstep loop
* `_interceptors`, `_traced`: layers around run, superstep, activation and handler
  calls (leasing in `_leasing`, tracing, policies in `_attempts`)
* `_group`, `_sinks`, `_tape`: a superstep's handler tasks, where a run's events go
  (awaited: a compact tape; streamed: a channel to the consumer)
* `_names`: one module name for a workflow file however it is loaded
* `_clock`: the session clock, and the `SleepingClock` retry delays sleep on
* `_events`, `_requests`, `_errors`: events, `Request`/`RunResult`, the error tree
* `_inputs`, `_coerce`: run input and answers checked and converted to their types
* `_checkpoint`, `_parts`, `_durability`, `_retention`, `_migrations`: checkpoints
  (delta parts, their names and layout), saving and restoring sessions, pruning,
  graph versions
* `_store`, `_lease`, `_memory`: the store and lease protocols and the in-memory
  store, below the engine's users (`stores` re-exports them)
* `_subworkflow`: `SubWorkflow`
* `_functional`, `_replay`: the functional API (`@workflow`, `@step`, `request()`,
  `context()`) as a one-executor workflow, and how its calls are keyed and replayed
* `_policies`, `_attempts`, `_cache`: retry, timeout and cache policies
* `_leasing`, `_backend`: one runner per session across processes; executor backends
* `_viz`, `_svg`: Mermaid, DOT and SVG pictures

Packages: `serde` (tagged JSON), `stores` (memory, file, SQLite, PostgreSQL,
store URLs, leases), `declarative` (YAML workflows: `load_workflow`,
`Workflow.to_yaml()`, the safe condition language), `agents`, `orchestrations`,
`hosting`, `cli`, `distributed` (Ray); modules `tracing` (OpenTelemetry),
`testing` (conformance suite, manual clock, ids) and `loading` (importing a
workflow file as every loader does).
"""

from ._builder import WorkflowBuilder
from ._cache import Cache, MemoryCache, SqliteCache
from ._checkpoint import Checkpoint, CheckpointInfo
from ._context import Context, SyncContext
from ._edges import Case
from ._errors import (
    CheckpointDecodeError,
    CheckpointError,
    CheckpointNotFoundError,
    ConcurrentRunError,
    ConvergenceError,
    ExecutorFailedError,
    ExecutorTimeoutError,
    GraphError,
    GraphMismatchError,
    GraphWarning,
    NotIdleError,
    ReplayDivergenceError,
    RequestError,
    RoutingError,
    RunTimeoutError,
    SerializationError,
    WorkflowError,
)
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
from ._executor import (
    Executor,
    FunctionExecutor,
    StatefulExecutor,
    executor,
    handler,
    response_handler,
)
from ._functional import Step, context, request, step, workflow
from ._leasing import LeasePolicy
from ._migrations import MigrationData
from ._policies import CachePolicy, ExecutorRetrying, RetryPolicy
from ._requests import ExecutorFailure, Request, RunResult
from ._retention import Retention
from ._run import Run
from ._session import Session
from ._state import DELETE, StateView
from ._subworkflow import SubWorkflow
from ._workflow import Workflow
from .declarative import load_workflow
from .stores import (
    CheckpointStore,
    FileCheckpointStore,
    LeaseLostError,
    MemoryCheckpointStore,
    SqliteCheckpointStore,
)

__version__ = "0.1.0"

__all__ = [
    "Cache",
    "CachePolicy",
    "Case",
    "Checkpoint",
    "CheckpointDecodeError",
    "CheckpointError",
    "CheckpointInfo",
    "CheckpointNotFoundError",
    "CheckpointSaved",
    "CheckpointStore",
    "ConcurrentRunError",
    "Context",
    "ConvergenceError",
    "DELETE",
    "Event",
    "Executor",
    "ExecutorCompleted",
    "ExecutorFailed",
    "ExecutorFailedError",
    "ExecutorFailure",
    "ExecutorInvoked",
    "ExecutorRetrying",
    "ExecutorTimeoutError",
    "FileCheckpointStore",
    "FunctionExecutor",
    "GraphError",
    "GraphMismatchError",
    "GraphWarning",
    "LeaseLostError",
    "LeasePolicy",
    "MemoryCache",
    "MemoryCheckpointStore",
    "MigrationData",
    "NotIdleError",
    "Output",
    "ReplayDivergenceError",
    "Request",
    "RequestError",
    "RequestIssued",
    "Retention",
    "RetryPolicy",
    "RoutingError",
    "Run",
    "RunCompleted",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "RunTimeoutError",
    "SerializationError",
    "Session",
    "SqliteCache",
    "SqliteCheckpointStore",
    "StateUpdated",
    "StateView",
    "StatefulExecutor",
    "Step",
    "SubWorkflow",
    "SubWorkflowEvent",
    "SuperstepCompleted",
    "SuperstepStarted",
    "SyncContext",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowError",
    "context",
    "executor",
    "handler",
    "load_workflow",
    "request",
    "response_handler",
    "step",
    "workflow",
]
