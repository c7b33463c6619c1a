"""Graph pictures: `stepgraph graph` in a subprocess, and `to_svg` as a pure function."""

from __future__ import annotations

import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli_env, command, fixture, read_until, run_cli

import stepgraph as sg
from stepgraph._svg import EDGE_STYLES, to_svg
from stepgraph.cli._target import load_workflow

NS = {"svg": "http://www.w3.org/2000/svg"}


def _classes(el: ET.Element) -> set[str]:
    return set(el.get("class", "").split())


def _groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{{{NS['svg']}}}g") if cls in _classes(g)]


@pytest.fixture(scope="module")
def kinds() -> Iterator[sg.Workflow[Any]]:
    """kinds.py loaded in this process, leaving `sys.path` and `sys.modules` as they were."""
    path, modules = list(sys.path), set(sys.modules)
    yield load_workflow(fixture("kinds.py:workflow"))
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def test_svg_has_one_node_per_executor_and_distinct_edge_styles(kinds: sg.Workflow[Any]) -> None:
    root = ET.fromstring(to_svg(kinds.describe(), title=kinds.name))
    assert root.tag == f"{{{NS['svg']}}}svg"
    assert root.findtext("svg:title", namespaces=NS) == "kinds"
    nodes = _groups(root, "node")
    assert sorted(g.get("data-id", "") for g in nodes) == sorted(kinds.executor_ids)
    (start,) = [g for g in nodes if "start" in _classes(g)]
    assert start.get("data-id") == "start"
    assert [g.get("data-id") for g in nodes if "subworkflow" in _classes(g)] == ["sub"]
    assert len(_groups(root, "join")) == 1  # the fan-in's join circle

    styles: dict[str, set[tuple[str | None, str | None, str | None]]] = {}
    labels: dict[str, list[str]] = {}
    for g in _groups(root, "edge"):
        kind = g.get("data-kind", "")
        path = g.find("svg:path", NS)
        assert path is not None
        style = (path.get("stroke"), path.get("stroke-dasharray"), path.get("stroke-width"))
        styles.setdefault(kind, set()).add(style)
        labels.setdefault(kind, [])
    assert set(styles) >= {"direct", "conditional", "case", "default", "select", "fan-in", "joined"}
    drawn = {kind: next(iter(s)) for kind, s in styles.items()}
    distinct = ["direct", "conditional", "case", "default", "select", "joined"]
    assert len({drawn[k] for k in distinct}) == len(distinct)
    texts = [t.text for t in root.iter(f"{{{NS['svg']}}}text") if "label" in _classes(t)]
    assert "when even" in texts
    assert "case 1: small" in texts
    assert "default" in texts
    assert "select pick" in texts
    assert "list" in texts
    back = [g for g in _groups(root, "edge") if "back" in _classes(g)]
    assert [(g.get("data-source"), g.get("data-target")) for g in back] == [("loop", "start")]


def test_svg_of_small_and_cyclic_graphs_parses() -> None:
    single = {"start": "a", "executors": [{"id": "a", "type": "x.A"}], "edges": []}
    root = ET.fromstring(to_svg(single))
    assert len(_groups(root, "node")) == 1
    looped = {
        "start": "a",
        "executors": [{"id": i, "type": "x.E"} for i in "abc"],
        "edges": [
            {"kind": "direct", "sources": ["a"], "targets": ["b"]},
            {"kind": "direct", "sources": ["b"], "targets": ["b"], "conditions": ["m.again"]},
            {"kind": "direct", "sources": ["b"], "targets": ["c"]},
            {"kind": "direct", "sources": ["c"], "targets": ["a"]},
        ],
    }
    root = ET.fromstring(to_svg(looped))
    edges = _groups(root, "edge")
    assert len(edges) == 4
    assert {
        (g.get("data-source"), g.get("data-target")) for g in edges if "back" in _classes(g)
    } == {
        ("b", "b"),
        ("c", "a"),
    }


def test_edge_styles_are_a_public_table() -> None:
    assert len(set(EDGE_STYLES.values())) >= 6


@pytest.mark.parametrize(("fmt", "needle"), [("mermaid", "flowchart TD"), ("dot", "digraph")])
def test_graph_command_text_formats(tmp_path: Path, fmt: str, needle: str) -> None:
    done = run_cli("graph", fixture("kinds.py:workflow"), "--format", fmt, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert needle in done.stdout


def test_graph_command_writes_svg(tmp_path: Path) -> None:
    out = tmp_path / "kinds.svg"
    done = run_cli("graph", fixture("kinds.py:workflow"), "--format", "svg", "-o", str(out),
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    root = ET.parse(out).getroot()
    assert len(_groups(root, "node")) == 12


def test_serve_without_the_hosting_extra_says_so(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['stepgraph.hosting'] = None; "
    call = f"from stepgraph.cli import main; raise SystemExit(main(['serve', {fixture('hello.py')!r}]))"
    done = subprocess.run(
        [sys.executable, "-c", hide + call],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: stepgraph serve needs the hosting extra: pip install 'stepgraph[hosting]' "
        "(missing module stepgraph.hosting)"
    ]


def test_serve_hands_the_workflow_to_the_hosting_server(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    argv = command("serve", fixture("hello.py"), "--port", "0", "--store", f"file://{tmp_path}/cp")
    with subprocess.Popen(argv, cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True) as proc:  # fmt: skip
        try:
            seen = read_until(proc.stderr, "stepgraph: dev UI at http://127.0.0.1:")
            ui = seen[-1].split("dev UI at ", 1)[1].split()[0]
            assert ui.endswith("/ui/")
            assert int(ui.removeprefix("http://127.0.0.1:").removesuffix("/ui/")) > 0  # port 0
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=20)
    assert proc.returncode == 0


def test_serve_on_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", fixture("hello.py:workflow"), "--port", str(port),
                       "--store", "memory:", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr
