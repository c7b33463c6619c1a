"""`stepgraph checkpoints list|show|tree|prune`: look at a session's checkpoint history.

`list`, `tree` and `show` read the store only; `show` decodes state and
pending requests with the session's workflow when it is known (a target on
the command line, or remembered by `stepgraph run`), else whatever decodes
without it. `prune` needs the workflow (it goes through `Session.prune`).
Checkpoint ids may be abbreviated to any unique prefix (8 characters shown).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import stepgraph as sg
from stepgraph import serde
from stepgraph.stores import checkpoint_status, status_at

from ._exit import CliError, ExitCode
from ._target import load_workflow
from ._values import jsonable, request_json, show
from ._workspace import Terminal, Workspace

__all__ = [
    "cmd_checkpoints",
    "decode_checkpoint",
    "render_tree",
    "resolve_checkpoint",
]

SHORT = 8
"""Characters of a checkpoint id shown in lists and trees."""


def resolve_checkpoint(infos: Sequence[sg.CheckpointInfo], ref: str, session_id: str) -> str:
    """The full id of the checkpoint `ref` names (an id or a unique prefix of one).

    Raises:
        CliError: no checkpoint matches (NOT_FOUND) or several do (USAGE).
    """
    ids = [i.id for i in infos if i.id == ref] or [i.id for i in infos if i.id.startswith(ref)]
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise CliError(f"session {session_id!r} has no checkpoint {ref!r}", ExitCode.NOT_FOUND)
    raise CliError(f"checkpoint {ref!r} is ambiguous in session {session_id!r}: {len(ids)} match")


def _when(info: sg.CheckpointInfo) -> str:
    return info.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _line(info: sg.CheckpointInfo, status: str, head: str) -> str:
    mark = "  ← head" if info.id == head else ""
    return f"{info.id[:SHORT]}  superstep {info.superstep:<3} {status:<11} {_when(info)}{mark}"


def render_tree(
    infos: Sequence[sg.CheckpointInfo], statuses: dict[str, str] | None = None
) -> list[str]:
    """Draw the checkpoint tree (infos newest first); a chain stays in one column.

    A checkpoint with several children opens a branch per child, drawn with
    box-drawing characters, oldest branch first; several roots (a `reset` starts
    a new one) are branches of their own too. The head (the newest) is marked.
    """
    if not infos:
        return []
    statuses = statuses or {}
    head = infos[0].id
    known = {i.id for i in infos}
    children: dict[str | None, list[sg.CheckpointInfo]] = {}
    for info in reversed(infos):  # oldest first, so branches come in save order
        parent = info.parent_id if info.parent_id in known else None  # pruned parent: a root
        children.setdefault(parent, []).append(info)
    lines: list[str] = []
    roots = children.get(None, [])
    if len(roots) == 1:
        stack: list[tuple[sg.CheckpointInfo, str, str]] = [(roots[0], "", "")]
    else:  # several roots (a reset starts a new one): each its own branch, oldest first
        stack = [
            (
                root,
                "└── " if n == len(roots) - 1 else "├── ",
                "    " if n == len(roots) - 1 else "│   ",
            )
            for n, root in reversed(list(enumerate(roots)))
        ]
    while stack:
        info, first, rest = stack.pop()
        lines.append(first + _line(info, statuses.get(info.id, ""), head))
        kids = children.get(info.id, [])
        if len(kids) == 1:
            stack.append((kids[0], rest, rest))
            continue
        for n, kid in reversed(list(enumerate(kids))):
            last = n == len(kids) - 1
            stack.append(
                (kid, rest + ("└── " if last else "├── "), rest + ("    " if last else "│   "))
            )
    return lines


async def _statuses(
    store: sg.CheckpointStore, infos: Sequence[sg.CheckpointInfo]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for info in infos:
        out[info.id] = await status_at(store, await store.load(info.id))
    return out


def _info_json(info: sg.CheckpointInfo, status: str, head: str) -> dict[str, Any]:
    return {
        "id": info.id,
        "parent_id": info.parent_id,
        "session_id": info.session_id,
        "superstep": info.superstep,
        "created_at": info.created_at.isoformat(),
        "status": status,
        "head": info.id == head,
    }


async def decode_checkpoint(
    cp: sg.Checkpoint, workflow: sg.Workflow[Any] | None
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """State (and pending requests) of a checkpoint, decoded with the workflow if known.

    The checkpoint is opened in a throwaway session over a memory store, so
    nothing is written to the real store.
    """
    if workflow is not None:
        try:
            scratch = sg.MemoryCheckpointStore()
            await scratch.save(cp.as_full())
            session = workflow.session(cp.info.session_id, store=scratch)
            await session.load()
            state = {k: jsonable(v) for k, v in session.state.items()}
            return state, [request_json(r) for r in session.pending_requests]
        except sg.WorkflowError:
            pass  # a different graph, or types it cannot read: fall back to what decodes alone
    state: dict[str, Any] = {}
    for key, data in cp.encoded_state.items():
        try:
            state[key] = jsonable(serde.decode(data))
        except sg.CheckpointDecodeError:
            state[key] = f"<{len(data)} bytes: needs the workflow's types>"
    return state, None


def _show(args: argparse.Namespace, ws: Workspace, infos: list[sg.CheckpointInfo]) -> ExitCode:
    term = ws.term
    cid = (
        resolve_checkpoint(infos, args.checkpoint, args.session) if args.checkpoint else infos[0].id
    )
    cp = term.run(ws.store.load(cid))
    target: str | None = args.target or ws.index.lookup(args.session)
    workflow = load_workflow(target) if target is not None else None
    state, pending = term.run(decode_checkpoint(cp, workflow))
    status = checkpoint_status(cp)
    data = _info_json(cp.info, status, infos[0].id)
    data["graph_signature"] = cp.graph_signature
    data["state"] = state
    data["pending_requests"] = pending
    data["parts"] = {name: len(value) for name, value in sorted(cp.parts.items())}
    if args.json:
        term.out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return ExitCode.OK
    rows = [
        ("checkpoint", cp.info.id + ("  ← head" if data["head"] else "")),
        ("session", cp.info.session_id),
        ("parent", cp.info.parent_id or "(root)"),
        ("superstep", str(cp.info.superstep)),
        ("saved", _when(cp.info)),
        ("status", status),
        ("graph", cp.graph_signature[:16]),
    ]
    lines = [f"{k:<11}{v}" for k, v in rows]
    lines.append(f"state      {len(state)} key(s)")
    lines += [f"  {k} = {show(v, 200)}" for k, v in state.items()]
    snaps = cp.snapshot_ids
    if snaps:
        lines.append(f"snapshots  {', '.join(snaps)}")
    if pending is None:
        some = "some" if cp.has_pending_requests else "none"
        lines.append(f"requests   {some} pending (pass the workflow to decode them)")
    else:
        lines.append(f"requests   {len(pending)} pending")
        for r in pending:
            rt = r["response_type"]
            lines.append(f"  {r['id']} from {r['executor_id']} expects {rt}: {show(r['payload'])}")
    sizes = {n: len(v) for n, v in cp.parts.items()}
    lines.append(f"parts      {len(sizes)}, {sum(sizes.values())} bytes")
    term.out.write("\n".join(lines) + "\n")
    return ExitCode.OK


def cmd_checkpoints(args: argparse.Namespace, term: Terminal) -> ExitCode:
    """`stepgraph checkpoints list|show|tree|prune --session ID`."""
    with Workspace(term, args.store, existing=args.session) as ws:
        infos = term.run(ws.store.list(args.session))
        if args.action == "show":
            return _show(args, ws, infos)
        if args.action == "prune":
            session = ws.session(ws.workflow(args.session, args.target), args.session)
            deleted = term.run(session.prune(sg.Retention(keep_last=args.keep_last)))
            term.out.write(
                f"deleted {len(deleted)} of {len(infos)} checkpoints of session {args.session} "
                f"(kept the newest {args.keep_last} of each branch, the head and any with "
                "pending requests)\n"
            )
            return ExitCode.OK
        statuses = term.run(_statuses(ws.store, infos))
        if args.action == "tree":
            term.out.write("\n".join(render_tree(infos, statuses)) + "\n")
        elif args.json:
            rows = [_info_json(i, statuses[i.id], infos[0].id) for i in infos]
            term.out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        else:
            term.out.write(f"{'ID':<{SHORT}}  {'PARENT':<{SHORT}}  STEP  {'STATUS':<11} SAVED\n")
            for i in infos:
                parent = (i.parent_id or "-")[:SHORT]
                mark = "  ← head" if i is infos[0] else ""
                term.out.write(
                    f"{i.id[:SHORT]}  {parent:<{SHORT}}  {i.superstep:>4}  "
                    f"{statuses[i.id]:<11} {_when(i)}{mark}\n"
                )
        return ExitCode.OK
