"""Agents in workflows: messages, chat clients, tools, `Agent`, `AgentExecutor`.

Module map:

* `_messages`: `ChatMessage` and its typed contents (text, function call and
  result, approval request and response, usage)
* `_client`: the `ChatClient` protocol, `ToolSpec`, `ChatOptions`, responses and updates
* `_scripted`: `ScriptedChatClient`, deterministic replies for tests and demos
* `_openai`: `OpenAIChatClient` on the official `openai` package (extra `openai`)
* `_tools`: `Tool` and `@tool`, described from type hints and docstrings;
  `tool_idempotency_key()`
* `_mcp`: `MCPTools`, an MCP server's tools (stdio or HTTP, extra `mcp`), one
  connection per agent run; `MCPServerError`
* `_agent`: `Agent` and its bounded tool loop (journaled through `Step`); `AgentResponse`
* `_executor`: `AgentExecutor` (one conversation per session) and `AgentUpdate` events
* `_tokens`: `ReplyStream`, agents' tokens in a run's events as replies (open, grow, close)
  and the outputs they already showed
* `_workflow_agent`: `as_agent(workflow)` (also `Workflow.as_agent()`), `WorkflowAgent`
"""

from ._agent import Agent, AgentLike, AgentResponse, Step, UpdateSink
from ._client import ChatClient, ChatOptions, ChatResponse, ChatUpdate, ToolSpec, collect
from ._executor import AgentExecutor, AgentUpdate
from ._mcp import MCPServerError, MCPTools
from ._messages import (
    ApprovalRequest,
    ApprovalResponse,
    ChatMessage,
    Content,
    FunctionCall,
    FunctionResult,
    Role,
    TextContent,
    Usage,
)
from ._scripted import Reply, ScriptedChatClient, ScriptedRequest
from ._tokens import (
    OutputText,
    ReplyClosed,
    ReplyDelta,
    ReplyOpened,
    ReplyStep,
    ReplyStream,
    agent_update,
    reply_texts,
)
from ._tools import Tool, ToolError, json_schema, tool, tool_idempotency_key
from ._workflow_agent import REQUEST_TOOL, WorkflowAgent, as_agent

__all__ = [
    "REQUEST_TOOL",
    "Agent",
    "AgentExecutor",
    "AgentLike",
    "AgentResponse",
    "AgentUpdate",
    "ApprovalRequest",
    "ApprovalResponse",
    "ChatClient",
    "ChatMessage",
    "ChatOptions",
    "ChatResponse",
    "ChatUpdate",
    "Content",
    "FunctionCall",
    "FunctionResult",
    "MCPServerError",
    "MCPTools",
    "OutputText",
    "Reply",
    "ReplyClosed",
    "ReplyDelta",
    "ReplyOpened",
    "ReplyStep",
    "ReplyStream",
    "Role",
    "ScriptedChatClient",
    "ScriptedRequest",
    "Step",
    "TextContent",
    "Tool",
    "ToolError",
    "ToolSpec",
    "UpdateSink",
    "Usage",
    "WorkflowAgent",
    "agent_update",
    "as_agent",
    "collect",
    "json_schema",
    "reply_texts",
    "tool",
    "tool_idempotency_key",
]


def __getattr__(name: str) -> object:
    # OpenAIChatClient needs the optional `openai` package: import it only when asked for.
    if name in ("OpenAIChatClient", "ChatClientError"):
        from . import _openai

        return getattr(_openai, name)
    raise AttributeError(f"module 'stepgraph.agents' has no attribute {name!r}")
