"""The public face of stepgraph is pinned: adding or removing a name is deliberate."""

import stepgraph as sg

EXPECTED = {
    "Case", "FileCheckpointStore", "SqliteCheckpointStore", "Checkpoint", "CheckpointInfo", "CheckpointStore", "MemoryCheckpointStore",
    "CheckpointDecodeError", "CheckpointError", "CheckpointNotFoundError",
    "CheckpointSaved", "ConcurrentRunError", "Context", "ConvergenceError", "Event",
    "Executor", "ExecutorCompleted", "ExecutorFailed", "ExecutorFailedError",
    "ExecutorInvoked", "FunctionExecutor", "GraphError", "GraphMismatchError",
    "GraphWarning", "NotIdleError", "Output", "Request", "RequestError", "RequestIssued",
    "Retention", "RoutingError", "Run", "RunCompleted", "RunResult", "RunStarted", "RunStatus",
    "SerializationError", "Session", "StateView", "SubWorkflow", "SubWorkflowEvent", "SuperstepCompleted",
    "SuperstepStarted", "SyncContext", "Workflow", "WorkflowBuilder", "WorkflowError",
    "executor", "handler", "response_handler",
    "Cache", "MemoryCache", "SqliteCache", "ExecutorTimeoutError", "RunTimeoutError",
    "MigrationData", "LeasePolicy", "LeaseLostError", "CachePolicy", "ExecutorRetrying", "RetryPolicy",
}  # fmt: skip


def test_all_is_pinned_and_sorted() -> None:
    assert set(sg.__all__) == EXPECTED
    assert list(sg.__all__) == sorted(sg.__all__)
    assert len(sg.__all__) == len(set(sg.__all__))


def test_every_name_resolves_and_is_documented() -> None:
    for name in sg.__all__:
        obj = getattr(sg, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_error_tree() -> None:
    assert issubclass(sg.GraphError, sg.WorkflowError)
    assert issubclass(sg.GraphError, TypeError)
    for err in (
        sg.ConcurrentRunError, sg.NotIdleError, sg.ExecutorFailedError, sg.ConvergenceError,
        sg.RequestError, sg.SerializationError, sg.CheckpointError, sg.RoutingError,
    ):  # fmt: skip
        assert issubclass(err, sg.WorkflowError)
    for err in (sg.CheckpointNotFoundError, sg.CheckpointDecodeError, sg.GraphMismatchError):
        assert issubclass(err, sg.CheckpointError)
    assert issubclass(sg.GraphWarning, Warning)
