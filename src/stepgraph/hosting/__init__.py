"""Serve a workflow over the OpenAI Responses API, with a browser dev UI (extra `hosting`).

Module map:

* `_app`: `create_app` (routes, error handlers, lifespan)
* `_auth`: `Principal`, authentication hooks (`load_auth`, `--api-key`), the middleware
* `_serve`: `serve`, `load_workflow` and `load_workflows` (what `stepgraph serve` runs)
* `_models`: model names of the workflows served and `/v1/models`
* `_protocol`: the HTTP protocol `serve` runs (closes connections idle without a request)
* `_stores`: the default store URL and the hosting log of a store (`open_store`
  is `stepgraph.stores.open_store`, re-exported)
* `_host`: sessions per conversation, driving runs, shutdown
* `_guard`: the busy guard and the double-texting policies (reject, enqueue, interrupt)
* `_background`, `_jobs`: background responses, their polling and cancel
* `_replicas`: request locks across replicas sharing a PostgreSQL store
* `_responses`, `_conversations`: the `/v1/...` routes
* `_turns`: where a turn continues from, which workflow runs it, starting its run
* `_wire`, `_sse`, `_plain`: request parsing, items and Response objects, SSE, plain JSON
* `_log`, `_pglog`: responses, conversations and sessions in a small SQLite log,
  or in PostgreSQL tables shared by every replica
* `_events`: stepgraph events as JSON and the hub behind the dev UI stream
* `_devui`, `_layout`, `static/`: the dev UI's API, its graph layout, the page
* `_chat`: the dev UI's chat view: which workflows are chats, a session's conversation
* `_openapi`: the OpenAPI document at `/openapi.json`
* `_errors`: errors in OpenAI's JSON shape
* `_mcp_server`: `mcp_server`, the workflows as MCP tools (stdio, or `/mcp` beside the API)
"""

from ._app import create_app
from ._auth import Authenticate, Principal, load_auth
from ._guard import POLICIES, DoubleTexting
from ._mcp_server import (
    RESPOND_TOOL,
    McpTransport,
    mcp_server,
    mount_mcp,
    serve_mcp_stdio,
    workflow_input_schema,
)
from ._serve import load_workflow, load_workflows, serve
from ._stores import DEFAULT_STORE_URL, open_store
from ._wire import REQUEST_FUNCTION

__all__ = [
    "DEFAULT_STORE_URL",
    "POLICIES",
    "REQUEST_FUNCTION",
    "RESPOND_TOOL",
    "Authenticate",
    "DoubleTexting",
    "McpTransport",
    "Principal",
    "create_app",
    "load_auth",
    "load_workflow",
    "load_workflows",
    "mcp_server",
    "mount_mcp",
    "open_store",
    "serve",
    "serve_mcp_stdio",
    "workflow_input_schema",
]
