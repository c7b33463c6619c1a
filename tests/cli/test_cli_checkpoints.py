"""`stepgraph checkpoints list|show|tree|prune`, `resume --checkpoint`, `reset`: real subprocesses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_support import fixture, run_cli

import stepgraph as sg
from stepgraph.cli._checkpoints import render_tree


def _checkpoints(tmp_path: Path, store: str, session: str) -> list[dict[str, object]]:
    done = run_cli("checkpoints", "list", "--session", session, "--store", store, "--json",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store holding session `s`: one run of hello.py (checkpoints at supersteps 0, 1, 2)."""
    url = f"sqlite://{tmp_path}/runs.db"
    done = run_cli("run", fixture("hello.py"), "--text", "hi", "--session", "s", "--store", url,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return url


def test_tree_shows_a_branch_made_by_resuming_an_older_checkpoint(
    tmp_path: Path, store: str
) -> None:
    first = _checkpoints(tmp_path, store, "s")
    assert [c["superstep"] for c in first] == [2, 1, 0]
    mid = str(first[1]["id"])
    again = run_cli("resume", "--session", "s", "--checkpoint", mid[:8], "--store", store,
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert 'Output executor_id=shout value="HI!"' in again.stdout
    after = _checkpoints(tmp_path, store, "s")
    assert len(after) == 4
    assert after[0]["parent_id"] == mid  # the branch starts at the resumed checkpoint
    assert after[0]["head"] is True

    tree = run_cli("checkpoints", "tree", "--session", "s", "--store", store, cwd=tmp_path)
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    short = {str(c["id"])[:8]: c for c in after}
    assert [line.split()[-1] == "head" for line in lines].count(True) == 1
    # root and the mid-run checkpoint in one column, then two branches under it
    assert lines[0].startswith(str(first[2]["id"])[:8])
    assert lines[1].startswith(mid[:8])
    assert lines[2].startswith("├── " + str(first[0]["id"])[:8])
    assert lines[3].startswith("└── " + str(after[0]["id"])[:8])
    assert lines[3].endswith("← head")
    assert {line.lstrip("├└─ ")[:8] for line in lines} == set(short)


def test_show_decodes_state_and_pending_requests(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/runs.db"
    waiting = run_cli("run", fixture("approve.py"), "--input", "300", "--session", "a",
                      "--store", url, cwd=tmp_path)  # fmt: skip
    assert waiting.returncode == 4
    shown = run_cli("checkpoints", "show", "--session", "a", "--store", url, "--json",
                    cwd=tmp_path)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["head"] is True
    assert data["status"] == "waiting"
    (request,) = data["pending_requests"]
    assert request["payload"] == {"amount": 300}
    assert request["response_type"] == "Decision"
    text = run_cli("checkpoints", "show", "--session", "a", "--store", url, cwd=tmp_path)
    assert "requests   1 pending" in text.stdout


def test_prune_keeps_the_newest_of_each_branch(tmp_path: Path, store: str) -> None:
    done = run_cli("checkpoints", "prune", "--session", "s", "--keep-last", "1", "--store",
                   store, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 2 of 3 checkpoints")
    assert len(_checkpoints(tmp_path, store, "s")) == 1


def test_a_different_graph_is_refused_in_one_line(tmp_path: Path, store: str) -> None:
    done = run_cli("resume", fixture("approve.py"), "--session", "s", "--store", store,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 6
    assert len(done.stderr.splitlines()) == 1
    assert "different graph" in done.stderr
    assert "Traceback" not in done.stderr
    # the refused workflow was not remembered for the session: hello.py still is
    again = run_cli("resume", "--session", "s", "--store", store, cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def test_reset_then_run_again(tmp_path: Path, store: str) -> None:
    assert run_cli("reset", "--session", "s", "--store", store, cwd=tmp_path).returncode == 0
    roots = [c for c in _checkpoints(tmp_path, store, "s") if c["parent_id"] is None]
    assert len(roots) == 2


def test_unknown_checkpoint(tmp_path: Path, store: str) -> None:
    done = run_cli("resume", "--session", "s", "--checkpoint", "zzz", "--store", store,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 5
    assert done.stderr.splitlines() == ["error: session 's' has no checkpoint 'zzz'"]


def _info(cid: str, parent: str | None, step: int) -> sg.CheckpointInfo:
    return sg.CheckpointInfo(cid, parent, "s", step, datetime(2026, 1, 1, tzinfo=UTC))


def test_render_tree_keeps_chains_in_one_column() -> None:
    # save order: a b c d (branch from b) e (child of d) f (new root, after a reset)
    saved = [
        _info("a" * 8, None, 0), _info("b" * 8, "a" * 8, 1), _info("c" * 8, "b" * 8, 2),
        _info("d" * 8, "b" * 8, 2), _info("e" * 8, "d" * 8, 3), _info("f" * 8, None, 3),
    ]  # fmt: skip
    lines = [line.split("  superstep")[0] for line in render_tree(saved[::-1])]
    assert lines == [  # two roots (a reset started the second): a branch each
        "├── aaaaaaaa",
        "│   bbbbbbbb",
        "│   ├── cccccccc",
        "│   └── dddddddd",
        "│       eeeeeeee",
        "└── ffffffff",
    ]
    one_root = [line.split("  superstep")[0] for line in render_tree(saved[:5][::-1])]
    assert one_root == [
        "aaaaaaaa",
        "bbbbbbbb",
        "├── cccccccc",
        "└── dddddddd",
        "    eeeeeeee",
    ]
    assert render_tree(saved[::-1])[-1].endswith("← head")
