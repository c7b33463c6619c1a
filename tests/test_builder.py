"""Build-time validation: every invalid graph raises GraphError naming what is wrong."""

from __future__ import annotations

import warnings

import pytest
from tests.helpers import relay, sink

import stepgraph as sg


class Text(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str]) -> None:
        await ctx.send(text)


class Number(sg.Executor):
    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)


class Silent(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(text)


class Joiner(sg.Executor):
    @sg.handler
    async def on_list(self, items: list[str], ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(",".join(items))


def test_graph_error_is_also_type_error() -> None:
    with pytest.raises(TypeError):
        sg.WorkflowBuilder(start="nowhere").build()


def test_unknown_start() -> None:
    with pytest.raises(sg.GraphError, match="start executor 'nowhere'"):
        sg.WorkflowBuilder(start="nowhere").build()


def test_edge_to_unknown_executor_is_named() -> None:
    with pytest.raises(sg.GraphError, match="unknown executor 'ghost'"):
        sg.WorkflowBuilder(start=Text(id="a")).add_edge("a", "ghost").build()


def test_duplicate_ids_of_different_objects() -> None:
    with pytest.raises(sg.GraphError, match="duplicate executor id 'a'"):
        sg.WorkflowBuilder(start=Text(id="a")).add_edge("a", Text(id="a")).build()


def test_same_object_twice_is_fine() -> None:
    a, b = Text(id="a"), Silent(id="b")
    wf = sg.WorkflowBuilder(start=a).add_edge(a, b).add_edge(a, b, when=lambda m: True).build()
    assert wf.executor_ids == ("a", "b")


def test_incompatible_edge_names_executors_and_types() -> None:
    with pytest.raises(sg.GraphError) as info:
        sg.WorkflowBuilder(start=Text(id="t")).add_edge("t", Number(id="n")).build()
    msg = str(info.value)
    assert "'t' -> 'n'" in msg
    assert "str" in msg
    assert "int" in msg


def test_edge_from_executor_that_sends_nothing() -> None:
    with pytest.raises(sg.GraphError, match="send nothing"):
        sg.WorkflowBuilder(start=Silent(id="s")).add_edge("s", Text(id="t")).build()


def test_subclass_and_superclass_edges_are_compatible() -> None:
    class Animal: ...

    class Dog(Animal): ...

    @sg.executor(id="src")
    async def src(x: str, ctx: sg.Context[Animal]) -> None: ...

    @sg.executor(id="dst")
    async def dst(x: Dog, ctx: sg.Context[None]) -> None: ...

    sg.WorkflowBuilder(start=src).add_edge(src, dst).build()


def test_executor_without_handlers() -> None:
    class Empty(sg.Executor):
        pass

    with pytest.raises(sg.GraphError, match="no handlers"):
        sg.WorkflowBuilder(start=Empty(id="e")).build()


def test_two_handlers_for_one_type() -> None:
    class Twice(sg.Executor):
        @sg.handler
        async def a(self, x: int, ctx: sg.Context[None]) -> None: ...

        @sg.handler
        async def b(self, x: int, ctx: sg.Context[None]) -> None: ...

    with pytest.raises(sg.GraphError, match="both accept int"):
        sg.WorkflowBuilder(start=Twice(id="t")).build()


def test_sync_method_handler_is_refused() -> None:
    class Sync(sg.Executor):
        @sg.handler
        def a(self, x: int, ctx: sg.Context[None]) -> None: ...

    with pytest.raises(sg.GraphError, match="async def"):
        sg.WorkflowBuilder(start=Sync(id="s")).build()


def test_unannotated_message_parameter() -> None:
    class Bare(sg.Executor):
        @sg.handler
        async def a(self, x, ctx) -> None: ...  # type: ignore[no-untyped-def]

    with pytest.raises(sg.GraphError, match=r"@handler\(input=T\)"):
        sg.WorkflowBuilder(start=Bare(id="b")).build()


def test_handler_input_override() -> None:
    class Over(sg.Executor):
        @sg.handler(input=int)
        async def a(self, x, ctx: sg.Context[None, int]) -> None:  # type: ignore[no-untyped-def]
            await ctx.yield_output(x * 2)

    wf = sg.WorkflowBuilder(start=Over(id="o")).build()
    with pytest.raises(sg.RoutingError):
        wf.run("not an int")


def test_fan_in_target_needs_a_list_handler() -> None:
    with pytest.raises(sg.GraphError, match="no handler for a list"):
        sg.WorkflowBuilder(start=Text(id="a")).add_fan_in(["a"], Silent(id="s")).build()


def test_fan_in_item_type_checked() -> None:
    with pytest.raises(sg.GraphError, match="fan-in items of 'j'"):
        sg.WorkflowBuilder(start=Number(id="n")).add_fan_in(["n"], Joiner(id="j")).build()


def test_fan_in_duplicate_source() -> None:
    with pytest.raises(sg.GraphError, match="twice"):
        sg.WorkflowBuilder(start=Text(id="a")).add_fan_in(["a", "a"], Joiner(id="j")).build()


def test_switch_misuse() -> None:
    b = sg.WorkflowBuilder(start=Text(id="a"))
    with pytest.raises(sg.GraphError, match="at least one Case"):
        b.add_switch("a", [])
    with pytest.raises(sg.GraphError, match=r"sg\.Case"):
        b.add_switch("a", [("x", "y")])  # type: ignore[list-item]


def test_multi_select_misuse() -> None:
    b = sg.WorkflowBuilder(start=Text(id="a"))
    with pytest.raises(sg.GraphError, match="callable selector"):
        b.add_multi_select("a", [Silent(id="s")], "nope")  # type: ignore[arg-type]


def test_duplicate_unconditional_edge() -> None:
    with pytest.raises(sg.GraphError, match="duplicate edge"):
        sg.WorkflowBuilder(start=Text(id="a")).add_edge("a", Silent(id="s")).add_edge(
            "a", "s"
        ).build()


def test_unreachable_executor_warns() -> None:
    with pytest.warns(sg.GraphWarning, match=r"\['island'\]"):
        sg.WorkflowBuilder(start=Text(id="a")).add_edge("a", Silent(id="s")).add_edge(
            Text(id="island"), "s"
        ).build()


def test_reachable_graph_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sg.WorkflowBuilder(start=Text(id="a")).add_edge("a", Silent(id="s")).build()


def test_bad_max_supersteps() -> None:
    with pytest.raises(sg.GraphError, match="max_supersteps"):
        sg.WorkflowBuilder(start=Silent(id="s")).build(max_supersteps=0)


def test_executor_without_super_init() -> None:
    class NoInit(sg.Executor):
        def __init__(self) -> None:
            pass

        @sg.handler
        async def a(self, x: int, ctx: sg.Context[None]) -> None: ...

    with pytest.raises(sg.GraphError, match=r"super\(\).__init__"):
        sg.WorkflowBuilder(start=NoInit())


def test_declaration_order_is_first_seen() -> None:
    wf = (
        sg.WorkflowBuilder(start=relay("a"))
        .add_edge("a", relay("c"))
        .add_edge("a", relay("b"))
        .add_edge("b", sink("z"))
        .add_edge("c", "z")
        .build()
    )
    assert wf.executor_ids == ("a", "c", "b", "z")


def _pipeline(pred_name: str) -> sg.Workflow:
    def yes(m: object) -> bool:
        return True

    def no(m: object) -> bool:
        return False

    pred = yes if pred_name == "yes" else no
    return sg.WorkflowBuilder(start=relay("a")).add_edge("a", sink("b"), when=pred).build()


def test_signature_is_stable_and_sensitive() -> None:
    assert _pipeline("yes").signature == _pipeline("yes").signature
    assert _pipeline("yes").signature != _pipeline("no").signature
    assert len(_pipeline("yes").signature) == 64
    unconditional = sg.WorkflowBuilder(start=relay("a")).add_edge("a", sink("b")).build()
    fan_out = sg.WorkflowBuilder(start=relay("a")).add_fan_out("a", [sink("b")]).build()
    assert unconditional.signature != fan_out.signature


def test_graph_pictures_show_every_edge_kind() -> None:
    def is_long(m: object) -> bool:
        return len(str(m)) > 3

    def pick(m: object, ids: object) -> list[str]:
        return ["x"]

    wf = (
        sg.WorkflowBuilder(start=relay("a"))
        .add_edge("a", relay("b"), when=is_long)
        .add_switch("b", [sg.Case(when=is_long, target=relay("c"))], default=relay("d"))
        .add_fan_in(["c", "d"], Joiner(id="j"))
        .add_multi_select("a", [sink("x"), sink("y")], pick)
        .build()
    )
    mermaid = wf.to_mermaid()
    assert mermaid.startswith("flowchart TD")
    assert '-.->|"when is_long"| n_b' in mermaid
    assert '|"case 1: is_long"| n_c' in mermaid
    assert '|"default"| n_d' in mermaid
    assert "((join))" in mermaid
    assert '==>|"list"| n_j' in mermaid
    assert '|"select pick"| n_x' in mermaid
    dot = wf.to_dot()
    assert dot.startswith('digraph "')
    assert '"a" -> "b" [style=dashed, label="when is_long"]' in dot
    assert '"__join2" -> "j"' in dot


def test_local_classes_resolve_under_future_annotations() -> None:
    class Ping: ...

    class Pong(Ping): ...

    class Bare(sg.Executor):
        @sg.handler
        async def on_ping(self, p: Ping, ctx: sg.Context[Pong]) -> None:
            await ctx.send(Pong())

    class WithArgs(sg.Executor):
        @sg.handler()
        async def on_pong(self, p: Pong, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output(type(p).__name__)

    wf = sg.WorkflowBuilder(start=Bare(id="a")).add_edge("a", WithArgs(id="b")).build()
    import asyncio

    assert asyncio.run(wf.run(Ping())).outputs == ["Pong"]
