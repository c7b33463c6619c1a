"""Architecture figures of `src/stepgraph`: what the engine-room issue asks to watch.

Prints, for the tree it is pointed at (default: this checkout's `src/stepgraph`):

* private cross-object accesses: `obj._name` where `obj` is not `self`/`cls`
  (dunders and `sys._getframe`-like module calls included), counted by parsing;
* import arrows that run upward: a module importing one of a higher layer
  (serde < engine < stores < agents < orchestrations/distributed < hosting/cli),
  or an adapter (cli, hosting) importing another package's private module;
* the longest functions.

Usage: python scripts/architecture_report.py [path/to/src/stepgraph]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

LAYERS = {
    "foundation": -1,
    "facade": 9,
    "serde": 0,
    "engine": 1,
    "stores": 2,
    "agents": 3,
    "orchestrations": 4,
    "distributed": 4,
    "hosting": 5,
    "cli": 5,
}


FOUNDATION = ("stepgraph._errors", "stepgraph._names")  # below serde: the error tree, names
FACADE = ("stepgraph", "stepgraph.testing")  # the public face re-exports every layer


def package_of(module: str) -> str:
    parts = module.split(".")
    if module in FOUNDATION:
        return "foundation"
    if module in FACADE:
        return "facade"
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "engine"


def module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        if not is_package:
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    if node.module is None or base == "stepgraph":  # `from stepgraph import serde`
        return [f"{base}.{a.name}" for a in node.names]
    return [base]


def private_accesses(tree: ast.AST) -> int:
    count = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        value = node.value
        if isinstance(value, ast.Name) and value.id in ("self", "cls"):
            continue
        call = isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
        if call and value.func.id == "super":  # type: ignore[union-attr]
            continue
        count += 1
    return count


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src/stepgraph").resolve()
    accesses = 0
    upward: list[str] = []
    functions: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        module = module_name(root, path)
        accesses += private_accesses(tree)
        layer = LAYERS[package_of(module)]
        lazy = {
            id(inner)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
            for inner in ast.walk(fn)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                size = node.end_lineno - node.lineno + 1
                functions.append((size, f"{path.relative_to(root)}:{node.name}"))
            if not isinstance(node, ast.ImportFrom):
                continue
            when = " (inside a function)" if id(node) in lazy else ""
            for target in resolve(module, path.name == "__init__.py", node):
                if not target.startswith("stepgraph"):
                    continue
                pkg = package_of(target)
                if LAYERS[pkg] > layer:
                    upward.append(f"{module} -> {target}{when}")
                adapter = package_of(module) in ("cli", "hosting")
                private = any(p.startswith("_") for p in target.split(".")[1:])
                if adapter and private and pkg != package_of(module):
                    upward.append(f"{module} -> {target} (private)")
    functions.sort(reverse=True)
    print(f"private cross-object accesses: {accesses}")
    print(f"upward import arrows: {len(upward)}")
    for arrow in sorted(set(upward)):
        print(f"  {arrow}")
    print("longest functions:")
    for size, name in functions[:5]:
        print(f"  {size:4d} lines  {name}")


if __name__ == "__main__":
    main()
