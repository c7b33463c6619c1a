"""Declarative workflows: every edge kind from YAML runs, errors name the line, round trips."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import stepgraph as sg
from stepgraph.declarative import Condition, Selector


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def outputs(wf: sg.Workflow[Any], value: Any) -> list[Any]:
    result = asyncio.run(wf.run(value))
    assert result.status is sg.RunStatus.IDLE
    return result.outputs


REVIEW = """
name: review
start: draft
executors:
  draft: {use: "decl_parts:Drafter", args: {prefix: D}}
  grade: {use: "decl_parts:grade"}
  publish: {use: "decl_parts:publish"}
  reject: {use: "decl_parts:reject"}
edges:
  - {from: draft, to: grade}
  - {from: grade, to: publish, when: "message.score >= 0.8"}
  - {from: grade, to: reject, when: "not message.score >= 0.8"}
"""


def test_the_brief_shape_loads_and_runs(tmp_path: Path) -> None:
    wf = sg.load_workflow(write(tmp_path, REVIEW))
    assert wf.name == "review"
    assert wf.executor_ids == ("draft", "grade", "publish", "reject")
    assert outputs(wf, "a long enough text") == ["published D: a long enough text"]
    assert outputs(wf, "short") == ["rejected D: short"]


def test_fan_out_and_fan_in(tmp_path: Path) -> None:
    wf = sg.load_workflow(
        write(
            tmp_path,
            """
        start: draft
        executors:
          draft: {use: "decl_parts:Drafter"}
          a: {use: "decl_parts:Label", args: {label: A}}
          b: {use: "decl_parts:Label", args: {label: B}}
          join: {use: "decl_parts:Join"}
        edges:
          - {from: draft, fan_out: [a, b]}
          - {fan_in: [b, a], to: join}
    """,
        )
    )
    assert outputs(wf, "x") == ["B draft: x | A draft: x"]
    kinds = [g.kind for g in wf.edges]
    assert kinds == ["fan_out", "fan_in"]


def test_switch_with_default_and_a_python_predicate(tmp_path: Path) -> None:
    wf = sg.load_workflow(
        write(
            tmp_path,
            """
        start: draft
        executors:
          draft: {use: "decl_parts:Drafter", args: {tags: [urgent]}}
          long: {use: "decl_parts:Label", args: {label: LONG}}
          urgent: {use: "decl_parts:Label", args: {label: URGENT}}
          other: {use: "decl_parts:Label", args: {label: OTHER}}
        edges:
          - from: draft
            switch:
              - {when: {use: "decl_parts:is_long"}, to: long}
              - {when: "'urgent' in message.tags and message.score < 0.5", to: urgent}
            default: other
    """,
        )
    )
    assert outputs(wf, "ten chars!") == ["LONG draft: ten chars!"]
    assert outputs(wf, "hi") == ["URGENT draft: hi"]


def test_multi_select_by_expression_and_by_function(tmp_path: Path) -> None:
    body = """
        start: draft
        executors:
          draft: {use: "decl_parts:Drafter", args: {tags: [b, c]}}
          a: {use: "decl_parts:Label", args: {label: A}}
          b: {use: "decl_parts:Label", args: {label: B}}
          c: {use: "decl_parts:Label", args: {label: C}}
        edges:
          - {from: draft, multi_select: [a, b, c], %s}
    """
    by_expr = sg.load_workflow(
        write(tmp_path, body % """select: "['a', 'c'] if message.score > 0.2 else 'b'" """)
    )
    assert outputs(by_expr, "abc") == ["A draft: abc", "C draft: abc"]
    assert outputs(by_expr, "a") == ["B draft: a"]
    by_fn = sg.load_workflow(write(tmp_path, body % 'selector: "decl_parts:pick"', "fn.yaml"))
    assert outputs(by_fn, "abc") == ["B draft: abc", "C draft: abc"]


def test_map_with_a_collector_and_a_chain(tmp_path: Path) -> None:
    wf = sg.load_workflow(
        write(
            tmp_path,
            """
        start: split
        executors:
          split: {use: "decl_parts:split"}
          shout: {use: "decl_parts:shout"}
          join: {use: "decl_parts:Join", args: {sep: "-"}}
        edges:
          - {from: split, map: shout, collect: join, max_concurrency: 2}
    """,
        )
    )
    assert outputs(wf, "one two three") == ["ONE-TWO-THREE"]
    chain = sg.load_workflow(
        write(
            tmp_path,
            """
        start: a
        executors:
          a: {use: "decl_parts:Label", args: {label: "1"}}
          b: {use: "decl_parts:Label", args: {label: "2"}}
          c: {use: "decl_parts:Label", args: {label: "3"}}
        edges:
          - chain: [a, b, c]
    """,
            "chain.yaml",
        )
    )
    assert outputs(chain, "go") == ["3 2 1 go"]


def test_conditions_read_the_senders_state(tmp_path: Path) -> None:
    wf = sg.load_workflow(
        write(
            tmp_path,
            """
        start: draft
        executors:
          draft: {use: "decl_parts:Drafter"}
          remember: {use: "decl_parts:remember"}
          publish: {use: "decl_parts:publish"}
          reject: {use: "decl_parts:reject"}
        edges:
          - {from: draft, to: remember}
          - {from: remember, to: publish, when: "state.approved == True"}
          - {from: remember, to: reject, when: "not state.approved and state.missing is None"}
    """,
        )
    )
    assert outputs(wf, "ok then") == ["published draft: ok then"]
    assert outputs(wf, "no") == ["rejected draft: no"]


def test_policies_error_routes_and_defaults(tmp_path: Path) -> None:
    wf = sg.load_workflow(
        write(
            tmp_path,
            """
        start: flaky
        max_supersteps: 7
        version: 2
        defaults: {timeout: 30}
        executors:
          flaky:
            use: "decl_parts:Flaky"
            retry: {max_attempts: 2, retry_on: ["builtins:TimeoutError"]}
    """,
        )
    )
    assert wf.max_supersteps == 7
    assert wf.version == "2"
    assert outputs(wf, "hi") == ["hi after 2 attempts"]
    routed = sg.load_workflow(
        write(
            tmp_path,
            """
        start: boom
        executors:
          boom: {use: "decl_parts:boom"}
          catch: {use: "decl_parts:catch"}
        error_routes:
          - {from: boom, to: catch}
    """,
            "routes.yaml",
        )
    )
    assert outputs(routed, "x") == ["caught ValueError from boom"]


def test_a_builtin_agent_with_client_and_tools(tmp_path: Path) -> None:
    from stepgraph.agents import AgentExecutor, AgentResponse

    wf = sg.load_workflow(
        write(
            tmp_path,
            """
        start: writer
        executors:
          writer:
            agent:
              instructions: Write one line.
              client: {use: "decl_parts:make_client", args: {reply: "A fine line."}}
              tools: ["decl_parts:word_count"]
            stream: false
    """,
        )
    )
    [ex] = wf.blueprint.prototypes
    assert isinstance(ex, AgentExecutor)
    assert not ex.stream
    assert list(ex.agent.tools) == ["word_count"]  # type: ignore[attr-defined]
    [response] = outputs(wf, "go")
    assert isinstance(response, AgentResponse)
    assert response.text == "A fine line."


# -- errors name the file and the line ------------------------------------------------------


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(sg.GraphError) as info:
        sg.load_workflow(path)
    return str(info.value)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "start: a\nexecutors:\n  a: {use: [unclosed\nedges: []\n")
    assert "flow.yaml, line 4" in msg
    assert "YAML syntax error" in msg


def test_a_schema_violation_names_the_line(tmp_path: Path) -> None:
    msg = load_error(
        tmp_path, REVIEW.replace("{from: draft, to: grade}", "{from: draft, too: grade}")
    )
    assert "flow.yaml, line 9" in msg
    assert "to" in msg
    msg = load_error(tmp_path, "start: a\nexecutors:\n  a: {use: nocolon}\n")
    assert "line 3" in msg
    assert "nocolon" in msg


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    msg = load_error(tmp_path, "start: a\nstart: b\nexecutors: {a: {use: 'decl_parts:grade'}}\n")
    assert "line 2" in msg
    assert "duplicate key 'start'" in msg


def test_an_unknown_import_path_names_the_line(tmp_path: Path) -> None:
    msg = load_error(tmp_path, REVIEW.replace("decl_parts:publish", "decl_parts:publisher"))
    assert "flow.yaml, line 6" in msg
    assert "decl_parts:publisher" in msg
    msg = load_error(tmp_path, REVIEW.replace("decl_parts:publish", "no_such_module_xyz:publish"))
    assert "line 6" in msg
    assert "no_such_module_xyz" in msg
    msg = load_error(tmp_path, REVIEW.replace("decl_parts:publish", "decl_parts:not_an_executor"))
    assert "line 6" in msg
    assert "not an Executor subclass" in msg


def test_an_executor_object_must_be_declared_under_its_id(tmp_path: Path) -> None:
    msg = load_error(tmp_path, REVIEW.replace("grade: {use", "grader: {use"))
    assert "line 5" in msg
    assert "'grade'" in msg


def test_an_unknown_executor_in_an_edge_names_the_line(tmp_path: Path) -> None:
    msg = load_error(
        tmp_path, REVIEW.replace("{from: grade, to: reject", "{from: grade, to: rejected")
    )
    assert "line 11" in msg
    assert "unknown executor 'rejected'" in msg


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        ("__import__('os').system('x')", "a call"),
        ("message.__class__", "'__class__'"),
        ("message.text.upper()", "a call"),
        ("(lambda: True)()", "a call"),
        ("lambda m: True", "a lambda"),
        ("message.gi_frame", "'gi_frame'"),
        ("open", "the name 'open'"),
        ("[x for x in message.tags]", "a comprehension"),
        ("message.score >=", "not valid"),
        ("message.score * 10 > 1", "arithmetic"),
    ],
)
def test_a_hostile_condition_is_rejected_at_load_time(
    tmp_path: Path, condition: str, why: str
) -> None:
    text = REVIEW.replace('"message.score >= 0.8"', repr(condition).replace("\\'", "''"))
    msg = load_error(tmp_path, text)
    assert "flow.yaml, line 10" in msg, msg
    assert why in msg, msg


def test_an_invalid_graph_names_the_file(tmp_path: Path) -> None:
    msg = load_error(tmp_path, REVIEW + "  - {from: publish, to: draft}\n")
    assert msg.startswith(f"{tmp_path / 'flow.yaml'}: invalid workflow"), msg
    assert "'publish' has an edge to 'draft'" in msg


# -- import paths beside the file ---------------------------------------------------------------


def test_import_paths_resolve_beside_the_yaml_file_first(tmp_path: Path) -> None:
    module = f"beside_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent("""
        import stepgraph as sg

        @sg.executor(id="hello")
        async def hello(text: str, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output("hello " + text)
    """)
    )
    wf = sg.load_workflow(
        write(
            tmp_path,
            f"""
        start: hello
        executors:
          hello: {{use: "{module}:hello"}}
    """,
        )
    )
    assert outputs(wf, "there") == ["hello there"]


# -- the condition language on its own ----------------------------------------------------------


def test_conditions_and_selectors_in_python() -> None:
    cond = Condition("message['a'].b in [1, 2] and -message['c'] < 0 or state.x")
    assert cond({"a": {"b": 2}, "c": 1}) is True
    assert cond({"a": {"b": 3}, "c": 1}) is False
    sel = Selector("{'x', 'y'}")
    assert sel(None, ["y", "x"]) == ["y", "x"]
    with pytest.raises(sg.RoutingError, match="must give a target id"):
        Selector("1")(None, ["a"])
    with pytest.raises(sg.RoutingError, match="failed: AttributeError"):
        Condition("message.nope")(object())


def test_a_python_builder_can_use_conditions_and_it_round_trips(tmp_path: Path) -> None:
    import decl_parts as p

    wf = (
        sg.WorkflowBuilder(start=p.Drafter(id="draft", prefix="P"))
        .add_edge("draft", p.grade)
        .add_edge("grade", p.publish, when=Condition("message.score >= 0.8"))
        .add_edge("grade", p.reject, when=Condition("message.score < 0.8"))
        .build(name="py")
    )
    again = sg.load_workflow(write(tmp_path, wf.to_yaml()))
    assert again.signature == wf.signature
    assert outputs(again, "long enough text") == ["published P: long enough text"]


# -- round trip ---------------------------------------------------------------------------------

EVERYTHING = """
name: everything
start: draft
max_supersteps: 20
run_timeout: 60
defaults: {timeout: 30}
executors:
  draft: {use: "decl_parts:Drafter", args: {prefix: D, tags: [b]}}
  grade: {use: "decl_parts:grade", retry: {max_attempts: 2, retry_on: ["builtins:TimeoutError"]}}
  publish: {use: "decl_parts:publish"}
  reject: {use: "decl_parts:reject"}
  a: {use: "decl_parts:Label", args: {label: A}}
  b: {use: "decl_parts:Label", args: {label: B}}
  join: {use: "decl_parts:Join"}
  split: {use: "decl_parts:split"}
  shout: {use: "decl_parts:shout"}
  writer:
    agent: {instructions: Be brief., client: {use: "decl_parts:make_client", args: {reply: ok}}}
    context_mode: last
  catch: {use: "decl_parts:catch"}
edges:
  - {from: draft, to: grade}
  - from: grade
    switch:
      - {when: "message.score >= 0.8", to: publish}
      - {when: {use: "decl_parts:is_long"}, to: publish}
    default: reject
  - {from: draft, fan_out: [a]}
  - {from: draft, multi_select: [b], select: "message.tags"}
  - {fan_in: [a, b], to: join}
  - {from: a, to: split}
  - {from: split, map: shout, collect: join, max_concurrency: 3}
  - {from: b, to: writer, when: "state.go"}
error_routes:
  - {from: grade, to: catch}
"""


def test_load_to_yaml_load_keeps_the_graph(tmp_path: Path) -> None:
    first = sg.load_workflow(write(tmp_path, EVERYTHING))
    text = first.to_yaml()
    second = sg.load_workflow(write(tmp_path, text, "again.yaml"))
    assert second.signature == first.signature
    assert second.describe() == first.describe()
    assert second.to_yaml() == text
    assert second.max_supersteps == 20
    assert second.run_timeout == 60
    assert [p.timeout for p in second.blueprint.policies] == [30] * 11
    assert "context_mode: last" in text
    assert "select: message.tags" in text


def test_to_yaml_names_a_lambda_condition() -> None:
    import decl_parts as p

    wf = (
        sg.WorkflowBuilder(start=p.Drafter(id="draft"))
        .add_edge("draft", p.publish, when=lambda d: d.score > 1)
        .build()
    )
    with pytest.raises(sg.GraphError, match=r"condition of edge draft -> publish is a lambda"):
        wf.to_yaml()


def test_to_yaml_names_a_part_that_is_not_importable() -> None:
    import decl_parts as p

    class Local(sg.Executor):
        @sg.handler
        async def on_draft(self, d: p.Draft, ctx: sg.Context[None, str]) -> None: ...

    wf = (
        sg.WorkflowBuilder(start=p.Drafter(id="draft")).add_edge("draft", Local(id="local")).build()
    )
    with pytest.raises(sg.GraphError, match=r"class of executor 'local'.*inside a function"):
        wf.to_yaml()
    odd = sg.WorkflowBuilder(start=p.Label(id="x", label=object())).build()  # type: ignore[arg-type]
    with pytest.raises(sg.GraphError, match=r"executor 'x': argument label=<object"):
        odd.to_yaml()


def test_importing_stepgraph_imports_neither_yaml_nor_jsonschema() -> None:
    code = (
        "import sys, stepgraph; "
        "assert not {'yaml', 'jsonschema', 'stepgraph.agents'} & set(sys.modules), sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_the_published_schema_is_valid_and_ships_with_the_package() -> None:
    from jsonschema import Draft202012Validator

    from stepgraph.declarative._source import schema

    Draft202012Validator.check_schema(schema())
    assert (Path(sg.__file__).parent / "declarative" / "schema.json").is_file()
