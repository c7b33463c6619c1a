"""Checking what enters a session: run input and answers to pending requests.

JSON-like data (a dict from an HTTP body or a CLI flag) is converted into the
declared type, so `run()` and `respond()` take what a server or a terminal has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._coerce import coerce
from ._errors import RequestError, RoutingError
from ._requests import Request

if TYPE_CHECKING:
    from ._core import SessionCore
    from ._workflow import Workflow

__all__ = ["convert_input", "validate_answers"]


def convert_input(wf: Workflow[Any], value: Any) -> Any:
    """JSON-like input (a dict from an HTTP body or a CLI flag) as the start executor's type.

    Tried for each class the start executor's handlers accept (dataclasses,
    pydantic models, enums, NamedTuples), as `respond()` does for answers.

    Raises:
        RoutingError: no handler takes the value, converted or not.
    """
    plan = wf.blueprint.plan
    start = wf.blueprint.start
    table = plan.tables[start]
    problems: list[str] = []
    for spec in table.accepts:
        if spec.args is not None or spec.literals is not None or spec.origin is object:
            continue
        try:
            converted = coerce(value, spec.origin, "input")
        except TypeError as exc:
            problems.append(str(exc))
            continue
        if plan.accepts(start, converted):
            return converted
    detail = f" ({'; '.join(problems)})" if problems else ""
    raise RoutingError(
        f"start executor {plan.ids[start]!r} has no handler for input of type "
        f"{type(value).__name__}; it accepts {table.describe_accepts()}{detail}"
    )


def validate_answers(session: SessionCore, answers: Mapping[str, Any]) -> list[tuple[Request, Any]]:
    """Check a batch of answers before anything changes; each converted to its type.

    Raises:
        RequestError: an unknown request id, or an answer that is not (and cannot be
            converted into) the request's `response_type`.
    """
    if not isinstance(answers, Mapping) or not answers:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise RequestError("respond() takes a non-empty mapping {request_id: answer}")
    out: list[tuple[Request, Any]] = []
    for request_id, value in answers.items():
        request = session.content.pending.get(request_id)
        if request is None:
            pending = list(session.content.pending) or "none"
            raise RequestError(
                f"session {session.id!r} has no pending request {request_id!r} (never issued, "
                f"already answered, or from before a reset/restore); pending: {pending}"
            )
        try:
            converted = coerce(value, request.response_type)
        except TypeError as exc:
            expected = getattr(request.response_type, "__qualname__", request.response_type)
            raise RequestError(
                f"answer to request {request_id!r} of {request.executor_id!r} must be a "
                f"{expected}: {exc}"
            ) from None
        out.append((request, converted))
    return out
