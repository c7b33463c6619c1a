"""Mapping helpers shared by the provider clients: tool arguments and results as wire text."""

from __future__ import annotations

import json
from typing import Any, cast

from ._messages import FunctionResult

__all__ = ["parse_arguments", "result_text"]


def parse_arguments(text: str) -> dict[str, Any]:
    """A tool call's JSON arguments; text that is not a JSON object is kept as `{"_raw": text}`."""
    try:
        value: object = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {"_raw": text}
    return cast(dict[str, Any], value) if isinstance(value, dict) else {"_raw": text}


def result_text(result: FunctionResult) -> str:
    """A tool result as the text a model reads: the string, JSON, or `Error: ...`."""
    if result.error is not None:
        return f"Error: {result.error}"
    if isinstance(result.result, str):
        return result.result
    return json.dumps(result.result, ensure_ascii=False, default=str)
