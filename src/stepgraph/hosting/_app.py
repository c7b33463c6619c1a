"""`create_app`: the Starlette app serving workflows (Responses API, dev UI, OpenAPI).

Authentication is a pure ASGI middleware (`_auth`): with a hook or an API key,
every route but `/healthz`, `/openapi.json` and the dev UI's static files needs
credentials the hook accepts (401 otherwise). Errors of any
kind are answered in OpenAI's error shape; an unexpected exception becomes a
generic 500 whose body says nothing about its cause.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import stepgraph as sg

from . import _conversations as conv
from . import _responses as resp
from ._auth import Authenticate, Authentication, api_key_auth
from ._background import cancel_response
from ._devui import ROUTES as UI_ROUTES
from ._digests import Digests
from ._errors import ApiError, error_body, error_response
from ._guard import DoubleTexting, check_policy
from ._host import Host
from ._models import model_json, model_names
from ._openapi import openapi_document
from ._stores import open_log

__all__ = ["create_app"]

logger = logging.getLogger("stepgraph.hosting")
STATIC = Path(__file__).parent / "static"


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    allowed = (exc.headers or {}).get("Allow", "")
    message = {
        404: f"no route {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}; it takes {allowed}",
    }.get(status, str(exc.detail))
    return JSONResponse(error_body(status, message), status_code=status, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = error_body(500, "internal server error; see the server log", code="server_error")
    return JSONResponse(body, status_code=500)


Endpoint = Callable[[Request], Awaitable[Response]]


def _by_path(table: list[tuple[str, Endpoint, list[str]]]) -> list[Route]:
    """One route per path, dispatching on the method, so that a 405 lists every method
    the path takes in its `Allow` header (Starlette's routes of one path each know
    only their own methods).
    """
    paths: dict[str, dict[str, Endpoint]] = {}
    for path, endpoint, methods in table:
        for method in methods:
            paths.setdefault(path, {})[method] = endpoint
            if method == "GET":
                paths[path]["HEAD"] = endpoint
    return [
        Route(path, _dispatch(by_method), methods=list(by_method))
        for path, by_method in paths.items()
    ]


def _dispatch(by_method: dict[str, Endpoint]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await by_method[request.method](request)

    return endpoint


def create_app(
    workflow: sg.Workflow[Any] | Sequence[sg.Workflow[Any]] | Mapping[str, sg.Workflow[Any]],
    *,
    store: sg.CheckpointStore | None = None,
    api_key: str | None = None,
    auth: Authenticate | None = None,
    log_path: str | None = None,
    shutdown_grace: float = 10.0,
    lease_ttl: float = 30.0,
    double_texting: DoubleTexting = "reject",
) -> Starlette:
    """An ASGI app serving workflows over the OpenAI Responses API, with a dev UI at `/ui`.

    Args:
        workflow: the workflow to serve, or several: a sequence (each one's model name
            is its `name`, which must be unique) or a mapping of model names to
            workflows. A request's `model` picks one (`GET /v1/models` lists them);
            with a single workflow any `model` runs it. The first is the dev UI's.
            Every conversation gets its own session.
        store: where sessions save checkpoints (default: in memory, closed with the app).
        api_key: when set, requests need `Authorization: Bearer <api_key>` (else 401);
            the key holder is one principal, `Principal("api-key", roles=("admin",))`.
        auth: an authentication hook: called (sync or async) with each request's
            headers, it returns a `Principal` or None (401). Every conversation,
            response, session and run records its creator's identity; other
            identities get 404 for it, admins (role `admin`) see everything.
            Without `auth` and `api_key`, every request is one anonymous admin.
        log_path: the hosting log's SQLite file (default: beside the store's data,
            in memory for a memory store; for a PostgreSQL store, tables in its
            database and schema, shared by every replica serving it).
        shutdown_grace: seconds runs may take to finish at shutdown before they are
            cancelled.
        lease_ttl: with a store that has leases (file, SQLite, PostgreSQL), seconds a
            run's session lease and a request's lock last without renewal (renewed every
            third of it): how long a replica that stopped (crashed, paused) blocks its
            conversations. A replica paused longer loses them to others, and what it
            writes afterwards is refused.
        double_texting: what a request for a conversation whose run is still going
            does, unless the request says (its `double_texting` field): `reject` (409),
            `enqueue` (runs after it, in arrival order) or `interrupt` (the running
            response is cancelled, then this one runs).

    Returns:
        A Starlette app. Its lifespan owns background runs started from the dev UI;
        run it under uvicorn (or enter `app.router.lifespan_context(app)` in tests).
    """
    if auth is not None and api_key is not None:
        raise ValueError("pass auth or api_key, not both (an api_key is a simple auth hook)")
    authenticate = api_key_auth(api_key) if api_key is not None else auth
    models = model_names(workflow)
    policy = check_policy(double_texting)
    own_store = store is None
    the_store: sg.CheckpointStore = store if store is not None else sg.MemoryCheckpointStore()
    log = open_log(the_store, log_path)
    host = Host(models, the_store, log, lease_ttl=lease_ttl, double_texting=policy)
    doc = openapi_document(", ".join(models), authenticate is not None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None]:
        async with host.running(shutdown_grace):
            yield
        if own_store:
            await the_store.aclose()

    async def openapi(request: Request) -> Response:
        return JSONResponse(doc)

    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "workflow": host.workflow.name, "models": list(models)}
        )

    async def list_models(request: Request) -> Response:
        data = [model_json(name, host.started_at) for name in models]
        return JSONResponse({"object": "list", "data": data})

    async def get_model(request: Request) -> Response:
        name = str(request.path_params["model"])
        if name not in models:
            known = ", ".join(models)
            raise ApiError(
                404, f"no model {name!r}; this server serves: {known}", code="model_not_found"
            )
        return JSONResponse(model_json(name, host.started_at))

    async def ui_root(request: Request) -> Response:
        return RedirectResponse(str(request.url_for("ui_index")))

    async def ui_index(request: Request) -> Response:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html; charset=utf-8")

    table: list[tuple[str, Endpoint, list[str]]] = [
        ("/openapi.json", openapi, ["GET"]),
        ("/healthz", healthz, ["GET"]),
        ("/v1/responses", resp.create_response, ["POST"]),
        ("/v1/responses/{response_id}", resp.get_response, ["GET"]),
        ("/v1/responses/{response_id}", resp.delete_response, ["DELETE"]),
        ("/v1/responses/{response_id}/input_items", resp.list_input_items, ["GET"]),
        ("/v1/responses/{response_id}/cancel", cancel_response, ["POST"]),
        ("/v1/models", list_models, ["GET"]),
        ("/v1/models/{model}", get_model, ["GET"]),
        ("/v1/conversations", conv.create_conversation, ["POST"]),
        ("/v1/conversations/{conversation_id}", conv.get_conversation, ["GET"]),
        ("/v1/conversations/{conversation_id}", conv.update_conversation, ["POST"]),
        ("/v1/conversations/{conversation_id}", conv.delete_conversation, ["DELETE"]),
        ("/v1/conversations/{conversation_id}/items", conv.list_items, ["GET"]),
        ("/ui", ui_root, ["GET"]),
        *UI_ROUTES,
    ]
    routes = [
        *_by_path(table),
        Route("/ui/", ui_index, methods=["GET"], name="ui_index"),
        Mount("/ui/static", StaticFiles(directory=STATIC), name="ui_static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.host = host
    app.state.digests = Digests()
    if authenticate is not None:
        app.add_middleware(Authentication, authenticate=authenticate)
    return app
