"""Mistakes a new user makes in the first hour are caught early, with a message that says what to do."""

from __future__ import annotations

import asyncio
import warnings

import pytest

import stepgraph as sg
from stepgraph._types import mismatch, specs_of


@sg.executor(id="sink")
async def sink(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(text)


def test_a_handler_annotated_to_return_a_value_warns_at_build() -> None:
    @sg.executor(id="echo")
    async def echo(text: str, ctx: sg.Context[None, str]) -> str:
        return text

    with pytest.warns(sg.GraphWarning, match=r"handler echo is annotated to return str") as got:
        wf = sg.WorkflowBuilder[str](start=echo).build()
    assert "ctx.yield_output(value)" in str(got[0].message)
    assert asyncio.run(wf.run("x")).outputs == []  # the value is indeed dropped


def test_a_method_handler_annotated_to_return_a_value_warns() -> None:
    class Echo(sg.Executor):
        @sg.handler
        async def on_text(self, text: str, ctx: sg.Context[str]) -> str:
            return text

    with pytest.warns(sg.GraphWarning, match=r"Echo\.on_text is annotated to return str"):
        sg.WorkflowBuilder[str](start=Echo(id="echo")).add_edge("echo", sink).build()


def test_handlers_returning_none_or_unannotated_do_not_warn() -> None:
    @sg.executor(id="quiet")
    async def quiet(text: str, ctx: sg.Context[str]):
        await ctx.send(text)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sg.WorkflowBuilder[str](start=quiet).add_edge(quiet, sink).build()


def test_a_bare_context_warns_that_edges_go_unchecked() -> None:
    @sg.executor(id="loose")
    async def loose(text: str, ctx: sg.Context) -> None:
        await ctx.send(text)

    with pytest.warns(sg.GraphWarning, match=r"handler loose annotates its context as a bare"):
        sg.WorkflowBuilder[str](start=loose).add_edge(loose, sink).build()


def test_context_as_the_first_parameter_fails_at_build() -> None:
    @sg.executor(id="backwards")
    async def backwards(ctx: sg.Context[None, str], text: str) -> None:
        await ctx.yield_output(text)

    with pytest.raises(sg.GraphError, match=r"backwards takes its context first") as got:
        sg.WorkflowBuilder[str](start=backwards).build()
    assert "(text: MessageType, ctx: Context[...])" in str(got.value)

    class Backwards(sg.Executor):
        @sg.handler
        async def on_text(self, ctx: sg.Context[None, str], text: str) -> None:
            await ctx.yield_output(text)

    with pytest.raises(sg.GraphError, match=r"Backwards\.on_text takes its context first"):
        sg.WorkflowBuilder[str](start=Backwards(id="b")).build()


class Upper(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str]) -> None:
        await ctx.send(text.upper())


def test_passing_the_class_instead_of_an_instance_says_so() -> None:
    with pytest.raises(sg.GraphError, match=r"pass an instance: Upper\(id=\.\.\.\)"):
        sg.WorkflowBuilder[str](start=Upper)
    with pytest.raises(sg.GraphError, match=r"got the class Upper"):
        sg.WorkflowBuilder[str](start=sink).add_edge(sink, Upper)


def test_an_undefined_annotation_is_named() -> None:
    @sg.executor(id="typo")
    async def typo(text: Missing, ctx: sg.Context[None, str]) -> None:  # noqa: F821
        await ctx.yield_output(str(text))

    with pytest.raises(sg.GraphError) as got:
        sg.WorkflowBuilder[str](start=typo).build()
    message = str(got.value)
    assert "'Missing'" in message
    assert "NameError: name 'Missing' is not defined" in message
    assert "'text'" in message


@sg.executor(id="total")
async def total(items: list[int], ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(str(sum(items)))


def test_a_list_with_a_wrong_item_names_the_item_and_its_type() -> None:
    table = total.handler_table()
    assert table.why_not([1, "two", 3]) == (
        "takes list[int], but in this list item 1 ('two') is str, not int"
    )
    assert table.why_not(3) == "has no handler for int"
    assert table.why_not([1, 2]) == "has no handler for list"  # never asked: it matches


def test_mismatch_names_keys_and_values_of_a_mapping() -> None:
    (spec,) = specs_of(dict[str, int])
    assert mismatch({"a": "x"}, spec) == "the value at 'a' is str, not int"
    assert mismatch({1: 1}, spec) == "the key 1 is int, not str"
    assert mismatch({"a": 1}, spec) is None


def test_a_sent_list_with_a_wrong_item_says_so_in_the_routing_error() -> None:
    @sg.executor(id="make")
    async def make(n: int, ctx: sg.Context[list[object]]) -> None:
        await ctx.send([1, "two", 3])

    async def main() -> None:
        wf = sg.WorkflowBuilder[int](start=make).add_edge(make, total).build()
        with pytest.raises(sg.ExecutorFailedError) as got:
            await wf.run(0)
        assert "total takes list[int], but in this list item 1 ('two') is str, not int" in str(
            got.value.__cause__
        )

    asyncio.run(main())
