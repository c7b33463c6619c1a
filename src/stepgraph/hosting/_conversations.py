"""`/v1/conversations`: create, retrieve, update metadata, delete, list items.

A conversation is one stepgraph session with a moving head: each response
made with `conversation` continues from the head and moves it. Its items are
the input items and output items of its responses, in order. A conversation
belongs to the identity that created it: for anyone else (but an admin) it is
a 404, as if it did not exist.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._auth import principal_of
from ._errors import ApiError
from ._http import host_of, read_json
from ._log import ConversationRecord
from ._responses import page
from ._wire import new_id, now, obj, parse_metadata

__all__ = [
    "create_conversation",
    "delete_conversation",
    "get_conversation",
    "list_items",
    "update_conversation",
]


def _json(conv: ConversationRecord) -> dict[str, Any]:
    return {
        "id": conv.id,
        "object": "conversation",
        "created_at": conv.created_at,
        "metadata": conv.metadata,
    }


def _lookup(request: Request) -> ConversationRecord:
    cid = str(request.path_params["conversation_id"])
    conv = host_of(request).log.get_conversation(cid)
    if conv is None or not principal_of(request).may_see(conv.owner):
        raise ApiError(404, f"no conversation with id {cid!r}", code="conversation_not_found")
    return conv


async def create_conversation(request: Request) -> Response:
    """`POST /v1/conversations` with a JSON object (`{}`, or `metadata`), as the official
    client sends; no body at all is a 400, like every other `POST`.
    """
    body = await read_json(request)
    b = obj(body)
    if b is None:
        raise ApiError(400, "the request body must be a JSON object")
    items = b.get("items")
    if items not in (None, []):
        raise ApiError(
            400,
            "initial items are not supported: send them as the input of the first response",
            param="items",
        )
    cid = new_id("conv")
    meta = parse_metadata(b.get("metadata"))
    owner = principal_of(request).identity
    conv = ConversationRecord(cid, cid, now(), meta, None, None, owner)
    host_of(request).log.put_conversation(conv)
    return JSONResponse(_json(conv))


async def get_conversation(request: Request) -> Response:
    """`GET /v1/conversations/{conversation_id}`."""
    return JSONResponse(_json(_lookup(request)))


async def update_conversation(request: Request) -> Response:
    """`POST /v1/conversations/{conversation_id}`: replace its metadata."""
    conv = _lookup(request)
    body = await read_json(request)
    b = obj(body)
    if b is None or "metadata" not in b:
        raise ApiError(400, "send a JSON object with metadata", param="metadata")
    metadata = parse_metadata(b["metadata"])
    host_of(request).log.set_conversation_metadata(conv.id, metadata)
    return JSONResponse(_json(dataclasses.replace(conv, metadata=metadata)))


async def delete_conversation(request: Request) -> Response:
    """`DELETE /v1/conversations/{conversation_id}` (its checkpoints and responses stay)."""
    conv = _lookup(request)
    host = host_of(request)
    if host.is_busy(conv.session_id):
        raise ApiError(409, "this conversation is busy; delete it when its run has ended")
    host.claim(conv.session_id)
    try:
        await host.lock(conv.session_id)  # 409 while another replica runs it
        host.log.delete_conversation(conv.id)
    finally:
        await host.release(conv.session_id)
    return JSONResponse({"id": conv.id, "object": "conversation.deleted", "deleted": True})


async def list_items(request: Request) -> Response:
    """`GET /v1/conversations/{conversation_id}/items`, newest first by default."""
    conv = _lookup(request)
    items: list[dict[str, Any]] = []
    for rec in host_of(request).log.responses_of(conversation_id=conv.id):
        items.extend(rec.input_items)
        output: list[dict[str, Any]] = rec.body.get("output", [])
        items.extend(output)
    return JSONResponse(page(request, items, default_order="desc"))
