"""The public face of stepgraph is pinned: adding or removing a name is deliberate."""

import stepgraph as sg
import stepgraph.agents
import stepgraph.loading
import stepgraph.stores
import stepgraph.testing

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
    "StatefulExecutor", "ExecutorFailure", "load_workflow",
    "ReplayDivergenceError", "Step", "context", "request", "step", "workflow",
    "DELETE", "StateUpdated",
}  # fmt: skip

STORES = {
    "Checkpoint", "CheckpointInfo", "CheckpointStore", "FileCheckpointStore", "Lease",
    "LeaseLostError", "LeaseStore", "MemoryCheckpointStore", "RecordStore",
    "SqliteCheckpointStore", "StoreURL", "lease_store", "open_store", "record_store",
    "FAILED_RECORD", "failure_at", "SessionLister", "session_lister", "ChunkStore", "chunk_store",
    "checkpoint_status", "status_at",
}  # fmt: skip

LOADING = {"import_file"}


def test_all_is_pinned_and_sorted() -> None:
    assert set(sg.__all__) == EXPECTED
    assert list(sg.__all__) == sorted(sg.__all__)
    assert len(sg.__all__) == len(set(sg.__all__))


def test_every_name_resolves_and_is_documented() -> None:
    for name in sg.__all__:
        obj = getattr(sg, name)
        assert obj.__doc__, f"{name} has no docstring"


def test_the_backend_and_loader_faces_are_pinned() -> None:
    for module, expected in ((stepgraph.stores, STORES), (stepgraph.loading, LOADING)):
        assert set(module.__all__) == expected
        assert list(module.__all__) == sorted(module.__all__)
        for name in module.__all__:
            assert getattr(module, name).__doc__, f"{module.__name__}.{name} has no docstring"
    for name in ("CheckpointStore", "LeaseLostError", "SqliteCheckpointStore"):
        assert getattr(stepgraph.stores, name) is getattr(sg, name)


def test_agents_and_testing_names_added_with_the_plumbing() -> None:
    assert "as_agent" in stepgraph.agents.__all__
    assert stepgraph.agents.as_agent.__doc__
    assert "SleepingClock" in stepgraph.testing.__all__
    assert stepgraph.testing.SleepingClock.__doc__


def test_error_tree() -> None:
    assert issubclass(sg.GraphError, sg.WorkflowError)
    assert issubclass(sg.GraphError, TypeError)
    for err in (
        sg.ConcurrentRunError, sg.NotIdleError, sg.ExecutorFailedError, sg.ConvergenceError,
        sg.RequestError, sg.SerializationError, sg.CheckpointError, sg.RoutingError,
        sg.ReplayDivergenceError,
    ):  # fmt: skip
        assert issubclass(err, sg.WorkflowError)
    for err in (sg.CheckpointNotFoundError, sg.CheckpointDecodeError, sg.GraphMismatchError):
        assert issubclass(err, sg.CheckpointError)
    assert issubclass(sg.GraphWarning, Warning)
