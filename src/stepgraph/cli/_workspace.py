"""What a command works in: one event loop, the streams, the store and its session index."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

import stepgraph as sg
from stepgraph.stores import StoreURL

from ._exit import CliError
from ._stores import (
    SessionIndex,
    exists,
    missing_session,
    open_store,
    parse_store_url,
    require_session,
)
from ._target import load_workflow, target_key

__all__ = ["Terminal", "Workspace"]

_T = TypeVar("_T")


@dataclass
class Terminal:
    """The streams and the event loop of one command (one `asyncio.Runner` for all its runs).

    Prompts happen between `run()` calls, outside the loop, so Ctrl-C at a
    prompt is a plain `KeyboardInterrupt` and Ctrl-C during a run cancels it.
    """

    out: TextIO
    err: TextIO
    inp: TextIO
    runner: asyncio.Runner = field(default_factory=asyncio.Runner)

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run a coroutine on the command's event loop."""
        return self.runner.run(coro)

    def note(self, text: str) -> None:
        """A message for the person at the terminal (stderr)."""
        self.err.write(text + "\n")
        self.err.flush()


class Workspace:
    """A store opened for one command, with the index of session workflows beside it.

    Args:
        term: the command's terminal.
        url: the `--store` URL (None: `STEPGRAPH_STORE` or the default).
        session_id: for commands on an existing session: fail with NOT_FOUND
            before creating anything when the store does not exist.
    """

    def __init__(self, term: Terminal, url: str | None, *, existing: str | None = None) -> None:
        self.term = term
        self.spec: StoreURL = parse_store_url(url)
        self.explicit = url is not None
        if existing is not None and not exists(self.spec):
            raise missing_session(self.spec, existing)
        self.store: sg.CheckpointStore = open_store(self.spec)
        self.index = SessionIndex(self.spec)
        self._named: dict[int, str] = {}  # id(workflow) -> the target it was loaded from
        if existing is not None:
            term.run(require_session(self.store, self.spec, existing))

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.term.run(self.store.aclose())

    def named(self, workflow: sg.Workflow[Any], target: str) -> sg.Workflow[Any]:
        """Note that `workflow` was loaded from `target`, for `session()` to remember."""
        self._named[id(workflow)] = target
        return workflow

    def target_arg(self, workflow: sg.Workflow[Any]) -> str:
        """`" path.py:workflow"` for hints when this store keeps no index of session workflows."""
        if self.index.path is not None:
            return ""
        target = self._named.get(id(workflow), "path.py:workflow")
        return f" {shlex.quote(target)}"

    def store_flag(self) -> str:
        """`" --store URL"` when the store is not the default one, for hints."""
        return f" --store {shlex.quote(self.spec.url)}" if self.explicit else ""

    def workflow(self, session_id: str, target: str | None) -> sg.Workflow[Any]:
        """The workflow of a session: `target` when given, else the one the index remembers.

        A target given here is remembered once `session()` has opened the
        session with it (a workflow whose graph does not fit is not).

        Raises:
            CliError: no target given and none remembered for the session.
        """
        if target is None:
            target = self.index.lookup(session_id)
            if target is None:
                raise CliError(
                    f"which workflow does session {session_id!r} run? pass it as "
                    "path.py:workflow (only `stepgraph run` on a file or sqlite store "
                    "remembers it)"
                )
        return self.named(load_workflow(target), target)

    def session(
        self, workflow: sg.Workflow[Any], session_id: str, *, wait: float | None = None
    ) -> sg.Session[Any]:
        """Open the session, read its head from the store, remember its workflow's file.

        Args:
            workflow: the session's workflow (from `workflow()`, or passed to `named()`).
            session_id: the session.
            wait: seconds a run may wait for another process's run of the
                session (its lease) to end; None fails at once.
        """
        if wait is None:
            session = workflow.session(session_id, store=self.store)
        else:
            lease = sg.LeasePolicy(wait=wait)
            session = workflow.session(session_id, store=self.store, lease=lease)
        self.term.run(session.load())
        if (target := self._named.get(id(workflow))) is not None:
            self.index.remember(session_id, target_key(target))
        return session
