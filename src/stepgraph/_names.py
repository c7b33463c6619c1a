"""Stable module names for the classes and functions a graph and its state name.

A workflow file can be imported several ways: run as a script (`python
app.py`, module `__main__`), loaded by the `stepgraph` command (module
`app`, or `stepgraph_target_app` when `app` would shadow an imported module),
or loaded by `stepgraph.hosting.serve("app.py:workflow")`. Graph signatures
and stored type tags name classes by their module, so all of these must give
one name, or a session saved by one process could not be continued by
another: `__main__` is named after its file (or its `python -m` name) and the
loaders' private prefixes are dropped.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["LOADER_PREFIX", "module_of", "stem_module_name"]

LOADER_PREFIX = "stepgraph_target_"
"""Prefix a loader gives a file's module when its plain name is taken."""


def stem_module_name(path: Path) -> str:
    """The module name a file is known by: its stem, made an identifier."""
    stem = path.stem if path.stem != "__init__" else path.parent.name
    name = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem) or "workflow"
    return "_" + name if name[0].isdigit() else name


def module_of(obj: object) -> str:
    """The stable module name of a class or function (see the module docstring)."""
    module: str = getattr(obj, "__module__", None) or "?"
    if module == "__main__":
        return _main_name()
    if module.startswith(LOADER_PREFIX):
        return module[len(LOADER_PREFIX) :]
    return module


def _main_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != "__main__":
        return name  # python -m package.app
    file = getattr(main, "__file__", None)
    if isinstance(file, str) and file:
        return stem_module_name(Path(file))
    return "__main__"  # an interactive session or python -c
