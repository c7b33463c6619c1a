"""No global mutable state in the library: every module-level container is a constant.

Per-process caches and registries make behaviour depend on what ran before in
the process (and leak across tests, sessions and event loops). Module-level
names bound to a mutable container must be constants: UPPER_CASE or `Final`,
and never mutated (the second test checks nothing adds to them).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "stepgraph"

MUTABLE_CALLS = {
    "dict",
    "list",
    "set",
    "bytearray",
    "defaultdict",
    "OrderedDict",
    "Counter",
    "deque",
    "WeakKeyDictionary",
    "WeakValueDictionary",
    "WeakSet",
    "count",
}


def _is_mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in MUTABLE_CALLS
    return False


def _is_final(annotation: ast.expr | None) -> bool:
    return annotation is not None and "Final" in ast.unparse(annotation)


def _module_containers() -> list[tuple[str, str, bool]]:
    """(module path, name, declared constant) of module-level mutable containers."""
    found: list[tuple[str, str, bool]] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            targets: list[ast.expr] = []
            annotation = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign):
                targets, value, annotation = [node.target], node.value, node.annotation
            else:
                continue
            if not _is_mutable(value):
                continue
            for target in targets:
                if isinstance(target, ast.Name) and target.id != "__all__":
                    constant = target.id.lstrip("_").isupper() or _is_final(annotation)
                    found.append((str(path.relative_to(SRC)), target.id, constant))
    return found


def test_module_level_containers_are_constants() -> None:
    offenders = [f"{path}: {name}" for path, name, constant in _module_containers() if not constant]
    assert offenders == [], "module-level mutable state: " + ", ".join(offenders)


def test_module_level_constants_are_never_mutated() -> None:
    constants = {name for _, name, _ in _module_containers()}
    mutating = {"append", "extend", "add", "update", "setdefault", "pop", "clear", "insert"}
    offenders: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in constants
                and node.func.attr in mutating
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if (
                        isinstance(target, ast.Subscript)
                        and isinstance(target.value, ast.Name)
                        and target.value.id in constants
                    ):
                        offenders.append(
                            f"{path.relative_to(SRC)}:{node.lineno} {ast.unparse(node)}"
                        )
    assert offenders == [], "module-level constants mutated: " + "; ".join(offenders)
