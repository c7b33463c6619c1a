"""The host: sessions, the busy guard, driving runs, run records and graceful shutdown.

One `Host` per app. It opens one stepgraph session per conversation (kept in
a bounded cache), marks a session busy synchronously before any await (a
second request for it gets 409 at once), moves the session to the checkpoint
a request continues from, drives the run and records what the dev UI shows.
Everything goes through stepgraph's public API.

With a log shared by several replicas (PostgreSQL), the host is `shared`: a
request also takes the session's request lock across processes (`_replicas`;
409 when another replica serves it), and a cached session is checked against
the store's newest checkpoint under that lock and reopened when another
replica moved it, so no request continues from stale state, and the run's
`_refresh_head` finds nothing to adopt.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import stepgraph as sg

from ._errors import ApiError
from ._events import Hub, event_json
from ._guard import DoubleTexting, SessionGuard, closing_error
from ._jobs import Jobs
from ._log import HostingLog
from ._models import pick_model
from ._replicas import RequestLocks, busy
from ._wire import new_id

__all__ = ["Host", "RunRecord"]

logger = logging.getLogger("stepgraph.hosting")

_KEEP_RUNS = 500
_KEEP_EVENTS = 500


@dataclass(slots=True)
class RunRecord:
    """One run the server drove: what the dev UI lists, and how it ended.

    `owner` is the identity that started it. `status`, `outputs`, `requests`,
    `error` and `checkpoint_id` are set when the run ends; `checkpoint_id` is where
    a continuation of this run's response starts (for a failed run, the checkpoint
    the run started from).
    """

    id: str
    session_id: str
    kind: str
    origin: str
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    status: str = "running"
    response_id: str | None = None
    error: str | None = None
    outputs: list[Any] = field(default_factory=list[Any])
    requests: list[sg.Request] = field(default_factory=list[sg.Request])
    start_checkpoint: str | None = None
    checkpoint_id: str | None = None
    events: list[sg.Event] = field(default_factory=list[sg.Event])
    owner: str | None = None

    def summary(self) -> dict[str, Any]:
        """The record as JSON, without its events."""
        return {
            "id": self.id,
            "session_id": self.session_id,
            "kind": self.kind,
            "origin": self.origin,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "status": self.status,
            "response_id": self.response_id,
            "error": self.error,
            "checkpoint_id": self.checkpoint_id,
        }


def _record(rec: RunRecord) -> dict[str, Any]:
    return {"type": "run_record", "run": rec.summary()}


def _failure(exc: BaseException, events: list[sg.Event]) -> str:
    for ev in reversed(events):
        if isinstance(ev, sg.ExecutorFailed):
            err = ev.error
            return f"executor {ev.executor_id!r} raised {type(err).__name__}: {err}"
    if isinstance(exc, sg.ConvergenceError | sg.ExecutorFailedError):
        return str(exc).split(" (superstep", 1)[0]
    if isinstance(exc, sg.CheckpointError):
        return "the run could not save a checkpoint; see the server log"
    return "the workflow failed with an internal error; see the server log"


class Host:
    """Sessions and runs of the workflows one app serves (see the module docstring).

    Args:
        models: the workflows served, by model name (the first is the default).
        store: where sessions save checkpoints.
        log: the hosting log (responses, conversations, sessions).
        cache_size: idle sessions kept open in memory.
        lease_ttl: seconds the leases of a store that has them last without renewal:
            each session's run lease and, with other replicas, each request lock.
        double_texting: what a request for a running conversation does unless it says
            (`_guard`).

    Attributes:
        shared: other replicas serve the same log and store (a shared log over a
            store with leases): requests take request locks, cached sessions are
            checked against the store.
    """

    def __init__(
        self,
        models: Mapping[str, sg.Workflow[Any]],
        store: sg.CheckpointStore,
        log: HostingLog,
        *,
        cache_size: int = 1024,
        lease_ttl: float = 30.0,
        double_texting: DoubleTexting = "reject",
    ) -> None:
        if not models:
            raise ValueError("serve at least one workflow")
        self.models = dict(models)
        self.started_at = int(time.time())
        self.workflow = next(iter(self.models.values()))
        self.store = store
        self.log = log
        self.double_texting: DoubleTexting = double_texting
        leases = all(callable(getattr(store, m, None)) for m in ("acquire", "renew", "release"))
        self.shared = log.shared and leases
        self._lease = sg.LeasePolicy(ttl=lease_ttl)
        self._locks = RequestLocks(store, ttl=lease_ttl) if self.shared else None
        self.hub = Hub()
        self.jobs = Jobs()
        self.closing = False
        self._cache_size = cache_size
        self._sessions: collections.OrderedDict[str, sg.Session[Any]] = collections.OrderedDict()
        self._guard = SessionGuard()
        self._runs: collections.OrderedDict[str, RunRecord] = collections.OrderedDict()
        self._active: dict[str, sg.Run] = {}
        self._idle: asyncio.Event | None = None
        self._tasks: asyncio.TaskGroup | None = None

    # -- models ------------------------------------------------------------------------

    def model_of(self, requested: str | None, continued: str | None = None) -> str:
        """The model name a request runs (`_models.pick_model`)."""
        return pick_model(self.models, requested, continued)

    # -- the busy guard -----------------------------------------------------------------

    def claim(self, session_id: str, what: str = "conversation") -> None:
        """Mark a session busy, synchronously; 409 when it already is, 503 when closing.

        When `shared`, follow with `await lock(...)` before reading where the session stands.
        """
        self.enter(session_id, what)

    def enter(
        self, session_id: str, what: str = "conversation", policy: DoubleTexting = "reject"
    ) -> asyncio.Future[None] | None:
        """Take the session's busy mark, synchronously (None), or (policy `enqueue` or
        `interrupt`) join its line: pass the future returned to `wait_turn`. With
        `interrupt` the run holding the session is cancelled. 409 for `reject` when
        busy, 503 when closing.
        """
        if self.closing:
            raise closing_error()
        turn = self._guard.enter(session_id, what, policy)
        if turn is not None and policy == "interrupt":
            for rec_id, run in list(self._active.items()):
                rec = self._runs.get(rec_id)
                if rec is not None and rec.session_id == session_id:
                    run.cancel()
        return turn

    async def wait_turn(self, session_id: str, turn: asyncio.Future[None] | None) -> None:
        """Wait until `turn` (from `enter`) comes; then this request holds the session.

        Raises `Withdrawn` when taken out of the line (the server closes, or a
        background response is cancelled while it waits).
        """
        if turn is not None:
            await self._guard.wait(session_id, turn)

    def withdraw(self, session_id: str, turn: asyncio.Future[None]) -> bool:
        """Take a waiting request out of the line; False when it had its turn already."""
        return self._guard.withdraw(session_id, turn)

    async def lock(self, session_id: str, what: str = "conversation") -> None:
        """When `shared`: take the session's request lock across replicas (the caller
        holds the busy mark); 409 when another replica serves the session.
        """
        if self._locks is not None:
            await self._locks.acquire(session_id, what)

    async def release(self, session_id: str) -> None:
        """Give back the session's request lock (if any) and hand its busy mark to the
        next request in line, or clear it.
        """
        try:
            if self._locks is not None:
                await self._locks.release(session_id)
        finally:
            self._guard.leave(session_id)

    def is_busy(self, session_id: str) -> bool:
        """Whether a request holds the session."""
        return self._guard.is_busy(session_id)

    def waiting(self, session_id: str) -> int:
        """How many requests wait for the session (policies `enqueue`, `interrupt`)."""
        return self._guard.waiting(session_id)

    # -- sessions ---------------------------------------------------------------------

    def session(self, session_id: str, model: str | None = None) -> sg.Session[Any]:
        """The session object of an id (opened and cached on first use), of the workflow
        of `model` (None: the one it was opened with, else the default).
        """
        s = self._sessions.get(session_id)
        wanted = None if model is None else self.models[model]
        if s is None or (wanted is not None and s.workflow is not wanted):
            s = self._open(session_id, wanted or self.workflow)
        else:
            self._sessions.move_to_end(session_id)
        return s

    def model_name(self, session: sg.Session[Any]) -> str | None:
        """The model name of the workflow `session` runs (None: not one served)."""
        return next((n for n, wf in self.models.items() if wf is session.workflow), None)

    def _open(self, session_id: str, workflow: sg.Workflow[Any]) -> sg.Session[Any]:
        s = workflow.session(session_id, store=self.store, lease=self._lease)
        self._sessions[session_id] = s
        self._sessions.move_to_end(session_id)
        self._evict()
        return s

    async def fresh(self, session_id: str, model: str | None = None) -> sg.Session[Any]:
        """The session, loaded; when `shared`, reopened from the store if another replica
        saved since this one looked (its head is not the store's newest checkpoint).
        With several workflows and no `model`, a session saved by another workflow
        than the one tried is opened with the workflow that made it.

        Call it holding the busy mark and the request lock, or for a session that is
        not busy here (a read-only view).
        """
        s = self.session(session_id, model)
        try:
            await s.load()
        except sg.GraphMismatchError:
            s = await self._adopt(session_id, s.workflow, model)
        if self.shared:
            newest = await self.store.list(session_id, limit=1)
            if s.head != (newest[0].id if newest else None):
                s = self._open(session_id, s.workflow)
                await s.load()
        return s

    async def _adopt(
        self, session_id: str, tried: sg.Workflow[Any], model: str | None
    ) -> sg.Session[Any]:
        if model is None:
            for other in self.models.values():
                if other is not tried:
                    s = self._open(session_id, other)
                    try:
                        await s.load()
                    except sg.GraphMismatchError:
                        continue
                    return s
        s = self._open(session_id, tried)
        await s.load()  # raises the mismatch again
        return s

    def _evict(self) -> None:
        while len(self._sessions) > self._cache_size:
            held = self._guard.held()
            for sid in self._sessions:
                if sid not in held:
                    del self._sessions[sid]
                    break
            else:
                return

    async def session_at(
        self,
        session_id: str,
        checkpoint_id: str | None,
        *,
        what: str = "response",
        model: str | None = None,
    ) -> sg.Session[Any]:
        """The session, moved to `checkpoint_id` (None: its clean initial state).

        The caller holds the busy mark. A missing checkpoint is a 404, never a fresh start.
        """
        try:
            s = await self.fresh(session_id, model)
            if checkpoint_id is None:
                if s.head is not None:
                    await s.reset()
            elif s.head != checkpoint_id:
                await s.restore(checkpoint_id)
        except sg.CheckpointNotFoundError:
            self._sessions.pop(session_id, None)
            raise ApiError(
                404,
                f"the checkpoint this {what} continues from is gone (deleted or pruned); "
                "start a new conversation",
                code="checkpoint_not_found",
            ) from None
        except sg.GraphMismatchError as exc:
            self._sessions.pop(session_id, None)
            raise ApiError(
                409,
                f"this {what} was saved by a different version of the workflow: {exc}",
                code="graph_mismatch",
            ) from None
        return s

    # -- runs ---------------------------------------------------------------------------

    def new_run(self, session_id: str, kind: str, origin: str, owner: str) -> RunRecord:
        """A record for a run `owner` is about to start (kept for the dev UI, bounded)."""
        rec = RunRecord(new_id("run"), session_id, kind, origin, owner=owner)
        self._runs[rec.id] = rec
        while len(self._runs) > _KEEP_RUNS:
            self._runs.popitem(last=False)
        self.hub.publish(rec.session_id, rec.id, _record(rec), rec.owner)
        return rec

    def run_record(self, run_id: str) -> RunRecord | None:
        """A recent run, or None."""
        return self._runs.get(run_id)

    def cancel_runs(self, session_id: str) -> int:
        """Cancel the runs this server drives for a session; returns how many."""
        runs = [
            run
            for rec_id, run in self._active.items()
            if (rec := self._runs.get(rec_id)) is not None and rec.session_id == session_id
        ]
        for run in runs:
            run.cancel()
        return len(runs)

    def runs_of(self, session_id: str) -> list[RunRecord]:
        """Recent runs of a session, oldest first."""
        return [r for r in self._runs.values() if r.session_id == session_id]

    async def drive(
        self, session: sg.Session[Any], run: sg.Run, rec: RunRecord, *, live: bool = False
    ) -> AsyncGenerator[sg.Event]:
        """Run to the end, filling `rec`; when `live`, yield its events as they happen.

        Runs stream live when asked to or when a dev UI stream listens to the
        session; otherwise the run is awaited (cheaper) and nothing is yielded.

        Workflow failures end the record `failed` with a message safe to show;
        they are not raised.
        """
        rec.start_checkpoint = session.head
        live = live or self.hub.wants(rec.session_id)
        self._active[rec.id] = run
        if self._guard.interrupting(rec.session_id):
            run.cancel()  # a request came to interrupt this one before it started
        issued: set[str] = set()
        result: sg.RunResult | None = None
        try:
            if live:
                async for ev in run:
                    self._note(rec, ev, issued)
                    yield ev
                result = await run
            else:
                result = await run
                for ev in result.events:
                    self._note(rec, ev, issued)
        except sg.ConcurrentRunError:  # another process holds the session's lease
            rec.status, rec.error = "failed", "another process runs this session"
            raise busy("conversation" if rec.origin == "responses" else "session") from None
        except sg.WorkflowError as exc:
            rec.status, rec.error = "failed", _failure(exc, rec.events)
        except Exception:
            logger.exception("run %s of session %s failed", rec.id, rec.session_id)
            rec.status, rec.error = "failed", _failure(RuntimeError(), rec.events)
        finally:
            if live and result is None and rec.status == "running":
                await run.aclose()  # the consumer stopped early: stop the run too
                result = run.result
            self._finish(session, rec, result, issued)

    def _finish(
        self,
        session: sg.Session[Any],
        rec: RunRecord,
        result: sg.RunResult | None,
        issued: set[str],
    ) -> None:
        self._active.pop(rec.id, None)
        if not self._active and self._idle is not None:
            self._idle.set()
        if result is not None:
            rec.status = result.status.value
            rec.outputs = list(result.outputs)
            rec.requests = [r for r in result.pending_requests if r.id in issued]
            if result.status is sg.RunStatus.FAILED:
                rec.error = rec.error or _failure(RuntimeError(), rec.events)
        elif rec.status == "running":
            rec.status = "cancelled"
        failed = rec.status == "failed"
        rec.checkpoint_id = rec.start_checkpoint if failed else session.head
        rec.ended_at = time.time()
        self.hub.publish(rec.session_id, rec.id, _record(rec), rec.owner)

    def _note(self, rec: RunRecord, ev: sg.Event, issued: set[str]) -> None:
        if isinstance(ev, sg.RequestIssued):
            issued.add(ev.request.id)
        if len(rec.events) < _KEEP_EVENTS:
            rec.events.append(ev)
        if self.hub.wants(rec.session_id):  # JSON only for someone listening
            self.hub.publish(rec.session_id, rec.id, event_json(ev), rec.owner)

    # -- background runs and shutdown -------------------------------------------------------

    def spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `work()` in the background, owned by the app's lifespan."""
        if self._tasks is None or self.closing:
            raise ApiError(
                503,
                "background runs need the app's lifespan (run it under uvicorn)",
                code="not_started",
            )
        self._tasks.create_task(self._guarded(work))

    async def _guarded(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await work()
        except Exception:
            logger.exception("background run failed")

    @contextlib.asynccontextmanager
    async def running(self, grace: float) -> AsyncGenerator[None]:
        """The app's lifespan: owns background runs; on exit lets runs finish for
        `grace` seconds, then cancels the rest, and closes the log.
        """
        self.closing = False
        self._idle = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                locks = self._locks
                renewer = None if locks is None else tasks.create_task(locks.keep_alive())
                try:
                    yield
                finally:
                    self.closing = True
                    self._guard.close()
                    await self._drain(grace)
                    if renewer is not None:
                        renewer.cancel()
        finally:
            self._tasks = None
            self.hub.close()
            if self._locks is not None:
                await self._locks.close()
            self.log.close()

    async def _drain(self, grace: float) -> None:
        idle = self._idle
        if self._active and idle is not None:
            idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await idle.wait()
        for run in list(self._active.values()):
            run.cancel()
