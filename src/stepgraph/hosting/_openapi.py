"""The OpenAPI 3.1 document served at `/openapi.json`, written by hand from the routes.

It describes the request bodies precisely enough for property-based testing
(Schemathesis) and the responses loosely (objects, or an OpenAI error
object for any error status). The dev UI's endless event stream is left out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_OBJECT = {"type": "object"}
_METADATA = {
    "type": ["object", "null"],
    "maxProperties": 16,
    "additionalProperties": {"type": "string", "maxLength": 512},
}
_TEXT_PART = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"enum": ["input_text", "output_text"]}, "text": {"type": "string"}},
}
_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"const": "message"},
        "role": {"enum": ["user", "system", "developer", "assistant"]},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}]},
    },
}
_CALL_OUTPUT = {
    "type": "object",
    "required": ["type", "call_id", "output"],
    "properties": {
        "type": {"const": "function_call_output"},
        "call_id": {"type": "string", "minLength": 1},
        "output": {"type": "string"},
    },
}
_CREATE = {
    "type": "object",
    "required": ["input"],
    "properties": {
        "model": {"type": "string"},
        "input": {
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {"oneOf": [_MESSAGE, _CALL_OUTPUT]}},
            ]
        },
        "previous_response_id": {"type": ["string", "null"]},
        "conversation": {
            "oneOf": [
                {"type": "string"},
                {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                {"type": "null"},
            ]
        },
        "stream": {"type": ["boolean", "null"]},
        "background": {"type": ["boolean", "null"]},
        "double_texting": {"enum": ["reject", "enqueue", "interrupt"]},
        "metadata": _METADATA,
        "stepgraph_events": {"type": "boolean"},
    },
}


def _op(
    summary: str,
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    ok: int = 200,
    stream: bool = False,
    public: bool = False,
) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _OBJECT}}
    if stream:
        content["text/event-stream"] = {"schema": {"type": "string"}}
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {"description": "success", "content": content},
            "default": {
                "description": "an error (OpenAI error shape)",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_LIST_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}},
    {"name": "after", "in": "query", "schema": {"type": "string"}},
]


def openapi_document(title: str, secured: bool) -> dict[str, Any]:
    """The OpenAPI document of an app serving the workflows named in `title`."""
    resp, conv, sess = _path("response_id"), _path("conversation_id"), _path("session_id")
    input_body: dict[str, Any] = {
        "type": "object",
        "required": ["input"],
        "properties": {"input": {}},
    }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"stepgraph: {title}",
            "version": "1",
            "description": "An OpenAI Responses-compatible API serving a stepgraph workflow, "
            "and the JSON API of its dev UI.",
        },
        "paths": {
            "/healthz": {"get": _op("Liveness", public=True)},
            "/v1/responses": {
                "post": _op("Create a response", body=_CREATE, stream=True),
            },
            "/v1/responses/{response_id}": {
                "get": _op("Retrieve a response", params=[resp]),
                "delete": _op("Delete a response", params=[resp]),
            },
            "/v1/responses/{response_id}/input_items": {
                "get": _op("List a response's input items", params=[resp, *_LIST_PARAMS]),
            },
            "/v1/responses/{response_id}/cancel": {
                "post": _op("Cancel a background response", params=[resp]),
            },
            "/v1/models": {"get": _op("List the workflows served, as models")},
            "/v1/models/{model}": {"get": _op("Retrieve a model", params=[_path("model")])},
            "/v1/conversations": {
                "post": _op(
                    "Create a conversation",
                    body={"type": "object", "properties": {"metadata": _METADATA}},
                ),
            },
            "/v1/conversations/{conversation_id}": {
                "get": _op("Retrieve a conversation", params=[conv]),
                "post": _op(
                    "Update a conversation's metadata",
                    params=[conv],
                    body={
                        "type": "object",
                        "required": ["metadata"],
                        "properties": {"metadata": _METADATA},
                    },
                ),
                "delete": _op("Delete a conversation", params=[conv]),
            },
            "/v1/conversations/{conversation_id}/items": {
                "get": _op("List a conversation's items", params=[conv, *_LIST_PARAMS]),
            },
            "/ui/api/workflow": {"get": _op("The workflow graph and its layout")},
            "/ui/api/sessions": {
                "get": _op("Sessions the server knows"),
                "post": _op(
                    "Start a new session with a run",
                    body={
                        **input_body,
                        "properties": {"input": {}, "model": {"type": "string"}},
                    },
                    ok=202,
                ),
            },
            "/ui/api/sessions/{session_id}": {"get": _op("A session", params=[sess])},
            "/ui/api/sessions/{session_id}/checkpoints": {
                "get": _op("A session's checkpoints", params=[sess]),
            },
            "/ui/api/sessions/{session_id}/chat": {
                "get": _op("A session's conversation, from its head checkpoint", params=[sess]),
            },
            "/ui/api/sessions/{session_id}/debug/runs": {
                "get": _op("Every run of a session, replayed from its checkpoints", params=[sess]),
            },
            "/ui/api/sessions/{session_id}/runs": {
                "post": _op("Start a run", params=[sess], body=input_body, ok=202),
            },
            "/ui/api/sessions/{session_id}/respond": {
                "post": _op(
                    "Answer pending requests",
                    params=[sess],
                    ok=202,
                    body={
                        "type": "object",
                        "required": ["answers"],
                        "properties": {"answers": {"type": "object", "minProperties": 1}},
                    },
                ),
            },
            "/ui/api/sessions/{session_id}/resume": {
                "post": _op(
                    "Resume from a checkpoint (branch)",
                    params=[sess],
                    ok=202,
                    body={"type": "object", "properties": {"checkpoint_id": {"type": "string"}}},
                ),
            },
            "/ui/api/runs/{run_id}": {"get": _op("A recent run", params=[_path("run_id")])},
        },
    }
    if secured:
        doc["components"] = {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}
        doc["security"] = [{"bearer": []}]
    return doc
