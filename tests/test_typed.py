"""stepgraph is a typed package: pyright (strict) checks user code against it as installed.

The package is copied into a throwaway ``site-packages`` so pyright resolves it as a
third-party library, exactly as after ``pip install stepgraph``: without the
``py.typed`` marker it reports ``Stub file not found`` and types nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typing_extensions

import stepgraph

PYRIGHT = Path(sys.executable).parent / "pyright"
PACKAGE = Path(stepgraph.__file__).parent

GOOD = """\
import asyncio
import stepgraph as sg

class Upper(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str]) -> None:
        await ctx.send(text.upper())

@sg.executor(id="shout")
async def shout(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(text + "!")

wf = sg.WorkflowBuilder(start=Upper(id="upper")).add_edge("upper", shout).build(name="demo")

async def main() -> None:
    result = await wf.run("hi")
    outputs: list[object] = list(result.outputs)
    print(outputs)

if __name__ == "__main__":
    asyncio.run(main())
"""

BAD = """\
import stepgraph as sg

class Upper(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str]) -> None:
        await ctx.send(42)
"""


def test_the_package_ships_a_py_typed_marker() -> None:
    assert (PACKAGE / "py.typed").is_file()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not PYRIGHT.exists():
        pytest.skip("pyright is not installed in this environment")
    root = tmp_path_factory.mktemp("user")
    site = root / "venv" / "lib" / "python3.11" / "site-packages"
    shutil.copytree(PACKAGE, site / "stepgraph", ignore=shutil.ignore_patterns("__pycache__"))
    deps = Path(typing_extensions.__file__).parent  # the one runtime dependency
    (site / "deps.pth").write_text(f"{deps}\n")
    config = {"venvPath": ".", "venv": "venv", "typeCheckingMode": "strict"}
    (root / "pyrightconfig.json").write_text(json.dumps(config | {"pythonVersion": "3.11"}))
    return root


def pyright(project: Path, source: str) -> list[dict[str, Any]]:
    (project / "user.py").write_text(source)
    proc = subprocess.run(
        [str(PYRIGHT), "--outputjson", "user.py"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(proc.stdout)
    return [d for d in report["generalDiagnostics"] if d["severity"] == "error"]


def test_a_correct_user_file_type_checks_strict(project: Path) -> None:
    assert pyright(project, GOOD) == []


def test_sending_the_wrong_type_is_reported(project: Path) -> None:
    errors = pyright(project, BAD)
    assert [(e["range"]["start"]["line"], e["rule"]) for e in errors] == [(5, "reportArgumentType")]
    assert '"message" of type "str"' in errors[0]["message"]
