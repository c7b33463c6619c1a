"""`RayBackend`: a session's executors as Ray actors, one per executor per session.

`Workflow.session(..., backend=RayBackend())` makes the session build
`RayExecutor` proxies instead of local executors. A proxy starts its actor
(an `ExecutorHost`) on first use and forwards each handler call to it; the
actor streams the handler's effects back as they happen and the proxy
replays them on the session's context, so routing, state, outputs, events,
requests, supersteps and checkpoints stay the session's own. Executors whose
prototype defines `snapshot()`/`restore()` have both forwarded to the actor.

Sub-workflows run in this process (`LocalExecutor`): they drive a child
session of their own.
"""

from __future__ import annotations

import importlib
import itertools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

from .._context import Context, Replay
from .._errors import WorkflowError
from .._executor import Executor, is_stateful
from .._handlers import HandlerTable
from .._subworkflow import SubWorkflow
from ._effects import (
    Asked,
    Effect,
    Emitted,
    Erased,
    Failed,
    Finished,
    Sent,
    Wrote,
    Yielded,
    pack_error,
    unpack_error,
)
from ._host import ExecutorHost
from ._local import LocalExecutor

if TYPE_CHECKING:
    from .._core import SessionCore
    from .._session import Session

__all__ = ["RayBackend", "RayExecutor"]


def _ray() -> Any:
    """The `ray` module (the `ray` extra), imported on first use."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise ImportError("RayBackend needs Ray: pip install 'stepgraph[ray]'") from exc


class _Tracked:
    """The proxies a backend made for one session, and the executor list it last swept."""

    __slots__ = ("proxies", "seen")

    def __init__(self) -> None:
        self.proxies: weakref.WeakSet[RayExecutor] = weakref.WeakSet()
        self.seen: list[Executor | None] | None = None  # the executor list last swept


class RayBackend:
    """Run each executor of a session as a Ray actor (`Workflow.session(backend=...)`).

    One actor per executor per session, started on first use (or by
    `prestart`); an executor handles one message at a time, in delivery order.
    Calls `ray.init(address=address)` on first use unless Ray is initialised.
    Prototypes, messages, state, events, snapshots and exceptions cross with
    cloudpickle: see docs/ray.md for what must be picklable and importable.

    Args:
        address: the Ray cluster to connect to when Ray is not initialised yet.
        actor_options: extra `ActorClass.options(...)` for every actor (`num_cpus`,
            `resources`, `runtime_env`, ...). `max_concurrency` must stay >= 2: a
            handler waiting on a send's outcome needs the reply to get in; handler
            calls are serialised by the actor itself.
        confirm_sends: True (the default) makes every `ctx.send` wait until the
            session has routed it, so a `RoutingError` (or a condition's
            exception) is raised at the send, as in process. False streams sends
            without waiting (one round trip less per send); a routing error then
            fails the superstep from the send without the handler seeing it.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        actor_options: dict[str, Any] | None = None,
        confirm_sends: bool = True,
    ) -> None:
        options = dict(actor_options or {})
        if int(options.get("max_concurrency", 2)) < 2:
            raise ValueError(
                "actor_options max_concurrency must be at least 2: replies to a waiting send "
                "reach the actor while its handler runs (handlers still run one at a time)"
            )
        self.address = address
        self.actor_options = options
        self.confirm_sends = confirm_sends
        self._sessions: weakref.WeakKeyDictionary[SessionCore, _Tracked] = (
            weakref.WeakKeyDictionary()
        )
        self._prototypes: weakref.WeakKeyDictionary[Executor, Any] = weakref.WeakKeyDictionary()
        self._host_class: Any = None  # `ExecutorHost` as a Ray actor class, made on first use
        self._closed = False

    def instantiate(self, session: SessionCore, index: int) -> Executor:
        """A proxy for executor `index` of `session` (its actor starts on first use)."""
        if self._closed:
            raise WorkflowError("this RayBackend was closed; make a new one for new sessions")
        prototype = session.workflow.blueprint.prototypes[index]
        if isinstance(prototype, SubWorkflow):
            return LocalExecutor(prototype.fresh())
        proxy = RayExecutor(self, session, prototype, _surely_routed(session, index))
        tracked = self._sessions.get(session)
        if tracked is None:
            tracked = self._sessions[session] = _Tracked()
        tracked.proxies.add(proxy)
        return proxy

    def actor_count(self, session: Session[Any] | None = None) -> int:
        """How many actors this backend holds alive, for `session` or for all sessions."""
        groups = (
            [self._sessions.get(session.core)] if session is not None else self._sessions.values()
        )
        return sum(p.alive for t in groups if t is not None for p in list(t.proxies))

    async def prestart(self, session: Session[Any]) -> None:
        """Start the actors of all of `session`'s executors at once and wait until they are up.

        Optional: actors otherwise start on first use, one after another as
        messages reach them. With a store, `await session.load()` first: loading
        a checkpoint replaces the session's executors.

        Raises:
            ConcurrentRunError: a run of the session is in progress.
        """
        core = session.core
        core.check_guard("prestart")
        ready: list[Any] = []
        for index in range(len(session.workflow.blueprint.prototypes)):
            ex = core.content.executors[index] or core.instantiate(index)
            if isinstance(ex, RayExecutor):
                ready.append(ex.start().ready.remote())
        for ref in ready:
            await ref

    async def release(self, session: Session[Any]) -> None:
        """Kill the actors of `session` (its executors' in-actor state is lost).

        Call it when a session ends; a later run of the session fails with a clear
        error. Sessions that are garbage collected release their actors by themselves.
        """
        tracked = self._sessions.pop(session.core, None)
        if tracked is not None:
            for proxy in list(tracked.proxies):
                proxy.kill()

    async def aclose(self) -> None:
        """Kill every actor this backend started; no new sessions afterwards."""
        self._closed = True
        for core in list(self._sessions.keys()):
            tracked = self._sessions.pop(core, None)
            for proxy in list(tracked.proxies) if tracked is not None else ():
                proxy.kill()
        self._prototypes.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- used by the proxies --------------------------------------------------------------

    def sweep(self, session: SessionCore) -> None:
        """Kill the actors of proxies the session replaced (reset, restore, a newer head)."""
        tracked = self._sessions.get(session)
        executors = session.content.executors
        if tracked is None or tracked.seen is executors:
            return
        tracked.seen = executors
        current = {id(ex) for ex in executors if ex is not None}
        for proxy in list(tracked.proxies):
            if id(proxy) not in current and proxy.alive:
                proxy.kill()
                tracked.proxies.discard(proxy)

    def start(
        self, prototype: Executor, executor_id: str, session_id: str, routed: tuple[type, ...]
    ) -> Any:
        """Start an actor hosting a fresh copy of `prototype`; returns its handle."""
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address)
        ref = self._prototypes.get(prototype)
        if ref is None:
            try:
                ref = ray.put(prototype)
            except Exception as exc:
                raise TypeError(
                    f"executor {executor_id!r} cannot be sent to Ray: {exc}. Its prototype "
                    "(constructor arguments included) must be picklable with cloudpickle"
                ) from exc
            self._prototypes[prototype] = ref
        options = {"max_restarts": 0, "max_task_retries": 0, **self.actor_options}
        if self._host_class is None:
            self._host_class = ray.remote(ExecutorHost)
        return self._host_class.options(**options).remote(ref, executor_id, session_id, routed)


def _surely_routed(session: SessionCore, index: int) -> tuple[type, ...]:
    """Classes whose sends by executor `index` (without `to=`) always route.

    Its lone unconditional successor has a plain handler for the class or a base
    of it, so routing runs no user code and cannot raise.
    """
    plan = session.workflow.blueprint.plan
    successor = plan.fast[index]
    if successor is None:
        return ()
    specs = plan.tables[successor].accepts
    return tuple(s.origin for s in specs if s.args is None and s.literals is None)


class RayExecutor(Executor):
    """The session-side proxy of one executor hosted in a Ray actor."""

    def __init__(
        self,
        backend: RayBackend,
        session: SessionCore,
        prototype: Executor,
        routed: tuple[type, ...] = (),
    ) -> None:
        super().__init__(prototype.id)
        self._routed = routed
        self._sg_init_args = ((), {})  # hold no reference to the session
        self.prototype = prototype
        self._backend = backend
        self._session: weakref.ref[SessionCore] = weakref.ref(session)
        self._session_id = session.id
        self._actor: Any = None
        self._lost = False  # the actor died; only restore() may bring a stateful one back
        self._released = False
        self._calls = itertools.count(1)
        self._stateful = is_stateful(prototype)

    def handler_table(self) -> HandlerTable:
        """The prototype's handlers."""
        return self.prototype.handler_table()

    def fresh(self) -> Self:
        """Proxies belong to one session: the backend makes them, `fresh()` cannot."""
        raise WorkflowError("a RayExecutor is made by RayBackend.instantiate, not by fresh()")

    @property
    def alive(self) -> bool:
        """True while this proxy holds a started actor."""
        return self._actor is not None

    @property
    def actor(self) -> Any:
        """The Ray actor handle, or None before first use and after release."""
        return self._actor

    def kill(self) -> None:
        """Kill the actor (if started); the proxy cannot be used afterwards."""
        self._released = True
        actor, self._actor = self._actor, None
        if actor is not None:
            _ray().kill(actor, no_restart=True)

    def start(self) -> Any:
        """Start the actor now if it is not running; returns its handle."""
        return self._host()

    def _host(self, restoring: bool = False) -> Any:
        if self._released:
            raise WorkflowError(
                f"the Ray actor of executor {self.id!r} (session {self._session_id!r}) was "
                "released; open the session again (it restores from its checkpoint)"
            )
        if self._actor is None:
            if self._lost and self._stateful and not restoring:
                raise WorkflowError(
                    f"the Ray actor of executor {self.id!r} died and its state was lost; "
                    "restore the session from a checkpoint"
                )
            self._actor = self._backend.start(
                self.prototype, self.id, self._session_id, self._routed
            )
        return self._actor

    def _died(self, exc: BaseException) -> None:
        if isinstance(exc, _ray().exceptions.RayActorError):
            self._actor = None
            self._lost = True

    async def handle(self, message: Any, ctx: Context[Any, Any]) -> None:
        """Run the handler for `message` in the actor, replaying its effects on `ctx`."""
        session = self._session()
        if session is not None:
            self._backend.sweep(session)
        host = self._host()
        view = ctx.state
        state = {k: view.get(k) for k in view}
        call = next(self._calls)
        info = (ctx.superstep, ctx.session_id, ctx.executor_id, ctx.idempotency_key)
        confirm = self._backend.confirm_sends
        injected: dict[int, BaseException] = {}
        end: Finished | BaseException | None = None
        try:
            stream = host.handle.remote(call, message, state, info, confirm)
            async for ref in stream:
                for effect in await ref:
                    end = self._replay(effect, ctx, host, injected)
                if end is not None:  # the last effect: no need to wait for the stream's end
                    break
            if isinstance(end, BaseException):
                raise end
        except BaseException as exc:
            self._died(exc)
            raise
        finally:
            if end is None and self._actor is not None:
                host.cancel.remote(call)

    def _replay(
        self, effect: Effect, ctx: Context[Any, Any], host: Any, injected: dict[int, BaseException]
    ) -> Finished | BaseException | None:
        """Apply one effect on the session's context; the call's end, if this is it."""
        match effect:
            case Sent(message, to, 0):
                Replay.send(ctx, message, to)
            case Sent(message, to, seq):
                self._answer(host, seq, injected, lambda: Replay.send(ctx, message, to))
            case Yielded(value):
                Replay.output(ctx, value)
            case Emitted(event):
                Replay.emit(ctx, event)
            case Wrote(key, value):
                ctx.state.set(key, value)
            case Erased(key):
                ctx.state.delete(key)
            case Asked(payload, response_type, seq):
                ask = lambda: Replay.request(ctx, payload, response_type)  # noqa: E731
                self._answer(host, seq, injected, ask)
            case Finished():
                return effect
            case Failed(error):
                if error.token in injected:
                    return injected[error.token]
                return unpack_error(error, f"Ray actor of executor {self.id!r}")
        return None

    @staticmethod
    def _answer(
        host: Any, seq: int, injected: dict[int, BaseException], act: Callable[[], Any]
    ) -> None:
        """Do `act` on the session's side; reply its result or its exception to the actor."""
        try:
            result = act()
        except Exception as exc:
            token = len(injected) + 1
            injected[token] = exc  # the handler may re-raise it: then this very object
            result = pack_error(exc, token)
        host.reply.remote(seq, result)

    async def snapshot(self) -> Any:
        """The hosted executor's `snapshot()`."""
        try:
            return await self._host().snapshot.remote()
        except BaseException as exc:
            self._died(exc)
            raise

    async def restore(self, data: Any) -> None:
        """The hosted executor's `restore(data)` (starts a new actor if the old one died)."""
        try:
            await self._host(restoring=True).restore.remote(data)
        except BaseException as exc:
            self._died(exc)
            raise

    def __repr__(self) -> str:
        return f"<RayExecutor id={self.id!r} session={self._session_id!r}>"
