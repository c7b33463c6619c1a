"""Every ```python block in README.md and docs/*.md runs.

The blocks of one file run in order in one namespace, like a notebook, in a fresh
interpreter whose working directory is a temporary directory. A block may use
top-level ``await`` (it then runs under ``asyncio.run``). A block that cannot run
here (it needs the network, an API key or a server) opts out with a first line
``# docs: no-run (reason)``; use it sparingly. The migration guides show another
library's code first; such a block starts with a comment naming that library
(``# LangGraph``, ``# Agent Framework``) and is not run either.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stepgraph._checkpoint import FULL_EVERY

ROOT = Path(__file__).parent.parent
OPT_OUT = "# docs: no-run"
FOREIGN = ("# LangGraph\n", "# Agent Framework\n")
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def blocks(text: str) -> list[tuple[int, str]]:
    """The python blocks of a markdown text: (line of the first code line, code)."""
    found: list[tuple[int, str]] = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(1)) + 1
        found.append((line, match.group(1)))
    return found


def run_file(path: Path) -> None:
    """Run the blocks of one markdown file in order (the child process's job)."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    for line, code in blocks(path.read_text()):
        if code.startswith((OPT_OUT, *FOREIGN)):
            continue
        # Leading newlines make tracebacks point at the markdown file's lines.
        source = "\n" * (line - 1) + code
        compiled = compile(source, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if compiled.co_flags & inspect.CO_COROUTINE:
            asyncio.run(eval(compiled, namespace))  # top-level await
        else:
            exec(compiled, namespace)


DOCS = [
    p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if blocks(p.read_text())
]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_python_blocks_run(path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}  # offline
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "examples")])
    proc = subprocess.run(
        [sys.executable, __file__, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"{path.name}:\n{proc.stdout}\n{proc.stderr}"


def test_opt_outs_are_rare() -> None:
    skipped = [
        (p.name, line)
        for p in DOCS
        for line, code in blocks(p.read_text())
        if code.startswith(OPT_OUT)
    ]
    assert len(skipped) <= 3, skipped


def test_the_full_checkpoint_interval_is_stated_as_in_the_code() -> None:
    stated = {
        (p.name, int(n))
        for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
        for n in re.findall(r"every (\d+) saves", p.read_text())
    }
    assert stated
    assert {n for _, n in stated} == {FULL_EVERY}, stated


if __name__ == "__main__":
    run_file(Path(sys.argv[1]))
