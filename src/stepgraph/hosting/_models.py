"""Model names: which workflow of those an app serves a request's `model` picks.

`GET /v1/models` (in `_app`) lists the names, so `client.models.list()` works.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import stepgraph as sg

from ._errors import ApiError

__all__ = ["model_json", "model_names", "pick_model"]


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


def pick_model(
    models: Mapping[str, sg.Workflow[Any]], requested: str | None, continued: str | None
) -> str:
    """The model name a request runs: the one it names, else the one of the response
    or conversation it continues (`continued`), else the only one served.

    With one workflow any name is taken (echoed back, as before models existed).
    Raises the 404 of an unknown model and the 400 of a missing or mismatched one.
    """
    names = ", ".join(models)
    if len(models) == 1:
        return next(iter(models))
    if requested is not None and requested not in models:
        raise ApiError(
            404,
            f"no model {requested!r} here; this server serves: {names}",
            code="model_not_found",
            param="model",
        )
    if requested is not None and continued is not None and requested != continued:
        raise ApiError(
            400,
            f"this continues a response of model {continued!r}; send model "
            f"{continued!r} (or none) to continue it",
            code="model_mismatch",
            param="model",
        )
    chosen = requested or continued
    if chosen is None or chosen not in models:
        raise ApiError(400, f"model is required; this server serves: {names}", param="model")
    return chosen


def model_json(name: str, created: int) -> dict[str, Any]:
    """An OpenAI model object for a model name."""
    return {"id": name, "object": "model", "created": created, "owned_by": "stepgraph"}
