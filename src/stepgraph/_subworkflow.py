"""`SubWorkflow`: an executor that runs a child workflow inside the parent session.

Each message to a `SubWorkflow` is one child invocation (messages are handled
one at a time, like any executor's). The child's outputs become messages from
the `SubWorkflow` to its successors, or outputs of the parent when it has no
outgoing edge. Child requests surface as parent requests with the id
`"<subworkflow id>/<child request id>"` and the executor path
`"<subworkflow id>/<child executor id>"`; answering one through the parent
session resumes the child. Child events stream live as `SubWorkflowEvent`.

The child is a session of its own, owned by the parent's copy of the
executor. It keeps only its latest checkpoint in memory, and the parent's
checkpoints store that checkpoint's parts as the executor's own parts
(`_parts.StoresOwnParts`, under `c:<subworkflow id>/`), so the
parent writes only the child parts that changed (never whole child
histories), restores the child with itself, and resets it with itself.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._checkpoint import Checkpoint, CheckpointInfo
from ._context import Context
from ._errors import CheckpointDecodeError, CheckpointNotFoundError
from ._events import CheckpointSaved, RequestIssued, SubWorkflowEvent
from ._executor import Executor
from ._handlers import HandlerSpec, HandlerTable
from ._requests import Answer, Request
from ._types import ANY

if TYPE_CHECKING:
    from ._run import Run
    from ._session import Session
    from ._workflow import Workflow

__all__ = ["ChildParts", "SubWorkflow"]


@dataclass(frozen=True, slots=True)
class ChildParts:
    """The child's latest checkpoint, as the parent's checkpoint stores it."""

    parts: Mapping[str, bytes]
    meta: bytes


class _Latest:
    """A store that keeps only the newest checkpoint: the child's parts, nothing more."""

    def __init__(self) -> None:
        self.cp: Checkpoint | None = None

    async def save(self, checkpoint: Checkpoint) -> None:
        self.cp = checkpoint

    async def load(self, checkpoint_id: str) -> Checkpoint:
        if self.cp is None or self.cp.info.id != checkpoint_id:
            raise CheckpointNotFoundError(f"a sub-workflow keeps no checkpoint {checkpoint_id!r}")
        return self.cp

    async def list(self, session_id: str, limit: int | None = None) -> list[CheckpointInfo]:
        return [self.cp.info] if self.cp is not None else []

    async def latest(self, session_id: str) -> Checkpoint | None:
        return self.cp

    async def delete(self, checkpoint_ids: Sequence[str]) -> None:
        if self.cp is not None and self.cp.info.id in checkpoint_ids:
            self.cp = None

    async def delete_session(self, session_id: str) -> None:
        self.cp = None

    async def aclose(self) -> None:
        return None


class SubWorkflow(Executor):
    """An executor that runs `workflow` as a child of the parent session.

    Args:
        workflow: the child workflow (built once; each parent session gets its own child).
        id: the executor id; child request ids and executor paths are prefixed with it.
    """

    def __init__(self, workflow: Workflow[Any], *, id: str) -> None:
        super().__init__(id=id)
        self.workflow = workflow
        self._store = _Latest()
        self._child: Session[Any] | None = None

    def handler_table(self) -> HandlerTable:
        """Accepts what the child's start executor accepts, and answers to child requests."""
        bp = self.workflow.blueprint
        start = bp.plan.tables[bp.start]
        inputs = HandlerSpec(
            name=f"SubWorkflow({self.id}).input",
            accepts=start.accepts,
            sends=(ANY,),
            invoke=lambda ex, m, c: ex._on_input(m, c),
            is_async=True,
        )
        answers = HandlerSpec(
            name=f"SubWorkflow({self.id}).answer",
            accepts=(ANY,),
            sends=(ANY,),
            invoke=lambda ex, a, c: ex._on_answer(a, c),
            is_async=True,
            accepts_response=(ANY,),
        )
        return HandlerTable(f"SubWorkflow({self.id})", [inputs, answers])

    def child(self, ctx: Context[Any, Any]) -> Session[Any]:
        """The child session (created on first use, id `<parent session>/<executor id>`)."""
        if self._child is None:
            self._child = self.workflow.session(
                f"{ctx.session_id}/{self.id}", store=self._store, ids=ctx.new_id
            )
        return self._child

    async def _on_input(self, message: Any, ctx: Context[Any, Any]) -> None:
        await self._drive(self.child(ctx).run(message), ctx)

    async def _on_answer(self, answer: Answer, ctx: Context[Any, Any]) -> None:
        child_id = answer.request.id.split("/", 1)[1]
        await self._drive(self.child(ctx).respond({child_id: answer.response}), ctx)

    async def _drive(self, run: Run, ctx: Context[Any, Any]) -> None:
        outputs: list[Any] = []
        issued: list[Request] = []
        async for event in run:
            if isinstance(event, CheckpointSaved):
                continue  # the child's private bookkeeping, not the user's
            if isinstance(event, RequestIssued):
                issued.append(event.request)
            await ctx.emit(SubWorkflowEvent(self.id, event))
        result = await run
        outputs.extend(result.outputs)
        pending = {r.id for r in result.pending_requests}
        for request in issued:
            if request.id in pending:
                ctx.forward_request(
                    Request(
                        id=f"{self.id}/{request.id}",
                        executor_id=f"{self.id}/{request.executor_id}",
                        payload=request.payload,
                        response_type=request.response_type,
                    )
                )
        has_successors = bool(ctx.successors)
        for value in outputs:
            if has_successors:
                await ctx.send(value)
            else:
                await ctx.yield_output(value)

    async def snapshot(self) -> ChildParts | None:
        """The child's latest checkpoint (immutable parts: cheap, never aliased)."""
        cp = self._store.cp
        if cp is None:
            return None
        meta = {
            "id": cp.info.id,
            "superstep": cp.info.superstep,
            "sig": cp.graph_signature,
            "status": cp.status,
        }
        return ChildParts(cp.parts, json.dumps(meta).encode())

    def snapshot_parts(self, snapshot: ChildParts | None) -> Mapping[str, bytes] | None:
        """The child's parts and its meta part, stored as this executor's own parts."""
        if snapshot is None:
            return None
        return {**snapshot.parts, _META: snapshot.meta}

    def snapshot_from_parts(self, parts: Mapping[str, bytes]) -> ChildParts:
        """The `ChildParts` stored by `snapshot_parts`."""
        child = dict(parts)
        meta = child.pop(_META, None)
        if meta is None:
            raise CheckpointDecodeError(f"sub-workflow {self.id!r} parts lack their meta part")
        return ChildParts(types.MappingProxyType(child), meta)

    async def restore(self, data: ChildParts | None) -> None:
        """Bring the child back to a saved checkpoint (or to a fresh start for None)."""
        if data is None:
            self._store.cp = None
            self._child = None
            return
        try:
            meta = json.loads(data.meta)
            info = CheckpointInfo(
                id=str(meta["id"]),
                parent_id=None,
                session_id="",
                superstep=int(meta["superstep"]),
                created_at=_EPOCH,
            )
            cp = Checkpoint(
                info=info,
                graph_signature=str(meta["sig"]),
                graph=self.workflow.blueprint.description_json,
                status=str(meta["status"]),
                parts=types.MappingProxyType(dict(data.parts)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointDecodeError(
                f"sub-workflow {self.id!r} meta is malformed: {exc}"
            ) from None
        self._store.cp = cp
        self._child = None  # re-created on next use, loading `cp` from the store


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_META = "meta"  # the child checkpoint's id, superstep, signature and status
