"""`stepgraph run flow.yaml`: a declarative workflow is a CLI target like a Python file."""

from __future__ import annotations

from pathlib import Path

from cli_support import fixture, run_cli


def test_run_a_yaml_workflow(tmp_path: Path) -> None:
    done = run_cli("run", fixture("review.yaml"), "--text", "urgent memo", "--store", "memory:",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'Output executor_id=publish value="published draft of urgent memo"' in done.stdout
    assert done.stdout.splitlines()[-1] == "RunCompleted status=idle"


def test_a_broken_yaml_workflow_names_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("start: a\nexecutors:\n  a: {use: 'nowhere_xyz:thing'}\n")
    done = run_cli("run", str(broken), "--text", "x", "--store", "memory:", cwd=tmp_path)
    assert done.returncode != 0
    assert "broken.yaml, line 3: unknown import path 'nowhere_xyz:thing'" in done.stderr
    done = run_cli("run", fixture("review.yaml") + ":workflow", "--text", "x", cwd=tmp_path)
    assert done.returncode != 0
    assert "without ':workflow'" in done.stderr
