"""`stepgraph state show|set`: read a session's state, or write keys as a new checkpoint.

`show` reads the store only (the head, or `--checkpoint`), decoding with the
session's workflow when it is known. `set` goes through
`Session.update_state`: the keys are written on top of the head (or of
`--checkpoint`, a fork) as a new checkpoint that becomes the head, so a
paused or failed run resumed afterwards sees them. Values are JSON, stored
as the JSON gives them (str, int, float, bool, None, list, dict).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import stepgraph as sg
from stepgraph.stores import checkpoint_status

from ._checkpoints import SHORT, decode_checkpoint, resolve_checkpoint
from ._exit import CliError, ExitCode
from ._runs import parse_json
from ._target import load_workflow
from ._values import show
from ._workspace import Terminal, Workspace

__all__ = ["cmd_state", "parse_assignments"]


def parse_assignments(
    items: list[str], deletes: list[str] | None
) -> tuple[str | None, dict[str, Any]]:
    """`[TARGET] KEY=JSON ...` and `--delete KEY`s -> (target or None, values to write).

    The first item is the workflow target when it names one (`path.py:attr`, `path.py`).

    Raises:
        CliError: a malformed item, bad JSON, a key given twice, or nothing to write.
    """
    target: str | None = None
    first = items[0] if items else ""
    if "=" not in first and (":" in first or first.endswith(".py")):
        target, items = items[0], items[1:]
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"{item!r}: expected KEY=JSON (a string as KEY='\"text\"')")
        if key in values:
            raise CliError(f"key {key!r} is given twice")
        values[key] = parse_json(raw, f"the value of {key}")
    for key in deletes or ():
        if key in values:
            raise CliError(f"key {key!r} is both set and deleted")
        values[key] = sg.DELETE
    if not values:
        raise CliError("nothing to write: give KEY=JSON arguments or --delete KEY")
    return target, values


def _show(args: argparse.Namespace, ws: Workspace) -> ExitCode:
    term = ws.term
    infos = term.run(ws.store.list(args.session))
    head = infos[0].id
    cid = resolve_checkpoint(infos, args.checkpoint, args.session) if args.checkpoint else head
    cp = term.run(ws.store.load(cid))
    target: str | None = args.target or ws.index.lookup(args.session)
    workflow = load_workflow(target) if target is not None else None
    state, _ = term.run(decode_checkpoint(cp, workflow))
    if args.json:
        term.out.write(json.dumps(state, ensure_ascii=False, indent=2) + "\n")
        return ExitCode.OK
    where = "head, " if cid == head else ""
    lines = [
        f"session {args.session} at checkpoint {cid[:SHORT]} ({where}superstep "
        f"{cp.info.superstep}, {checkpoint_status(cp)}): {len(state)} key(s)"
    ]
    lines += [f"  {k} = {show(v, 200)}" for k, v in state.items()]
    term.out.write("\n".join(lines) + "\n")
    return ExitCode.OK


def _set(args: argparse.Namespace, ws: Workspace) -> ExitCode:
    term = ws.term
    target, values = parse_assignments(args.items, args.delete)
    session = ws.session(ws.workflow(args.session, target), args.session)
    checkpoint: str | None = None
    if args.checkpoint is not None:
        infos = term.run(ws.store.list(args.session))
        checkpoint = resolve_checkpoint(infos, args.checkpoint, args.session)
    head = session.head
    parent = checkpoint or head
    new = term.run(session.update_state(values, checkpoint=checkpoint))
    done: list[str] = []
    if written := [k for k, v in values.items() if v is not sg.DELETE]:
        done.append("set " + ", ".join(written))
    if deleted := [k for k, v in values.items() if v is sg.DELETE]:
        done.append("deleted " + ", ".join(deleted))
    fork = ", a new branch" if parent != head else ""
    status = session.status.value.replace("_", " ")
    term.out.write(
        f"session {args.session}: {'; '.join(done)} in checkpoint {new[:SHORT]} (parent "
        f"{(parent or '-')[:SHORT]}{fork}), the head now; status {status}\n"
    )
    return ExitCode.OK


def cmd_state(args: argparse.Namespace, term: Terminal) -> ExitCode:
    """`stepgraph state show|set --session ID`."""
    with Workspace(term, args.store, existing=args.session) as ws:
        if args.action == "show":
            return _show(args, ws)
        return _set(args, ws)
