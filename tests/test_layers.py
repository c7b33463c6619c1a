"""Layers: adapters use public names only, the engine never imports the agents layer, and
capabilities are protocols checked by class, not `getattr` probes.
"""

from __future__ import annotations

import ast
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stepgraph as sg
from stepgraph import agents
from stepgraph._clock import sleep
from stepgraph._executor import is_stateful
from stepgraph.loading import import_file
from stepgraph.stores import (
    FileCheckpointStore,
    LeaseStore,
    MemoryCheckpointStore,
    SqliteCheckpointStore,
    lease_store,
)
from stepgraph.testing import ManualClock, SleepingClock

SRC = Path(sg.__file__).parent


def _imports(path: Path, *, top_level_only: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, `from m import n` as `m.n`."""
    package = ".".join(("stepgraph", *path.relative_to(SRC).parent.parts))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes: list[ast.AST] = []
    if top_level_only:  # module level, `if TYPE_CHECKING:` blocks included
        for node in tree.body:
            nodes.extend(ast.walk(node) if isinstance(node, ast.If) else [node])
    else:
        nodes = list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


@pytest.mark.parametrize("adapter", ["cli", "hosting"])
def test_adapters_import_no_private_module_of_another_package(adapter: str) -> None:
    own = f"stepgraph.{adapter}."
    bad: list[str] = []
    for path in sorted((SRC / adapter).rglob("*.py")):
        for line, name in _imports(path):
            parts = name.split(".")
            if parts[0] != "stepgraph" or name.startswith(own):
                continue
            if any(p.startswith("_") for p in parts[1:]):
                bad.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_engine_imports_the_agents_layer_only_when_asked_to() -> None:
    found = [
        f"_workflow.py:{line} imports {name}"
        for line, name in _imports(SRC / "_workflow.py", top_level_only=True)
        if name == "stepgraph.agents" or name.startswith("stepgraph.agents.")
    ]
    assert not found, "\n".join(found)


def test_as_agent_is_reachable_from_agents_and_from_the_workflow() -> None:
    class Echo(sg.Executor):
        @sg.handler
        async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output(text)

    wf = sg.WorkflowBuilder[str](start=Echo(id="echo")).build(name="echoes")
    agent = agents.as_agent(wf, description="repeats")
    assert isinstance(agent, agents.WorkflowAgent)
    assert (agent.name, agent.description, agent.workflow) == ("echoes", "repeats", wf)
    store = MemoryCheckpointStore()
    same = wf.as_agent("named", description="d", store=store)
    assert isinstance(same, agents.WorkflowAgent)
    assert (same.name, same.description, same.store) == ("named", "d", store)
    assert asyncio.run(same.run("hi")).text == "hi"


def test_lease_store_is_decided_by_the_class(tmp_path: Path) -> None:
    sqlite = SqliteCheckpointStore(tmp_path / "x.db")
    for leasing in (sqlite, FileCheckpointStore(tmp_path / "f")):
        assert lease_store(leasing) is leasing
        assert isinstance(leasing, LeaseStore)
    for other in (MemoryCheckpointStore(), None, object()):
        assert lease_store(other) is None

    class Delegating:  # has the methods on the instance only: not a lease store
        def __init__(self) -> None:
            self.acquire = self.renew = self.release = sqlite.acquire

    assert lease_store(Delegating()) is None


def test_stateful_executors_define_both_methods() -> None:
    class Both(sg.Executor):
        async def snapshot(self) -> int:
            return 1

        async def restore(self, data: Any) -> None:
            pass

    class OnlySnapshot(sg.Executor):
        async def snapshot(self) -> int:
            return 1

    class Neither(sg.Executor):
        pass

    assert is_stateful(Both(id="b"))
    assert isinstance(Both(id="b"), sg.StatefulExecutor)
    assert not is_stateful(OnlySnapshot(id="o"))
    assert not is_stateful(Neither(id="n"))


def test_a_sleeping_clock_sleeps_on_its_own_time() -> None:
    clock = ManualClock()
    assert isinstance(clock, SleepingClock)
    start = clock()
    asyncio.run(sleep(clock, 90))
    assert (clock() - start).total_seconds() == 90
    asyncio.run(sleep(clock, 0))
    assert (clock() - start).total_seconds() == 90
    assert not isinstance(lambda: start, SleepingClock)


def test_import_file_names_the_module_after_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    app = tmp_path / "my-plumbing-app.py"
    app.write_text("import helper_for_plumbing_app as helper\nVALUE = helper.X\n")
    (tmp_path / "helper_for_plumbing_app.py").write_text("X = 42\n")
    try:
        module = import_file(app)
        assert module.__name__ == "my_plumbing_app"
        assert module.VALUE == 42  # its directory is on sys.path
        assert import_file(str(app)) is module  # not run twice
    finally:
        for name in ("my_plumbing_app", "helper_for_plumbing_app"):
            sys.modules.pop(name, None)


def test_import_file_never_shadows_and_forgets_a_failed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    shadow = tmp_path / "json.py"
    shadow.write_text("NAME = __name__\n")
    try:
        assert import_file(shadow).NAME == "stepgraph_target_json"
    finally:
        sys.modules.pop("stepgraph_target_json", None)
    broken = tmp_path / "broken_plumbing_app.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="boom"):
        import_file(broken)
    assert "broken_plumbing_app" not in sys.modules
    with pytest.raises(FileNotFoundError, match="no such file"):
        import_file(tmp_path / "missing.py")
    with pytest.raises(FileNotFoundError):
        import_file(tmp_path)
