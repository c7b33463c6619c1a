"""`stepgraph graph` (Mermaid, DOT or SVG) and `stepgraph serve` (the hosting package)."""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

from ._exit import CliError, ExitCode
from ._stores import parse_store_url
from ._target import load_workflow
from ._workspace import Terminal

__all__ = ["cmd_graph", "cmd_serve"]


def cmd_graph(args: argparse.Namespace, term: Terminal) -> ExitCode:
    """`stepgraph graph path.py:workflow --format mermaid|dot|svg [-o FILE]`."""
    workflow = load_workflow(args.target)
    match args.format:
        case "mermaid":
            text = workflow.to_mermaid()
        case "dot":
            text = workflow.to_dot()
        case _:
            text = workflow.to_svg()
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror}") from exc
        term.note(f"wrote {args.output}")
    else:
        term.out.write(text if text.endswith("\n") else text + "\n")
    return ExitCode.OK


def _named(targets: list[str]) -> dict[str, Any]:
    """`[NAME=]path.py:workflow` targets as workflows by model name (default: their names)."""
    named: dict[str, Any] = {}
    for target in targets:
        name, sep, rest = target.partition("=")
        if not sep or not name or "/" in name or ":" in name:
            name, rest = "", target
        workflow = load_workflow(rest)
        name = name or workflow.name
        if name in named:
            raise CliError(
                f"two workflows are named {name!r}; name them: stepgraph serve "
                f"a={rest} b=...  (a request's model picks one by that name)"
            )
        named[name] = workflow
    return named


def cmd_serve(args: argparse.Namespace, term: Terminal) -> ExitCode:
    """`stepgraph serve [NAME=]path.py:workflow ...`: hand over to `stepgraph.hosting.serve`."""
    api_key: str | None = args.api_key or os.environ.get("STEPGRAPH_API_KEY") or None
    _check_exposure(args.host, args.auth is not None or api_key is not None, args.insecure)
    spec = parse_store_url(args.store)
    if args.mcp != "stdio":
        _check_port(args.host, args.port)
    workflows = _named(list(args.target))
    try:
        hosting = importlib.import_module("stepgraph.hosting")
    except ImportError as exc:
        missing = f" (missing module {exc.name})" if exc.name else ""
        raise CliError(
            f"stepgraph serve needs the hosting extra: pip install 'stepgraph[hosting]'{missing}"
        ) from exc
    serve = hosting.serve
    if args.auth is not None and api_key is not None:
        raise CliError("pass --auth or --api-key (or $STEPGRAPH_API_KEY), not both")
    try:
        auth = hosting.load_auth(args.auth) if args.auth is not None else None
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    serve(
        workflows,
        host=args.host,
        port=args.port,
        store_url=spec.url,
        api_key=api_key,
        auth=auth,
        insecure=args.insecure,
        double_texting=args.double_texting,
        mcp=args.mcp,
    )
    return ExitCode.OK


def _check_exposure(host: str, secured: bool, insecure: bool) -> None:
    """Refuse a non-loopback `--host` without authentication (a usage error, exit 2)."""
    if secured or insecure or _loopback(host):
        return
    raise CliError(
        f"refusing to serve on {host} without authentication: anyone who reaches it could "
        "read and run every conversation; pass --auth module:function or --api-key KEY, "
        "or --insecure to serve it openly anyway"
    )


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to any interface


def _check_port(host: str, port: int) -> None:
    """Refuse a port that is taken, before anything starts (a usage error, exit 2)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another port "
                "with --port (0: any free port) or stop what is using it"
            ) from exc
