"""Exit codes scripts can rely on, and the translation of errors into them.

Every user mistake becomes a `CliError`: one line on stderr, never a
traceback (set `STEPGRAPH_DEBUG=1` or pass `--debug` to see one).
"""

from __future__ import annotations

import enum

import stepgraph as sg

__all__ = ["CliError", "ExitCode", "classify", "one_line"]


class ExitCode(enum.IntEnum):
    """The process exit status of every `stepgraph` command (see docs/cli.md)."""

    OK = 0
    """The command succeeded; a run ended idle, or paused at a breakpoint."""
    INTERNAL = 1
    """An unexpected error: a bug in stepgraph (a traceback is printed)."""
    USAGE = 2
    """Bad arguments or input: missing file, bad `path:attr`, bad JSON, bad answer, bad URL."""
    FAILED = 3
    """The run failed (a handler raised, `max_supersteps` reached, a save failed)."""
    WAITING = 4
    """The run ended with requests waiting for answers."""
    NOT_FOUND = 5
    """No such session or checkpoint."""
    CONFLICT = 6
    """The session cannot do that now: busy, not idle, or saved by a different graph."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C): the run was cancelled at once."""


class CliError(Exception):
    """A mistake the user can fix: printed as one line, exits with `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.code = code


def one_line(text: str) -> str:
    """Collapse a message to a single line."""
    return " ".join(text.split())


def classify(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and one-line message for a stepgraph error, or None for anything else."""
    code: ExitCode
    match exc:
        case CliError():
            code = exc.code
        case sg.CheckpointNotFoundError():
            code = ExitCode.NOT_FOUND
        case (
            sg.GraphMismatchError()
            | sg.CheckpointDecodeError()
            | sg.NotIdleError()
            | sg.ConcurrentRunError()
        ):
            code = ExitCode.CONFLICT
        case sg.RequestError() | sg.RoutingError() | sg.GraphError():
            code = ExitCode.USAGE
        case sg.WorkflowError():
            code = ExitCode.FAILED
        case _:
            return None
    return code, one_line(str(exc)) or type(exc).__name__
