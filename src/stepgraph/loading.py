"""Importing a workflow file the way every stepgraph loader does (the CLI, `hosting.serve`).

A workflow file can be imported several ways: run as a script (`python
app.py`, module `__main__`), or loaded by the `stepgraph` command or by
`stepgraph.hosting.serve("app.py:workflow")`. Graph signatures and stored
type tags name classes by their module, so all of these must agree, or a
session saved by one process could not be continued by another.
`import_file` names the module after the file's stem, which is also what
stepgraph calls `__main__` when the file runs as a script.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ._names import LOADER_PREFIX, stem_module_name

__all__ = ["import_file"]


def _module_name(path: Path) -> str:
    name = stem_module_name(path)
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path):
        name = LOADER_PREFIX + name  # never shadow an imported module (json.py, ...)
    return name


def import_file(path: str | os.PathLike[str]) -> ModuleType:
    """Import a Python file as a module named after its stem, as `python path` would see it.

    The file's directory goes first on `sys.path`, so it can import its
    siblings. The module is named after the file's stem made an identifier
    (`my-app.py` -> `my_app`), or `stepgraph_target_<stem>` when another
    module already has that name; stepgraph strips that prefix when it names
    classes, so graph signatures and stored types are the same either way.
    A file already imported this way is returned as it is, not run again.

    Args:
        path: the file.

    Raises:
        FileNotFoundError: `path` is not an existing file.
        ImportError: `path` cannot be imported as Python source.
        Exception: whatever running the file raised (the module is then
            forgotten, so a fixed file can be imported again).
    """
    given = Path(path)
    if not given.is_file():
        raise FileNotFoundError(f"no such file: {given}")
    file = given.resolve()
    name = _module_name(file)
    if (loaded := sys.modules.get(name)) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}: not a Python file", path=str(file))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
