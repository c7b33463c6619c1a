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
    "agents_mcp_tools": [
        "turn failed: executor 'secretary' raised ConnectionError",
        "tools offered to the model: add_note, list_notes, read_note, delete_note",
        "OUTPUT Saved your note about the meeting.",
        "add_note ran 1x",
        "approval needed: delete_note {'title': 'meeting'}",
        "OUTPUT Deleted the meeting note.",
        "notes on the server: {}",
    ],
    "mcp_server_notes": [],  # a stdio server: with nothing on stdin it exits at once
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
    "basics_edges": ["OUTPUT [STEP 3] NUMBER 12", "n_describe --> n_stamp", "status: IDLE"],
    "basics_streaming": ["progress 3/3", "OUTPUT downloaded 3 files", "run completed: IDLE"],
    "basics_conditions": [
        "OUTPUT order 1: ship by van | email sent",
        "OUTPUT order 2: audit (large order) | ship by rail | email sent | sms sent",
        "OUTPUT order 3: ship by air | sms sent",
    ],
    "basics_loops": [
        "OUTPUT 6 reaches 1 after 8 steps",
        "budget spent at superstep 80: FAILED",
        "OUTPUT 27 reaches 1 after 111 steps",
    ],
    "basics_fan_out_fan_in": [
        "cheapest got ['slow', 'fast', 'abroad+tax'] (superstep 4)",
        "OUTPUT buy from slow at 9.50",
    ],
    "basics_growing_history": [
        "1000 supersteps: a history of 1000 messages",
        "on disk per superstep: under 2 KiB",
        "the checkpoint of superstep 500 holds 500 messages",
        "the fork ends with 503 messages",
        "the old branch still ends with 1000 messages",
    ],
    "review_three_ways": [
        "graph: ['published (1.0): Supersteps make agent workflows predictable, durable and",
        "functional: ['published (1.0): Supersteps make agent workflows predictable",
        "the three ways agree: True",
    ],
    "basics_state": [
        "observer, same superstep: count = 1",
        "OUTPUT after the barrier: count = 2, last_writer = observer",
        "bob's count: 1",
    ],
    "basics_checkpoint_resume": [
        "reopened: status INTERRUPTED, superstep 2",
        "OUTPUT orders.csv > fetch > clean > enrich > load > report",
        "superstep 2 clean: ran 1x",
        "superstep 3 enrich: ran 2x",
    ],
    "basics_breakpoints": [
        "status: PAUSED after superstep 2",
        "reopened: PAUSED, head True",
        "OUTPUT published Stone Walls",
        "after draft: PAUSED",
        "refused: interrupt_before names no executor 'pubilsh'",
    ],
    "basics_edit_state": [
        "status PAUSED",
        "superstep 2 wrote {'price': 24, 'discount': DELETE}",
        "OUTPUT 3 items: 24 EUR",
        "fork cp-000008 has parent cp-000002",
        "OUTPUT 3 items: 15 EUR",
        "the old branch is unchanged: {'items': 3, 'price': 30}",
    ],
    "basics_time_travel": [
        "OUTPUT branch: Once upon. A dragon came. He fought back.",
        "OUTPUT resumed: Once upon. A dragon came. He fled.",
        "   cp-000013 step 6  He fought back",
        "   cp-000014 step 6  He fled  <- head",
    ],
    "declarative_review": [
        "OUTPUT published (1.0): Supersteps make agent workflows predictable, durable and fast",
        "OUTPUT Add one concrete number.",
        "OUTPUT rejected (0.3): Hi (by Ada)",
        "round trip keeps the signature: True",
        "rejected: hostile.yaml, line 21: expression \"__import__('os')\": a call is not allowed",
    ],
    "functional_approval": [
        "asked: buy laptop from acme at 980.00?",
        "steps run so far: ['fetch_quote acme', 'fetch_quote globex']",
        "OUTPUT PO-acme-980.00",
        "steps run after the answer: ['place_order']",
    ],
    "basics_policies": [
        "retrying search (after attempt 2: connection reset)",
        "OUTPUT retry: cats: 42 results",
        "handler ran for: ['dogs', 'birds']",
        "timeout: ExecutorTimeoutError",
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
