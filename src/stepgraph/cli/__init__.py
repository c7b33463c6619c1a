"""The `stepgraph` command: run, respond, resume, inspect checkpoints and state, draw, serve.

A thin adapter over the public API (see docs/cli.md). Module map:

* `_parser`: every command and option
* `_target`: loading `path.py:workflow`
* `_stores`: store URLs and the index of which workflow each session runs
* `_workspace`: the event loop, streams and store a command works with
* `_runs`: `run`, `respond`, `resume`, `reset`, answering requests at a prompt
* `_view`, `_values`: live progress, plain lines, JSON lines; values as JSON
* `_checkpoints`: `checkpoints list|show|tree|prune`
* `_state`: `state show|set`
* `_graph`: `graph` and `serve`
* `_exit`: exit codes, and errors translated into one line each
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence

from ._exit import CliError, ExitCode, classify
from ._workspace import Terminal

__all__ = ["CliError", "ExitCode", "main"]


def _dispatch(command: str) -> Callable[..., ExitCode]:
    from . import _checkpoints, _graph, _runs, _state

    table: dict[str, Callable[..., ExitCode]] = {
        "run": _runs.cmd_run,
        "respond": _runs.cmd_respond,
        "resume": _runs.cmd_resume,
        "reset": _runs.cmd_reset,
        "checkpoints": _checkpoints.cmd_checkpoints,
        "state": _state.cmd_state,
        "graph": _graph.cmd_graph,
        "serve": _graph.cmd_serve,
    }
    return table[command]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `stepgraph` command line; returns the exit code (see `ExitCode`)."""
    from ._parser import parse

    args = parse(argv)
    debug = bool(args.debug) or os.environ.get("STEPGRAPH_DEBUG", "") not in ("", "0")
    args.debug = debug
    term = Terminal(out=sys.stdout, err=sys.stderr, inp=sys.stdin)
    try:
        with term.runner:
            return int(_dispatch(args.command)(args, term))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:  # `stepgraph ... | head -1`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return ExitCode.OK
    except Exception as exc:
        known = classify(exc)
        if known is None:
            traceback.print_exc()
            term.note("error: this is a bug in stepgraph; please report it with the traceback")
            return ExitCode.INTERNAL
        code, message = known
        if debug:
            traceback.print_exc()
        term.note(f"error: {message}")
        return code
