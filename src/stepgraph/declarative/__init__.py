"""Declarative workflows: a graph written in YAML, loaded and written back.

Module map:

* `_source`: YAML to plain data with the line of every value; `schema.json` checked
  with `jsonschema`
* `_expressions`: the safe condition language (`Condition`, `Selector`), parsed with
  `ast` and evaluated by a small interpreter, never `eval`
* `_imports`: `module:attr` import paths, beside the YAML file first, then `sys.path`
* `_loader`: the declaration to a `WorkflowBuilder` and a built `Workflow`
* `_writer`: `Workflow.to_yaml()`

PyYAML and jsonschema come with the `yaml` extra (`pip install 'stepgraph[yaml]'`);
importing stepgraph never imports them: only loading or writing a file does.
See docs/declarative.md for the format.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._expressions import Condition, Expression, ExpressionError, Selector

if TYPE_CHECKING:
    from .._workflow import Workflow

__all__ = ["Condition", "Expression", "ExpressionError", "Selector", "load_workflow", "to_yaml"]


def load_workflow(path: str | os.PathLike[str]) -> Workflow[Any]:
    """Build the workflow declared in a YAML file (`sg.load_workflow("flow.yaml")`).

    Import paths (`module:attr`) are looked up beside the file first, then on
    `sys.path`; conditions are checked when the file is loaded.

    Raises:
        GraphError: malformed YAML, a schema violation, an unknown import path, a
            condition outside the condition language or an invalid graph; the
            message names the file and the line.
    """
    from ._loader import load

    return load(os.fspath(path))


def to_yaml(workflow: Workflow[Any]) -> str:
    """The YAML declaration of `workflow` (`Workflow.to_yaml()`).

    Raises:
        GraphError: a part that cannot be named by an import path (a lambda
            condition, a local function, an executor built with arguments that
            YAML cannot hold); the message names it.
    """
    from ._writer import dump

    return dump(workflow)
