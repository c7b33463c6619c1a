"""`/v1/models`: the workflows an app serves, as OpenAI model objects.

A request's `model` picks the workflow it runs (`Host.model_of`); these
routes list the names it takes, so `client.models.list()` works.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import stepgraph as sg

from ._errors import ApiError
from ._http import host_of

__all__ = ["get_model", "list_models", "model_names"]


def model_names(
    workflows: sg.Workflow[Any] | Sequence[sg.Workflow[Any]] | Mapping[str, sg.Workflow[Any]],
) -> dict[str, sg.Workflow[Any]]:
    """The workflows by model name: a mapping's keys, else each workflow's `name`.

    Raises:
        ValueError: no workflow, a name used twice, or an empty name.
    """
    if isinstance(workflows, sg.Workflow):
        return {workflows.name: workflows}
    if isinstance(workflows, Mapping):
        named = dict(workflows)
    else:
        named: dict[str, sg.Workflow[Any]] = {}
        for wf in workflows:
            if wf.name in named:
                raise ValueError(
                    f"two workflows are named {wf.name!r}; give each a model name: "
                    "create_app({'name': workflow, ...}), serve({'name': target, ...}) "
                    "or stepgraph serve name=path.py:workflow"
                )
            named[wf.name] = wf
    if not named:
        raise ValueError("serve at least one workflow")
    for name in named:
        if not name:
            raise ValueError("a model name must not be empty")
    return named


def _model(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "stepgraph"}


async def list_models(request: Request) -> Response:
    """`GET /v1/models`: every workflow served, the default first."""
    host = host_of(request)
    data = [_model(name, host.started_at) for name in host.models]
    return JSONResponse({"object": "list", "data": data})


async def get_model(request: Request) -> Response:
    """`GET /v1/models/{model}`."""
    host = host_of(request)
    name = str(request.path_params["model"])
    if name not in host.models:
        known = ", ".join(host.models)
        raise ApiError(
            404, f"no model {name!r}; this server serves: {known}", code="model_not_found"
        )
    return JSONResponse(_model(name, host.started_at))
