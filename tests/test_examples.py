"""Every example runs offline to completion (smoke tests), with scripted answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))

# Answers typed at the prompt, and text each example must print.
STDIN = {"approval_prompt": "y\nn\n"}
EXPECT = {
    "demo": ["OUTPUT Report on solid-state batteries", "run completed: IDLE"],
    "approval_prompt": ["OUTPUT paid bo 980.00", "OUTPUT refused cy 310.50", "status: IDLE"],
    "subworkflow_approval": ["executor=review/editor", "OUTPUT published:", "status: IDLE"],
}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(path)],
        input=STDIN.get(path.stem, ""),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for text in EXPECT.get(path.stem, ["OUTPUT"]):
        assert text in proc.stdout, f"{path.name} did not print {text!r}:\n{proc.stdout}"
