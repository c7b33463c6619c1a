"""Helpers for the CLI tests: run the real `stepgraph` command in a subprocess.

Not a test module. The tests import it by name (pytest puts this directory on
`sys.path`).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
"""Small workflow files the tests run."""

TIMEOUT = 30


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a child: no colours, no store or debug settings inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPGRAPH_")}
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1", **extra)
    return env


def command(*args: str) -> list[str]:
    """argv of `stepgraph ARGS...` (the same code as the installed script)."""
    return [sys.executable, "-m", "stepgraph.cli", *args]


def run_cli(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `stepgraph ARGS...` to completion; stdin is empty (not a terminal) unless given."""
    return subprocess.run(
        command(*args),
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=TIMEOUT,
        check=False,
    )


def fixture(name: str) -> str:
    """Absolute path of a fixture workflow file (with `:attr` appended as given)."""
    file, sep, attr = name.partition(":")
    return str(FIXTURES / file) + sep + attr


def read_until(stream: Iterable[str] | None, marker: str, timeout: float = 20) -> list[str]:
    """Lines of a child's output up to one containing `marker` (a thread reads them)."""
    assert stream is not None
    source = stream
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in source], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01)).rstrip("\n")
        except queue.Empty:
            break
        seen.append(line)
        if marker in line:
            return seen
    pytest.fail(f"no {marker!r} from the child; got {seen}")
