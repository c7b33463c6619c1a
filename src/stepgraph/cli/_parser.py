"""The `stepgraph` argument parser: every command, option and help text."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import stepgraph as sg

from ._exit import ExitCode

__all__ = ["build_parser", "parse"]

_EPILOG = """\
exit codes: 0 ok/idle, 1 internal error, 2 usage error, 3 run failed,
4 waiting for answers, 5 no such session or checkpoint, 6 conflict
(session busy, not idle, or saved by another graph), 130 interrupted.
store URLs: sqlite:///abs/path.db, sqlite:///./relative.db, file:///abs/dir,
memory:, postgresql://...; default $STEPGRAPH_STORE or sqlite:///./.stepgraph/runs.db
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit code 2 (argparse prints the whole usage)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {self.prog}: {message} (see {self.prog} --help)\n")
        raise SystemExit(ExitCode.USAGE)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _port(text: str) -> int:
    value = 0 if text == "0" else _positive(text)  # 0: any free port
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}")
    return value


def _store(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="URL", help="checkpoint store (see below)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    return value


def _streaming(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument(
        "--interrupt-before",
        metavar="EXECUTOR",
        action="append",
        help="pause before a superstep in which EXECUTOR would run (repeat for several)",
    )
    p.add_argument(
        "--interrupt-after",
        metavar="EXECUTOR",
        action="append",
        help="pause after a superstep in which EXECUTOR ran (repeat for several)",
    )
    p.add_argument(
        "--wait",
        metavar="SECONDS",
        type=_seconds,
        help="wait this long for another process's run of the session (or the lease of "
        "one that crashed) to end, instead of failing at once",
    )
    p.add_argument(
        "--interactive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prompt for answers to pending requests (default: when stdin is a terminal)",
    )
    _store(p)


def _optional_target(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target",
        nargs="?",
        metavar="path.py:workflow",
        help="the session's workflow (default: the one `stepgraph run` remembered)",
    )


def _debug(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`--debug` after the command too (SUPPRESS: a command never hides the root's)."""
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of every `stepgraph` command."""
    raw = argparse.RawDescriptionHelpFormatter
    root = _Parser(
        prog="stepgraph",
        description="Run, inspect, draw and serve stepgraph workflows.",
        formatter_class=raw,
        epilog=_EPILOG,
    )
    root.add_argument("--version", action="version", version=f"stepgraph {sg.__version__}")
    root.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return _debug(
            sub.add_parser(name, help=text, description=text, formatter_class=raw, epilog=_EPILOG)
        )

    p = command("run", "Run a workflow with an input, streaming its events.")
    p.add_argument("target", metavar="path.py:workflow", help="file and attribute of the workflow")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--input", metavar="JSON", help="the input as JSON (@file reads a file)")
    given.add_argument("--text", metavar="STRING", help="the input as a plain string")
    p.add_argument("--session", metavar="ID", help="session id (default: a new random one)")
    _streaming(p)

    p = command("respond", "Answer pending requests of a session and continue it.")
    _optional_target(p)
    p.add_argument("--session", metavar="ID", required=True)
    p.add_argument(
        "--answer",
        metavar="ID=JSON",
        action="append",
        required=True,
        help="an answer; the id may be a unique prefix (repeat for several)",
    )
    _streaming(p)

    p = command("resume", "Continue a session: after a failure or crash, or from a checkpoint.")
    _optional_target(p)
    p.add_argument("--session", metavar="ID", required=True)
    p.add_argument("--checkpoint", metavar="ID", help="branch from this checkpoint (time travel)")
    _streaming(p)

    p = command("reset", "Discard a session's state (saved as a new root checkpoint).")
    _optional_target(p)
    p.add_argument("--session", metavar="ID", required=True)
    _store(p)

    p = command("checkpoints", "List, show, draw or prune a session's checkpoints.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("list", "Every checkpoint of the session, newest first."),
        ("show", "One checkpoint (default: the head): state, requests, parts."),
        ("tree", "The checkpoint tree with its branches; the head is marked."),
        ("prune", "Delete old checkpoints, keeping the newest N of each branch."),
    ):
        a = _debug(
            actions.add_parser(
                action, help=text, description=text, formatter_class=raw, epilog=_EPILOG
            )
        )
        _optional_target(a)
        a.add_argument("--session", metavar="ID", required=True)
        _store(a)
        if action in ("list", "show"):
            a.add_argument("--json", action="store_true", help="print JSON")
        if action == "show":
            a.add_argument("--checkpoint", metavar="ID", help="id or unique prefix")
        if action == "prune":
            a.add_argument("--keep-last", metavar="N", type=_positive, required=True)

    p = command("state", "Show a session's state, or write keys as a new checkpoint.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = _debug(
        actions.add_parser(
            "show",
            help="The state at the head (or a checkpoint).",
            description="The state at the head (or a checkpoint).",
            formatter_class=raw,
            epilog=_EPILOG,
        )
    )
    _optional_target(a)
    a.add_argument("--session", metavar="ID", required=True)
    a.add_argument("--checkpoint", metavar="ID", help="id or unique prefix (default: the head)")
    a.add_argument("--json", action="store_true", help="print the state as one JSON object")
    _store(a)
    text = (
        "Write state keys (KEY=JSON) as a new head checkpoint; on an older checkpoint it "
        "starts a branch."
    )
    a = _debug(
        actions.add_parser("set", help=text, description=text, formatter_class=raw, epilog=_EPILOG)
    )
    a.add_argument(
        "items",
        nargs="*",
        metavar="[path.py:workflow] KEY=JSON",
        help="the session's workflow (default: the one `stepgraph run` remembered), then "
        "keys with JSON values (@file reads a file)",
    )
    a.add_argument("--session", metavar="ID", required=True)
    a.add_argument("--delete", metavar="KEY", action="append", help="delete KEY (repeatable)")
    a.add_argument("--checkpoint", metavar="ID", help="write on top of this checkpoint (a fork)")
    _store(a)

    p = command("graph", "Draw a workflow's graph as Mermaid, Graphviz DOT or SVG.")
    p.add_argument("target", metavar="path.py:workflow")
    p.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")

    p = command("serve", "Serve workflows over the OpenAI Responses API with the dev UI.")
    p.add_argument(
        "target",
        metavar="[NAME=]path.py:workflow",
        nargs="+",
        help="one or more workflows; a request's model picks one (default name: the "
        "workflow's name)",
    )
    p.add_argument(
        "--double-texting",
        choices=("reject", "enqueue", "interrupt"),
        default="reject",
        help="a request for a conversation that is running: 409 (reject), wait for it "
        "(enqueue), or cancel it (interrupt); default reject",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (0: any free port)")
    p.add_argument("--api-key", metavar="KEY", help="bearer key required of clients")
    p.add_argument(
        "--mcp",
        nargs="?",
        const="http",
        choices=("http", "stdio"),
        help="also serve the workflows as MCP tools: at /mcp beside the API (http, the "
        "default), or over stdin/stdout alone (--mcp=stdio; no HTTP)",
    )
    p.add_argument(
        "--auth",
        metavar="MODULE:FUNCTION",
        help="authentication hook: headers -> stepgraph.hosting.Principal or None (401)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without --auth or --api-key",
    )
    _store(p)
    return root


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse a command line; `state set` takes its KEY=JSON items before or after options.

    (argparse gives a positional list only the items before the first option.)
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    items: list[str] | None = getattr(args, "items", None)
    if extra and items is not None and not any(e.startswith("-") for e in extra):
        items.extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args
