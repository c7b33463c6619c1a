"""`stepgraph run`, `respond`, `resume` and `reset`: drive a session and show it live.

A run streams its events to a view; when it ends waiting for answers and
stdin is interactive (or `--interactive`), each pending request is asked at
a prompt and answered with `session.respond`, and the conversation goes on.
Otherwise the command exits with `WAITING` and prints how to answer later.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import stepgraph as sg

from ._exit import CliError, ExitCode, one_line
from ._stores import parse_store_url
from ._target import load_workflow
from ._values import show, type_hint
from ._view import View, make_view
from ._workspace import Terminal, Workspace

__all__ = ["cmd_reset", "cmd_respond", "cmd_resume", "cmd_run", "parse_answers", "parse_json"]

_EXIT_BY_STATUS = {
    sg.RunStatus.IDLE: ExitCode.OK,
    sg.RunStatus.IDLE_WITH_PENDING_REQUESTS: ExitCode.WAITING,
    sg.RunStatus.CANCELLED: ExitCode.INTERRUPTED,
    sg.RunStatus.PAUSED: ExitCode.OK,  # stopped where asked to (--interrupt-before/after)
}


def parse_json(text: str, what: str) -> Any:
    """Parse JSON given on the command line (`@file` reads a file).

    Raises:
        CliError: not valid JSON, or the file cannot be read.
    """
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise CliError(f"cannot read {what} from {text[1:]}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(
            f"{what} is not valid JSON ({exc}); write a string as '\"text\"' or use --text"
            if what == "--input"
            else f"{what} is not valid JSON ({exc}); write a string as '\"text\"'"
        ) from exc


def parse_answers(items: list[str], pending: tuple[sg.Request, ...]) -> dict[str, Any]:
    """`["ID=JSON", ...]` -> `{request_id: answer}`; an id may be a unique prefix.

    Raises:
        CliError: a malformed item, bad JSON, or an id no pending request has.
    """
    answers: dict[str, Any] = {}
    for item in items:
        rid, sep, raw = item.partition("=")
        if not sep or not rid:
            raise CliError(f"--answer {item!r}: expected REQUEST_ID=JSON")
        matches = [r.id for r in pending if r.id == rid] or [
            r.id for r in pending if r.id.startswith(rid)
        ]
        if len(matches) != 1:
            ids = ", ".join(r.id for r in pending) or "none"
            why = "matches several" if matches else "matches no"
            raise CliError(f"--answer {rid!r} {why} pending request (pending: {ids})")
        answers[matches[0]] = parse_json(raw, f"--answer {rid}")
    return answers


async def _stream(run: sg.Run, view: View) -> sg.RunResult:
    error: Exception | None = None
    result: sg.RunResult | None = None
    try:
        async with asyncio.TaskGroup() as tg:
            ticker = tg.create_task(view.animate())
            try:
                async for event in run:
                    view.event(event)
                result = await run
            except asyncio.CancelledError:
                await run.aclose()  # wait until the run stopped and saved its cancellation
                raise
            except Exception as exc:  # re-raised below, outside the task group
                error = exc
            finally:
                ticker.cancel()
    finally:
        view.finish()
    if error is not None:
        raise error
    assert result is not None
    view.result(result)
    return result


def _ask(term: Terminal, request: sg.Request) -> str | None:
    """Prompt for one answer on stderr; the line read, or None at end of input."""
    term.note(f"? request {request.id} from {request.executor_id}: {show(request.payload)}")
    term.err.write(
        f"  answer with {type_hint(request.response_type)} as JSON or a bare string "
        "(empty: leave pending)\nanswer> "
    )
    term.err.flush()
    line = term.inp.readline()
    if line and not term.inp.isatty():
        term.err.write(line if line.endswith("\n") else line + "\n")  # a transcript shows it
    return None if line == "" else line.strip()


def _answer_at_prompt(
    term: Terminal, session: sg.Session[Any], skipped: set[str], steer: dict[str, Any]
) -> sg.Run | None:
    for request in session.pending_requests:
        if request.id in skipped:
            continue
        while True:
            line = _ask(term, request)
            if line is None:
                term.note("")
                return None
            if not line:
                skipped.add(request.id)
                break
            try:
                value = json.loads(line)
            except ValueError:
                value = line  # a bare string
            try:
                return session.respond({request.id: value}, **steer)
            except sg.RequestError as exc:
                term.note(f"error: {one_line(str(exc))}")
    return None


def _hint_waiting(ws: Workspace, session: sg.Session[Any]) -> None:
    pending = session.pending_requests
    term = ws.term
    term.note(f"session {session.id} is waiting for {len(pending)} answer(s):")
    for r in pending:
        term.note(f"  {r.id} from {r.executor_id} expects {type_hint(r.response_type)}")
    if ws.spec.kind == "memory":
        term.note("the memory: store keeps nothing after exit; use --interactive to answer now")
        return
    example = pending[0].id if pending else "REQUEST_ID"
    term.note(
        f"answer with: stepgraph respond{ws.target_arg(session.workflow)} --session "
        f"{session.id}{ws.store_flag()} "
        f"--answer {example}='<JSON>'"
    )


def _hint_paused(ws: Workspace, session: sg.Session[Any]) -> None:
    term = ws.term
    term.note(f"session {session.id} paused at a breakpoint after superstep {session.superstep}")
    if ws.spec.kind == "memory":
        term.note("the memory: store keeps nothing after exit: use a durable --store to resume")
        return
    flag = ws.store_flag()
    term.note(
        f"look with: stepgraph state show --session {session.id}{flag}; continue with: "
        f"stepgraph resume --session {session.id}{flag}"
    )


def steering(args: argparse.Namespace) -> dict[str, Any]:
    """The breakpoint options of `run`, `respond` and `resume` as keyword arguments."""
    return {"interrupt_before": args.interrupt_before, "interrupt_after": args.interrupt_after}


def _start(start: Callable[[], sg.Run]) -> sg.Run:
    """Start a run; a breakpoint naming no executor is a usage error."""
    try:
        return start()
    except ValueError as exc:
        raise CliError(one_line(str(exc)).replace("interrupt_", "--interrupt-")) from exc


def _converse(
    ws: Workspace,
    session: sg.Session[Any],
    first: sg.Run,
    args: argparse.Namespace,
    what: str,
) -> ExitCode:
    term = ws.term
    view = make_view(term.out, as_json=bool(args.json))
    view.header(f"{what} {session.workflow.name} · session {session.id} · {ws.spec.url}")
    interactive: bool = args.interactive if args.interactive is not None else term.inp.isatty()
    skipped: set[str] = set()
    run: sg.Run | None = first
    result: sg.RunResult | None = None
    try:
        while run is not None:
            result = term.run(_stream(run, view))
            run = None
            if result.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS and interactive:
                run = _answer_at_prompt(term, session, skipped, steering(args))
    except KeyboardInterrupt:
        if run is None:  # at the prompt: nothing was running
            term.note("")
            _hint_waiting(ws, session)
        else:
            term.note(
                "interrupted: the run was cancelled (its queued messages were dropped); to "
                "continue it, resume from the checkpoint before the cancellation (see "
                f"stepgraph checkpoints tree --session {session.id}{ws.store_flag()})"
            )
        raise
    except sg.ConcurrentRunError as exc:  # another process runs it (or crashed holding its lease)
        text = one_line(str(exc)).replace("pass wait=seconds to acquire", "pass --wait SECONDS")
        raise CliError(text, ExitCode.CONFLICT) from exc
    except (sg.ExecutorFailedError, sg.ConvergenceError) as exc:
        if args.debug:
            traceback.print_exception(exc, file=term.err)
        term.note(f"error: {one_line(str(exc))}")
        if ws.spec.kind == "memory":
            term.note("the memory: store keeps nothing after exit: use a durable --store to resume")
        else:
            term.note(
                f"continue with: stepgraph resume --session {session.id}{ws.store_flag()}"
                f"  (or discard: stepgraph reset --session {session.id}{ws.store_flag()})"
            )
        return ExitCode.FAILED
    assert result is not None
    if session.pending_requests and result.status is sg.RunStatus.IDLE_WITH_PENDING_REQUESTS:
        _hint_waiting(ws, session)
    if result.status is sg.RunStatus.PAUSED:
        _hint_paused(ws, session)
    return _EXIT_BY_STATUS.get(result.status, ExitCode.FAILED)


def _not_idle(session: sg.Session[Any], ws: Workspace) -> CliError:
    flag = ws.store_flag()
    return CliError(
        f"session {session.id!r} holds undelivered messages of a run that did not finish "
        f"({session.status.name}); continue it with `stepgraph resume --session {session.id}"
        f"{flag}` or discard it with `stepgraph reset --session {session.id}{flag}`",
        ExitCode.CONFLICT,
    )


def cmd_run(args: argparse.Namespace, term: Terminal) -> ExitCode:
    """`stepgraph run path.py:workflow --input JSON`."""
    value: Any = args.text if args.text is not None else parse_json(args.input, "--input")
    parse_store_url(args.store)  # a bad --store fails before the workflow file is imported
    workflow = load_workflow(args.target)  # a bad target fails before a store is created
    with Workspace(term, args.store) as ws:
        session_id: str = args.session or os.urandom(4).hex()
        session = ws.session(ws.named(workflow, args.target), session_id, wait=args.wait)
        try:
            start = _start(lambda: session.run(value, **steering(args)))
        except sg.NotIdleError:
            raise _not_idle(session, ws) from None
        return _converse(ws, session, start, args, "run")


def cmd_respond(args: argparse.Namespace, term: Terminal) -> ExitCode:
    """`stepgraph respond --session ID --answer ID=JSON ...`."""
    with Workspace(term, args.store, existing=args.session) as ws:
        workflow = ws.workflow(args.session, args.target)
        session = ws.session(workflow, args.session, wait=args.wait)
        if not session.pending_requests:
            raise CliError(
                f"session {args.session!r} has no pending requests (status {session.status.name})"
            )
        answers: Mapping[str, Any] = parse_answers(args.answer, session.pending_requests)
        try:
            start = _start(lambda: session.respond(answers, **steering(args)))
        except sg.NotIdleError:
            raise _not_idle(session, ws) from None
        return _converse(ws, session, start, args, "respond")


def cmd_resume(args: argparse.Namespace, term: Terminal) -> ExitCode:
    """`stepgraph resume --session ID [--checkpoint ID]`."""
    from stepgraph.stores import checkpoint_status

    from ._checkpoints import resolve_checkpoint

    with Workspace(term, args.store, existing=args.session) as ws:
        workflow = ws.workflow(args.session, args.target)
        session = ws.session(workflow, args.session, wait=args.wait)
        checkpoint: str | None = None
        if args.checkpoint is not None:
            infos = term.run(ws.store.list(args.session))
            checkpoint = resolve_checkpoint(infos, args.checkpoint, args.session)
            status = checkpoint_status(term.run(ws.store.load(checkpoint)))
            if status not in ("mid-run", "failed", "paused"):
                # Nothing to run there: restore() saves it as the new head (resume() alone
                # would save nothing, and the next command would reopen the old head).
                term.run(session.restore(checkpoint))
                checkpoint = None
        start = _start(lambda: session.resume(checkpoint, **steering(args)))
        return _converse(ws, session, start, args, "resume")


def cmd_reset(args: argparse.Namespace, term: Terminal) -> ExitCode:
    """`stepgraph reset --session ID`: a clean initial state, saved as a new root."""
    with Workspace(term, args.store, existing=args.session) as ws:
        session = ws.workflow(args.session, args.target).session(args.session, store=ws.store)
        term.run(session.reset())
        term.note(f"session {args.session} reset; new root checkpoint {session.head}")
        return ExitCode.OK
