"""Every example runs offline to completion (smoke tests), with scripted answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(
    p
    for p in (Path(__file__).parent.parent / "examples").glob("*.py")
    if not p.stem.startswith("_")
)

# Answers typed at the prompt, and text each example must print.
STDIN = {"approval_prompt": "y\nn\n"}
EXPECT = {
    "demo": ["OUTPUT Report on solid-state batteries", "run completed: IDLE"],
    "approval_prompt": ["OUTPUT paid bo 980.00", "OUTPUT refused cy 310.50", "status: IDLE"],
    "subworkflow_approval": ["executor=review/editor", "OUTPUT published:", "status: IDLE"],
    "agents_writer_reviewer": [
        "[reviewer] Too long",
        "OUTPUT Supersteps: predictable, durable, fast.",
    ],
    "agents_tool_approval": ["approval needed: refund", "OUTPUT Done: refunded 129.00", "['A-17']"],
    "agents_workflow_as_agent": ["says: Summary: Notes on tidal power", "Notes on heat pumps"],
    "orchestration_sequential": ["reviewer: Add a number.", "OUTPUT Edited: Heat pumps: 3x"],
    "orchestration_concurrent": ["OUTPUT 2 of 3 say BUY (growth, value, risk)"],
    "orchestration_handoff": ["handoff: triage -> billing", "OUTPUT Refund issued for order 1042"],
    "orchestration_group_chat": ["round 3: designer", "OUTPUT design idea 1 / feasible"],
    "tracing_spans": [
        "stepgraph.executor report",
        "links=['stepgraph.executor fetch']",
        "OUTPUT weather Lisbon",
    ],
    "orchestration_magentic": [
        "stalled: re-planning",
        "request satisfied",
        "OUTPUT The mean is 42.",
    ],
}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}  # offline
    proc = subprocess.run(
        [sys.executable, str(path)],
        env=env,
        input=STDIN.get(path.stem, ""),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for text in EXPECT.get(path.stem, ["OUTPUT"]):
        assert text in proc.stdout, f"{path.name} did not print {text!r}:\n{proc.stdout}"
