"""`AgentExecutor`: an agent conversation inside a workflow, one per session.

Each session gets its own `AgentExecutor` (via `fresh()`), so its own
conversation: two sessions never share one, and `reset()` starts a new one.
The conversation, the approvals being waited for and the answers received are
the executor's snapshot, so they live in checkpoints and survive restarts.
Streamed model output is emitted live as `AgentUpdate` events during the
superstep; the final `AgentResponse` is sent on (or output when the executor
has no outgoing edge). A tool that needs approval becomes a request whose
answer (an `ApprovalResponse`) continues the agent's run.

The agent runs with the handler's `ctx.step`, so each model call and tool call
is a durable step: when the superstep runs again (a retry, a `resume()` after a
failure, a restart over the same store) finished calls return their recorded
results. A replayed model call emits no `AgentUpdate` events (its text was
streamed when it ran); the final `AgentResponse` is the same. Tools read a key
stable across those re-runs with `tool_idempotency_key()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from .._context import Context
from .._events import Event
from .._executor import Executor, handler, response_handler
from ._agent import AgentLike, AgentResponse
from ._client import ChatUpdate
from ._messages import ApprovalRequest, ApprovalResponse, ChatMessage, FunctionCall

__all__ = ["AgentExecutor", "AgentUpdate"]

Ctx = Context[AgentResponse, AgentResponse]


@dataclass(frozen=True, slots=True)
class AgentUpdate(Event):
    """A streamed piece of an agent's reply, emitted live while its superstep runs.

    Ephemeral: checkpoint traces keep the reply (an output) rather than its pieces.
    """

    ephemeral: ClassVar[bool] = True

    executor_id: str
    agent: str
    text: str = ""
    function_calls: tuple[FunctionCall, ...] = ()


class AgentExecutor(Executor):
    """Runs an agent on the conversation of its session.

    Args:
        agent: an `Agent`, or anything with its interface (`Workflow.as_agent()`).
        id: the executor id (the agent's name by default).
        context_mode: "full" shows the agent the whole conversation so far; "last"
            only what arrived in this invocation.
        stream: stream the model and emit `AgentUpdate` events.
    """

    def __init__(
        self,
        agent: AgentLike,
        *,
        id: str | None = None,
        context_mode: Literal["full", "last"] = "full",
        stream: bool = True,
    ) -> None:
        super().__init__(id=id or agent.name)
        if context_mode not in ("full", "last"):
            raise ValueError(f"context_mode must be 'full' or 'last', not {context_mode!r}")
        self.agent = agent
        self.context_mode = context_mode
        self.stream = stream
        self.conversation: list[ChatMessage] = []
        self.conversation_id = os.urandom(8).hex()  # a new one per session and per reset
        self._turn_start = 0
        self._waiting: list[str] = []
        self._answers: dict[str, ApprovalResponse] = {}

    @handler
    async def on_text(self, text: str, ctx: Ctx) -> None:
        """A user message as plain text."""
        await self._take([ChatMessage.user(text)], ctx)

    @handler
    async def on_message(self, message: ChatMessage, ctx: Ctx) -> None:
        """One message."""
        await self._take([message], ctx)

    @handler
    async def on_messages(self, messages: list[ChatMessage], ctx: Ctx) -> None:
        """Several messages (for example a conversation handed over)."""
        await self._take(list(messages), ctx)

    @handler
    async def on_response(self, response: AgentResponse, ctx: Ctx) -> None:
        """Another agent's reply: its messages join this conversation."""
        await self._take(list(response.messages), ctx)

    @response_handler
    async def on_approval(
        self, request: ApprovalRequest, answer: ApprovalResponse, ctx: Ctx
    ) -> None:
        """A person's answer to a tool call; the run continues once all are answered."""
        call_id = request.call.call_id
        self._answers[call_id] = answer
        if call_id in self._waiting:
            self._waiting.remove(call_id)
        if not self._waiting:
            await self._run(ctx)

    async def _take(self, messages: list[ChatMessage], ctx: Ctx) -> None:
        if not self._waiting:
            self._turn_start = len(self.conversation)
        self.conversation.extend(messages)
        if self._waiting:
            return  # the agent is waiting for approvals; the new input joins the conversation
        await self._run(ctx)

    async def _run(self, ctx: Ctx) -> None:
        view = (
            self.conversation
            if self.context_mode == "full"
            else self.conversation[self._turn_start :]
        )

        async def forward(update: ChatUpdate) -> None:
            if update.text or update.function_calls:
                await ctx.emit(
                    AgentUpdate(self.id, self.agent.name, update.text, update.function_calls)
                )

        response = await self.agent.run(
            view,
            approvals=dict(self._answers),
            on_update=forward if self.stream else None,
            conversation_id=self.conversation_id,
            step=ctx.step,
            idempotency_key=ctx.idempotency_key,
        )
        self.conversation.extend(response.messages)
        if response.approvals:
            for approval in response.approvals:
                self._waiting.append(approval.call.call_id)
                await ctx.request(approval, response_type=ApprovalResponse)
            return
        self._answers.clear()
        if ctx.successors:
            await ctx.send(response)
        else:
            await ctx.yield_output(response)

    async def snapshot(self) -> dict[str, Any]:
        """The conversation and the approvals in flight."""
        return {
            "conversation": list(self.conversation),
            "conversation_id": self.conversation_id,
            "turn_start": self._turn_start,
            "waiting": list(self._waiting),
            "answers": dict(self._answers),
        }

    async def restore(self, data: dict[str, Any]) -> None:
        """Put back a snapshot."""
        self.conversation = list(data["conversation"])
        self.conversation_id = str(data["conversation_id"])
        self._turn_start = int(data["turn_start"])
        self._waiting = list(data["waiting"])
        self._answers = dict(data["answers"])
