"""Load a workflow named `path/to/file.py:attribute` (the attribute may be omitted),
or declared in a YAML file (`flow.yaml`, `flow.yml`: `sg.load_workflow`).

The file is imported as a module named after its stem, with its directory put
first on `sys.path` (as `python path/to/file.py` would), so it can import its
siblings. The module name matters: executor classes, predicates and stored
types are named by module in graph signatures and checkpoints, so every
process that opens the same sessions (`python app.py`, `stepgraph run`,
`resume`, `serve`, `hosting.serve("app.py:workflow")`) must agree on it:
`stepgraph.loading.import_file` imports it as all of them do.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import stepgraph as sg
from stepgraph.loading import import_file

from ._exit import CliError, one_line

__all__ = ["load_workflow", "split_target", "target_key"]


def split_target(target: str) -> tuple[Path, str | None]:
    """`"dir/app.py:workflow"` -> `(Path("dir/app.py"), "workflow")`; the attribute is optional."""
    path, sep, attr = target.rpartition(":")
    if not sep or not path:
        path, attr = target, ""
    if sep and not attr:
        raise CliError(f"bad target {target!r}: nothing after ':'; expected path.py:attribute")
    if attr and not all(part.isidentifier() for part in attr.split(".")):
        raise CliError(f"bad target {target!r}: {attr!r} is not an attribute name")
    return Path(path), attr or None


def _where(exc: BaseException, path: Path) -> str:
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        return f" (line {exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f" (line {frames[-1].lineno})" if frames else ""


def _import(path: Path) -> ModuleType:
    if not path.exists():
        raise CliError(f"no such file: {path}")
    if not path.is_file():
        raise CliError(f"not a file: {path}")
    try:
        return import_file(path)
    except ImportError as exc:
        if exc.path != str(path.resolve()):
            raise _failed(exc, path.resolve()) from exc  # an import inside the file failed
        raise CliError(str(exc)) from exc  # the file itself is not importable
    except Exception as exc:
        raise _failed(exc, path.resolve()) from exc


def _failed(exc: Exception, path: Path) -> CliError:
    detail = one_line(str(exc))
    return CliError(
        f"importing {path.name} failed{_where(exc, path)}: {type(exc).__name__}"
        + (f": {detail}" if detail else "")
    )


def _find_one(module: ModuleType, path: Path) -> tuple[str, object]:
    found: list[tuple[str, object]] = [
        (k, v) for k, v in vars(module).items() if isinstance(v, sg.Workflow)
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        factories = [k for k in ("build", "make", "create") if callable(vars(module).get(k))]
        example = factories[0] if factories else "build"
        raise CliError(
            f"{path.name} defines no Workflow at module level; name a workflow or a "
            f"zero-argument function that returns one, e.g. {path}:{example}"
        )
    names = ", ".join(k for k, _ in found)
    raise CliError(f"{path.name} defines several workflows ({names}); pick one with {path}:NAME")


def load_workflow(target: str) -> sg.Workflow[Any]:
    """Import the file and return its workflow (or call a zero-argument factory for it).

    Raises:
        CliError: missing file, import failure, unknown attribute, not a workflow.
    """
    path, attr = split_target(target)
    if path.suffix.lower() in YAML_SUFFIXES:
        return _load_yaml(path, attr)
    module = _import(path)
    if attr is None:
        attr, value = _find_one(module, path)
    else:
        value: object = module
        for part in attr.split("."):
            if not hasattr(value, part):
                candidates = [k for k, v in vars(module).items() if isinstance(v, sg.Workflow)]
                hint = f" (workflows there: {', '.join(candidates)})" if candidates else ""
                raise CliError(f"{path.name} has no attribute {attr!r}{hint}")
            value = getattr(value, part)
    if isinstance(value, sg.Workflow):
        return value  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, sg.WorkflowBuilder):
        raise CliError(f"{path.name}:{attr} is a WorkflowBuilder; expose builder.build() instead")
    if not callable(value):
        kind = type(value).__name__
        raise CliError(f"{path.name}:{attr} is a {kind}, not a Workflow or a factory of one")
    try:
        made = value()
    except Exception as exc:
        if isinstance(exc, TypeError) and "argument" in str(exc):
            raise CliError(
                f"{path.name}:{attr} needs arguments; expose a Workflow or a zero-argument factory"
            ) from exc
        raise CliError(
            f"{path.name}:{attr}() failed: {type(exc).__name__}: {one_line(str(exc))}"
        ) from exc
    if not isinstance(made, sg.Workflow):
        raise CliError(f"{path.name}:{attr}() returned a {type(made).__name__}, not a Workflow")
    return made  # pyright: ignore[reportUnknownVariableType]


YAML_SUFFIXES = (".yaml", ".yml")


def _load_yaml(path: Path, attr: str | None) -> sg.Workflow[Any]:
    if attr is not None:
        raise CliError(f"{path.name} is a YAML workflow: name it without ':{attr}'")
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    try:
        return sg.load_workflow(path)
    except (sg.GraphError, ImportError) as exc:
        raise CliError(str(exc)) from exc


def target_key(target: str) -> str:
    """The target with an absolute path, as remembered for a session."""
    path, attr = split_target(target)
    full = os.path.abspath(path)
    return f"{full}:{attr}" if attr else full
