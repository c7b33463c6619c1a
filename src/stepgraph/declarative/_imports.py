"""Import paths `module:attr`: resolved beside the YAML file first, then on `sys.path`.

A module whose first part is a file (`parts.py`) or a package (`parts/`) in
the YAML file's folder is imported from there, the way the CLI imports a
workflow file (`stepgraph.loading.import_file`: the folder goes first on
`sys.path` and the module is named after the file), so graph signatures and
stored type tags agree with every other loader. Anything else is imported
from `sys.path`. The reverse, `path_of`, names an object by an import path
that leads back to the same object, or says why there is none.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

from .._names import module_of
from ..loading import import_file

__all__ = ["ImportFailed", "attribute_path", "path_of", "resolve"]


class ImportFailed(Exception):
    """An import path that does not lead to an object (the message says why)."""


def _module(name: str, folder: Path | None) -> ModuleType:
    first = name.split(".")[0]
    if folder is not None:
        file = folder / f"{first}.py"
        package = folder / first / "__init__.py"
        if "." not in name and file.is_file():
            return import_file(file)
        if file.is_file() or package.is_file():
            where = str(folder.resolve())
            if where not in sys.path:
                sys.path.insert(0, where)  # as import_file does for a workflow file's siblings
    return importlib.import_module(name)


def resolve(path: str, folder: Path | None) -> Any:
    """The object `module:attr` names (`attr` may be dotted).

    Raises:
        ImportFailed: the module cannot be imported or has no such attribute.
    """
    module_name, _, attr = path.partition(":")
    try:
        value: Any = _module(module_name, folder)
    except ImportError as exc:
        where = f" (looked beside the YAML file in {folder} and on sys.path)" if folder else ""
        raise ImportFailed(f"cannot import module {module_name!r}{where}: {exc}") from None
    except Exception as exc:
        raise ImportFailed(
            f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        if not hasattr(value, part):
            raise ImportFailed(f"module {module_name!r} has no attribute {attr!r}")
        value = getattr(value, part)
    return value


def path_of(obj: object, what: str) -> str:
    """An import path `module:qualname` that leads back to `obj` itself.

    Raises:
        ImportFailed: `obj` is a lambda, a local function, or not reachable by its
            module and qualified name (the message names `what`).
    """
    name = getattr(obj, "__qualname__", None)
    real = getattr(obj, "__module__", None)
    if not isinstance(name, str) or not isinstance(real, str):
        raise ImportFailed(f"{what} ({obj!r}) has no module and qualified name")
    if "<lambda>" in name:
        raise ImportFailed(f"{what} is a lambda; give it a name at module level")
    if "<locals>" in name:
        raise ImportFailed(f"{what} ({name}) is defined inside a function; move it to module level")
    value: Any = sys.modules.get(real)
    for part in name.split("."):
        value = getattr(value, part, None)
    if value is not obj:
        raise ImportFailed(f"{what} is not reachable as {module_of(obj)}:{name}")
    return f"{module_of(obj)}:{name}"


def attribute_path(obj: object, module: str, what: str) -> str:
    """`module:name` of a module-level attribute that is `obj` itself (an executor object).

    Raises:
        ImportFailed: no attribute of the module is `obj`.
    """
    name_of = module_of(SimpleNamespace(__module__=module))
    loaded = sys.modules.get(module)
    members = vars(loaded) if loaded is not None else {}
    for name, value in members.items():
        if value is obj and not name.startswith("_"):
            return f"{name_of}:{name}"
    raise ImportFailed(f"{what} is not a module-level attribute of {name_of}")
