"""`as_agent(workflow)` (and `Workflow.as_agent()`): a workflow behind the `Agent` interface.

Each conversation id maps to its own workflow session. The new messages of a
call become the workflow's input (a `list[ChatMessage]`, one `ChatMessage` or
its text, whichever the start executor takes); workflow outputs become the
reply; workflow requests become function calls (call id = request id) that
the caller answers with function results in a later call.

Streamed (`on_update`), the reply arrives as text: the tokens of the agents
inside the workflow (in sub-workflows and orchestrations too) as they come,
then the text of each output that no token showed (`ReplyStream`), so the
updates joined are the reply's text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import serde
from .._requests import Request
from ._agent import AgentResponse, Step, UpdateSink
from ._client import ChatUpdate
from ._messages import (
    ApprovalResponse,
    ChatMessage,
    Content,
    FunctionCall,
    FunctionResult,
    TextContent,
)
from ._tokens import OutputText, ReplyDelta, ReplyStream, reply_texts

if TYPE_CHECKING:
    from .._session import Session
    from .._workflow import Workflow
    from ..stores import CheckpointStore

__all__ = ["REQUEST_TOOL", "WorkflowAgent", "as_agent"]

REQUEST_TOOL = "workflow_request"
"""The function name under which workflow requests are surfaced."""


def as_agent(
    workflow: Workflow[Any],
    name: str | None = None,
    *,
    description: str = "",
    store: CheckpointStore | None = None,
) -> WorkflowAgent:
    """`workflow` behind the `Agent` interface, for an `AgentExecutor` or any agent caller.

    Each conversation maps to its own session (in `store`, or in memory);
    outputs become the reply, requests become function calls answered with
    function results. `workflow.as_agent(...)` is the same call.

    Args:
        workflow: the workflow to wrap.
        name: the agent's name (default: the workflow's).
        description: what the agent does, for whoever picks among agents.
        store: where the conversations' sessions keep their checkpoints.
    """
    return WorkflowAgent(workflow, name=name or workflow.name, description=description, store=store)


class WorkflowAgent:
    """A workflow used as an agent; see `as_agent`."""

    def __init__(
        self,
        workflow: Workflow[Any],
        *,
        name: str,
        description: str = "",
        store: CheckpointStore | None = None,
    ) -> None:
        self.workflow = workflow
        self.name = name
        self.description = description
        self.store = store
        self._sessions: dict[str, Session[Any]] = {}

    def session_for(self, conversation_id: str) -> Session[Any]:
        """The workflow session of one conversation (opened on first use)."""
        session = self._sessions.get(conversation_id)
        if session is None:
            session = self._sessions[conversation_id] = self.workflow.session(
                conversation_id, store=self.store
            )
        return session

    async def run(
        self,
        conversation: Sequence[ChatMessage] | str,
        *,
        approvals: Mapping[str, ApprovalResponse] | None = None,
        on_update: UpdateSink | None = None,
        conversation_id: str | None = None,
        step: Step | None = None,
        idempotency_key: str | None = None,
    ) -> AgentResponse:
        """Feed the conversation's new messages (or function results) to the workflow.

        `step` and `idempotency_key` are ignored: the wrapped workflow's session
        checkpoints its own progress (in `store`), and its executors journal
        their own calls.
        """
        messages = (
            [ChatMessage.user(conversation)]
            if isinstance(conversation, str)
            else list(conversation)
        )
        session = self.session_for(conversation_id or "default")
        await session.load()
        pending = {r.id for r in session.pending_requests}
        answers = {
            c.call_id: c.result
            for m in _since_last_reply(messages)
            for c in m.contents
            if isinstance(c, FunctionResult) and c.call_id in pending
        }
        before = set(pending)
        run = session.respond(answers) if answers else session.run(self._input(messages))
        if on_update is None:
            result = await run
        else:
            replies = ReplyStream()
            async for event in run:
                for text in _streamed(replies, event):
                    await on_update(ChatUpdate(text=text))
            result = await run
        reply: list[ChatMessage] = []
        for value in result.outputs:
            reply.extend(self._as_messages(value))
        calls: list[Content] = [
            FunctionCall(r.id, REQUEST_TOOL, _arguments(r))
            for r in result.pending_requests
            if r.id not in before
        ]
        if calls:
            reply.append(ChatMessage("assistant", tuple(calls), self.name))
        return AgentResponse(self.name, tuple(reply))

    def _input(self, messages: list[ChatMessage]) -> Any:
        new = _since_last_reply(messages) or messages[-1:]
        plan = self.workflow.blueprint.plan
        start = self.workflow.blueprint.start
        if plan.accepts(start, new):
            return new
        if plan.accepts(start, new[-1]):
            return new[-1]
        return "\n".join(m.text for m in new)

    def _as_messages(self, value: Any) -> list[ChatMessage]:
        if isinstance(value, AgentResponse):
            return [m for m in value.messages if m.role == "assistant"]
        if isinstance(value, ChatMessage):
            return [value]
        if reply_texts(value) is not None:  # a conversation: its replies
            return [m for m in _messages_of(value) if m.role == "assistant"]
        return [ChatMessage("assistant", (TextContent(_text(value)),), self.name)]


def _messages_of(value: Sequence[ChatMessage | AgentResponse]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for item in value:
        out.extend(item.messages if isinstance(item, AgentResponse) else (item,))
    return out


def _streamed(replies: ReplyStream, event: Any) -> list[str]:
    """The text updates one inner event makes: tokens, then outputs no token showed."""
    texts: list[str] = []
    for step in replies.feed(event):
        if isinstance(step, ReplyDelta):
            texts.append(step.text)
        elif isinstance(step, OutputText):
            if step.texts is not None:
                texts.extend(step.texts)
            elif (whole := _reply_text(step.value)) is not None:
                texts.append(whole)
    return texts


def _reply_text(value: Any) -> str | None:
    """The text of an output as the reply holds it (None: no text, e.g. only tool calls)."""
    texts = reply_texts(value)
    if texts is None:
        return _text(value)
    return "".join(texts) or None


def _since_last_reply(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Messages after the last assistant message (the new input of this call)."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "assistant":
            return list(messages[i + 1 :])
    return list(messages)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return serde.encode(value).decode()
    except Exception:
        return repr(value)


def _arguments(request: Request) -> dict[str, Any]:
    try:
        payload = json.loads(serde.encode(request.payload))
    except Exception:
        payload = repr(request.payload)
    expected = getattr(request.response_type, "__qualname__", repr(request.response_type))
    return {"executor": request.executor_id, "payload": payload, "response_type": expected}
