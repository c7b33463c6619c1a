"""The dev UI's chat view: which workflows are chats, and a session's conversation.

A served workflow is a *chat* (`"chat": true` in `GET /ui/api/workflow`) when
its start executor takes a chat input (the text typed, as text, a list of
`ChatMessage` or one `ChatMessage`: `chat_inputs`, the conversions every dev
UI run tries) and the graph holds an `AgentExecutor`: the one agent executor
whose conversation outlives a run (its snapshot, so every checkpoint holds it).

`GET /ui/api/sessions/{session_id}/chat` reads the conversation from the
session's head checkpoint, so it works for any session, after its runs ended
or from another process, with the same 404s as every session route. What is
honestly recoverable there:

* each top-level `AgentExecutor`'s conversation (its snapshot's
  `conversation`); with several agents, their conversations are merged, each
  in its own order, a message the others already hold appearing once;
* the conversation a pending orchestration request carries (`ReviewRequest`,
  `UserInputRequest`), while the orchestration waits for a person.

Not recoverable, so not shown: an orchestration's conversation once its run
ended (it travels in messages and leaves as the run's output; each run starts
afresh from its input), and agents inside sub-workflows (their parts are the
child's). Only user and assistant messages with text are listed; tool calls,
tool results and system messages are not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import stepgraph as sg
from stepgraph.agents import AgentExecutor, ChatMessage
from stepgraph.orchestrations import ReviewRequest, UserInputRequest

from ._auth import check_session, principal_of
from ._errors import ApiError
from ._http import host_of

__all__ = ["ROUTES", "chat_inputs", "conversation", "is_chat", "message_json"]


def chat_inputs(text: str) -> list[Any]:
    """What typed text may start a run as, in the order tried: the text, a list of one
    user `ChatMessage`, that message.
    """
    return [text, [ChatMessage.user(text)], ChatMessage.user(text)]


def is_chat(workflow: sg.Workflow[Any]) -> bool:
    """Whether the dev UI shows a chat for `workflow` (see the module docstring)."""
    bp = workflow.blueprint
    if not any(bp.plan.accepts(bp.start, value) for value in chat_inputs("")):
        return False
    return bool(_agents(workflow))


def _agents(workflow: sg.Workflow[Any]) -> list[AgentExecutor]:
    return [e for e in workflow.blueprint.prototypes if isinstance(e, AgentExecutor)]


def _merge(into: list[ChatMessage], more: Sequence[ChatMessage]) -> None:
    """Merge `more` into `into` keeping both orders: a message found after the last
    match is that one; any other is inserted after the last match.
    """
    at = -1
    for message in more:
        found = next((i for i in range(at + 1, len(into)) if into[i] == message), None)
        if found is None:
            at += 1
            into.insert(at, message)
        else:
            at = found


def _shown(message: ChatMessage) -> bool:
    return message.role in ("user", "assistant") and bool(message.text)


async def conversation(session: sg.Session[Any]) -> list[ChatMessage]:
    """The conversation of `session` as its head checkpoint holds it (empty when it has
    none yet); see the module docstring for what is recoverable.
    """
    try:
        cp = await session.checkpoint()
    except sg.CheckpointNotFoundError:
        return []
    sources: list[Sequence[Any]] = []
    for agent in _agents(session.workflow):
        try:
            snap: dict[str, Any] = cp.snapshot(agent.id)
        except KeyError:  # it has not run yet
            continue
        sources.append(snap["conversation"])  # see `AgentExecutor.snapshot`
    for request in session.pending_requests:
        payload = request.payload
        if isinstance(payload, ReviewRequest | UserInputRequest):
            sources.append(payload.conversation)
    merged: list[ChatMessage] = []
    for source in sources:
        _merge(merged, [m for m in source if isinstance(m, ChatMessage) and _shown(m)])
    return merged


def message_json(message: ChatMessage) -> dict[str, Any]:
    """A message as the chat view shows it: `{role, name, text}` (`name`: its author)."""
    return {"role": message.role, "name": message.author, "text": message.text}


async def _view(request: Request) -> sg.Session[Any]:
    """The path's session, for reading: 404 as every session route; loaded unless busy."""
    host = host_of(request)
    sid = str(request.path_params["session_id"])
    if "\x00" in sid:
        raise ApiError(404, f"no session with id {sid!r}", code="session_not_found")
    await check_session(host, sid, principal_of(request))
    if not host.is_busy(sid):
        try:
            return await host.fresh(sid)
        except sg.ConcurrentRunError:  # a run started here meanwhile
            pass
        except sg.GraphMismatchError as exc:
            raise ApiError(
                409, f"a different workflow saved this session: {exc}", code="graph_mismatch"
            ) from None
    return host.session(sid)


async def chat(request: Request) -> Response:
    """`GET /ui/api/sessions/{session_id}/chat`: `{messages: [{role, name, text}]}`."""
    session = await _view(request)
    try:
        messages = await conversation(session)
    except sg.CheckpointDecodeError as exc:
        raise ApiError(
            409, f"the session's head cannot be decoded: {exc}", code="checkpoint_undecodable"
        ) from None
    return JSONResponse({"session_id": session.id, "messages": [message_json(m) for m in messages]})


ROUTES: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
    ("/ui/api/sessions/{session_id}/chat", chat, ["GET"]),
]
