"""What a remote handler does, as it travels from its actor back to the session.

A handler running in a Ray actor cannot touch the session's context, so each
of its actions becomes an effect, streamed to the executor's proxy as it
happens and replayed there on the real `Context`: `Sent` (via `ctx._send`, so
routing and `RoutingError` happen in the session), `Yielded`, `Emitted`,
`Wrote`, `Erased` and `Asked` (via `ctx._request`, which issues the request id).
A call ends with `Finished` or `Failed`.

`Sent` with a non-zero `seq` and every `Asked` wait for a reply (`Raised`, the
request id, or None) before the handler continues, so a routing error is
raised at the `send` that caused it, where the handler may catch it.

Exceptions cross as cloudpickle bytes (transport only, never stored) plus
their text and traceback; one that cannot be rebuilt becomes `RemoteError`.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from .._errors import WorkflowError

__all__ = [
    "Asked",
    "Effect",
    "Erased",
    "Failed",
    "Finished",
    "Raised",
    "RemoteError",
    "Sent",
    "Wrote",
    "Yielded",
    "Emitted",
    "pack_error",
    "unpack_error",
]


class RemoteError(WorkflowError):
    """A remote handler raised an exception that could not be rebuilt here.

    The message names the original type and carries the remote traceback.

    Attributes:
        type_name: qualified name of the original exception type.
        remote_traceback: the traceback text formatted in the actor.
    """

    def __init__(self, type_name: str, text: str, remote_traceback: str) -> None:
        super().__init__(f"{type_name}: {text}\n\nRemote traceback:\n{remote_traceback}")
        self.type_name = type_name
        self.remote_traceback = remote_traceback


@dataclass(frozen=True, slots=True)
class Sent:
    """`ctx.send(message, to=...)`; `seq` > 0 when the handler waits for the outcome."""

    message: Any
    to: str | None
    seq: int


@dataclass(frozen=True, slots=True)
class Yielded:
    """`ctx.yield_output(value)`."""

    value: Any


@dataclass(frozen=True, slots=True)
class Emitted:
    """`ctx.emit(event)`."""

    event: Any


@dataclass(frozen=True, slots=True)
class Wrote:
    """`ctx.state.set(key, value)`."""

    key: str
    value: Any


@dataclass(frozen=True, slots=True)
class Erased:
    """`ctx.state.delete(key)`."""

    key: str


@dataclass(frozen=True, slots=True)
class Asked:
    """`ctx.request(payload, response_type)`; the reply is the request id or `Raised`."""

    payload: Any
    response_type: Any
    seq: int


@dataclass(frozen=True, slots=True)
class Finished:
    """The handler returned."""


@dataclass(frozen=True, slots=True)
class Raised:
    """An exception, packed to cross a process boundary.

    Attributes:
        blob: the exception pickled with cloudpickle, or None when it cannot be.
        type_name: qualified name of its type.
        text: `str(exception)`.
        traceback: the formatted traceback where it was raised.
        token: non-zero for an exception the proxy raised into the handler (a failed
            send or request); the proxy then re-raises its own original object.
    """

    blob: bytes | None
    type_name: str
    text: str
    traceback: str
    token: int = 0


@dataclass(frozen=True, slots=True)
class Failed:
    """The handler raised `error`."""

    error: Raised


Effect = Sent | Yielded | Emitted | Wrote | Erased | Asked | Finished | Failed


def _cloudpickle() -> Any:
    from ray import cloudpickle  # the extra's own serializer; transport only

    return cloudpickle


def pack_error(exc: BaseException, token: int = 0) -> Raised:
    """Pack `exc` with its traceback; keep the blob only when it round-trips."""
    tb = "".join(traceback.format_exception(exc))
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    blob: bytes | None
    try:
        cp = _cloudpickle()
        blob = cp.dumps(exc)
        cp.loads(blob)  # some exceptions pickle but cannot be rebuilt (required kwargs)
    except Exception:
        blob = None
    return Raised(blob, name, str(exc), tb, token)


def unpack_error(raised: Raised, where: str) -> BaseException:
    """Rebuild a packed exception, with the remote traceback attached as a note.

    The rebuilt exception keeps its type and arguments (so `str(exc)` is the same
    as in-process); the remote traceback, with `where` naming the actor, is added
    with `add_note`. Falls back to `RemoteError` when it cannot be rebuilt.
    """
    if raised.blob is not None:
        try:
            exc = _cloudpickle().loads(raised.blob)
        except Exception:
            exc = None
        if isinstance(exc, BaseException):
            exc.add_note(f"Remote traceback ({where}):\n{raised.traceback.rstrip()}")
            return exc
    return RemoteError(raised.type_name, raised.text, raised.traceback.rstrip())
