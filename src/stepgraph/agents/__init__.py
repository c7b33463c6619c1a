"""Agents in workflows: messages, chat clients, tools, `Agent`, `AgentExecutor`.

Module map:

* `_messages`: `ChatMessage` and its typed contents (text, function call and
  result, approval request and response, usage)
* `_client`: the `ChatClient` protocol, `ToolSpec`, `ChatOptions`, responses and updates
* `_scripted`: `ScriptedChatClient`, deterministic replies for tests and demos
* `_openai`: `OpenAIChatClient` on the official `openai` package (extra `openai`)
* `_anthropic`: `AnthropicChatClient` on the official `anthropic` package (extra `anthropic`)
* `_wire`: tool arguments and results as the text providers exchange
* `_tools`: `Tool` and `@tool`, described from type hints and docstrings;
  `tool_idempotency_key()`
* `_mcp`: `MCPTools`, an MCP server's tools (stdio or HTTP, extra `mcp`), one
  connection per agent run; `MCPServerError`
* `_agent`: `Agent` and its bounded tool loop (journaled through `Step`); `AgentResponse`
* `_middleware`: `Middleware` around model calls (`ModelCall`) and tool runs
  (`ToolCall`), composed in declaration order; `ToolBlocked`
* `_spans`: `TracingMiddleware`, OpenTelemetry GenAI spans for model and tool calls
* `_executor`: `AgentExecutor` (one conversation per session) and `AgentUpdate` events
* `_tokens`: `ReplyStream`, agents' tokens in a run's events as replies (open, grow, close)
  and the outputs they already showed
* `_memory`: `MemoryStore` (namespaced long-term memory) and `MemoryItem`; backends in
  memory, and in SQLite or PostgreSQL (`_memory_sql`)
* `_memory_tools`: `memory_tools(store, namespace)`, remember/recall/forget for agents
* `_workflow_agent`: `as_agent(workflow)` (also `Workflow.as_agent()`), `WorkflowAgent`
"""

from ._agent import Agent, AgentLike, AgentResponse, Step, UpdateSink
from ._client import (
    ChatClient,
    ChatClientError,
    ChatOptions,
    ChatResponse,
    ChatUpdate,
    ToolSpec,
    collect,
)
from ._executor import AgentExecutor, AgentUpdate
from ._mcp import MCPServerError, MCPTools
from ._memory import MemoryItem, MemoryStore, MemoryStoreError
from ._memory_tools import memory_tools
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
from ._middleware import Middleware, ModelCall, ToolBlocked, ToolCall
from ._scripted import Reply, ScriptedChatClient, ScriptedRequest
from ._spans import TracingMiddleware
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
    "ChatClientError",
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
    "MemoryItem",
    "MemoryStore",
    "MemoryStoreError",
    "Middleware",
    "ModelCall",
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
    "ToolBlocked",
    "ToolCall",
    "ToolError",
    "ToolSpec",
    "TracingMiddleware",
    "UpdateSink",
    "Usage",
    "WorkflowAgent",
    "agent_update",
    "as_agent",
    "collect",
    "json_schema",
    "reply_texts",
    "memory_tools",
    "tool",
    "tool_idempotency_key",
]


def __getattr__(name: str) -> object:
    # The provider clients need optional packages: import their modules only when asked for.
    if name == "OpenAIChatClient":
        from . import _openai

        return _openai.OpenAIChatClient
    if name == "AnthropicChatClient":
        from . import _anthropic

        return _anthropic.AnthropicChatClient
    raise AttributeError(f"module 'stepgraph.agents' has no attribute {name!r}")
