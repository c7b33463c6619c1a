"""`stepgraph state show|set` and `--interrupt-before/--interrupt-after`: real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import fixture, run_cli


def _store(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/runs.db"


def _state(tmp_path: Path, *extra: str) -> dict[str, object]:
    done = run_cli("state", "show", "--session", "t", "--store", _store(tmp_path), "--json",
                   *extra, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _history(tmp_path: Path) -> list[dict[str, object]]:
    done = run_cli("checkpoints", "list", "--session", "t", "--store", _store(tmp_path),
                   "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_pause_edit_and_resume(tmp_path: Path) -> None:
    store = _store(tmp_path)
    paused = run_cli("run", fixture("tally.py"), "--input", "10", "--session", "t",
                     "--store", store, "--interrupt-before", "bump", cwd=tmp_path)  # fmt: skip
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.splitlines()[-1] == "RunCompleted status=paused"
    assert "ExecutorInvoked executor_id=bump" not in paused.stdout
    assert "paused at a breakpoint after superstep 1" in paused.stderr
    assert "stepgraph resume --session t" in paused.stderr
    assert _state(tmp_path) == {"n": 10}
    assert _history(tmp_path)[0]["status"] == "paused"

    shown = run_cli("state", "show", "--session", "t", "--store", store, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"session t at checkpoint {_history(tmp_path)[0]['id']!s:.8} (head, superstep 1, "
        "paused): 1 key(s)",
        "  n = 10",
    ]

    edited = run_cli("state", "set", "step=5", "note=\"hand-edited\"", "--session", "t",
                     "--store", store, cwd=tmp_path)  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert "set step, note in checkpoint" in edited.stdout
    assert "status paused" in edited.stdout
    assert _state(tmp_path) == {"n": 10, "step": 5, "note": "hand-edited"}
    history = _history(tmp_path)
    assert history[0]["parent_id"] == history[1]["id"]
    assert history[0]["status"] == "paused"

    resumed = run_cli("resume", "--session", "t", "--store", store, "--interrupt-before",
                      "bump", cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert 'Output executor_id=report value="n=15 by 5"' in resumed.stdout
    assert resumed.stdout.splitlines()[-1] == "RunCompleted status=idle"


def test_interrupt_after_and_the_json_result(tmp_path: Path) -> None:
    done = run_cli("run", fixture("tally.py"), "--input", "1", "--session", "t", "--json",
                   "--store", _store(tmp_path), "--interrupt-after", "count",
                   "--interrupt-after", "bump", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == "paused"
    assert result["outputs"] == []
    again = run_cli("resume", "--session", "t", "--store", _store(tmp_path), "--json",
                    "--interrupt-after", "bump", cwd=tmp_path)  # fmt: skip
    invoked = [json.loads(line) for line in again.stdout.splitlines()]
    assert [e["executor_id"] for e in invoked if e["event"] == "ExecutorInvoked"] == ["bump"]
    assert json.loads(again.stdout.splitlines()[-1])["status"] == "paused"


def test_set_on_an_older_checkpoint_starts_a_branch(tmp_path: Path) -> None:
    store = _store(tmp_path)
    done = run_cli("run", fixture("tally.py"), "--input", "1", "--session", "t",
                   "--store", store, cwd=tmp_path)  # fmt: skip
    assert 'value="n=2 by 1"' in done.stdout
    before = _history(tmp_path)
    mid = next(c for c in before if c["superstep"] == 1)
    forked = run_cli("state", "set", fixture("tally.py:workflow"), "--session", "t",
                     "--store", store, "--checkpoint",
                     str(mid["id"])[:8], "step=100", "--delete", "n", cwd=tmp_path)  # fmt: skip
    assert forked.returncode == 0, forked.stderr
    assert "set step; deleted n" in forked.stdout
    assert "a new branch" in forked.stdout
    after = _history(tmp_path)
    assert len(after) == len(before) + 1
    assert after[0]["parent_id"] == mid["id"]
    assert _state(tmp_path) == {"step": 100}
    assert _state(tmp_path, "--checkpoint", str(before[0]["id"])) == {"n": 2}  # old branch
    assert _state(tmp_path, "--checkpoint", str(mid["id"])) == {"n": 1}

    resumed = run_cli("resume", "--session", "t", "--store", store, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert 'value="n=101 by 100"' in resumed.stdout


def test_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    store = _store(tmp_path)
    unknown = run_cli("run", fixture("tally.py"), "--input", "1", "--session", "t",
                      "--store", store, "--interrupt-before", "bumpp", cwd=tmp_path)  # fmt: skip
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "error: --interrupt-before names no executor 'bumpp' of this workflow; its executors "
        "are 'count', 'bump', 'report'"
    )
    assert run_cli("run", fixture("tally.py"), "--input", "1", "--session", "t",
                   "--store", store, cwd=tmp_path).returncode == 0  # fmt: skip
    for args, message in [
        (["step"], "'step': expected KEY=JSON"),
        (["step=five"], "the value of step is not valid JSON"),
        ([], "nothing to write"),
        (["a=1", "--delete", "a"], "'a' is both set and deleted"),
    ]:
        done = run_cli("state", "set", *args, "--session", "t", "--store", store, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr
        assert "Traceback" not in done.stderr
    missing = run_cli("state", "show", "--session", "nope", "--store", store, cwd=tmp_path)
    assert missing.returncode == 5
    bad = run_cli("state", "show", "--session", "t", "--checkpoint", "zzzz", "--store", store,
                  cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 5
