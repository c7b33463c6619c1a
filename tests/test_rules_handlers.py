"""Black-box tests of ARCHITECTURE.md section 4, rule 10 (and section 2): handler choice.

The handler whose annotated type is the message's class or its nearest base in the
MRO wins, never declaration or alphabetical order. Handler names below are chosen so
that alphabetical and declaration order both point at the wrong handler.
"""

import asyncio
import warnings
from typing import Any

import pytest

import stepgraph as sg


class Animal:
    pass


class Dog(Animal):
    pass


class Puppy(Dog):
    pass


class Cat(Animal):
    pass


def outputs(wf: sg.Workflow, *messages: Any) -> list[Any]:
    async def main() -> list[Any]:
        session = wf.session()
        collected: list[Any] = []
        for message in messages:
            result = await session.run(message)
            collected.extend(result.outputs)
        return collected

    return asyncio.run(main())


class ObjectAndInt(sg.Executor):
    # Declared first and alphabetically first: must still lose to the int handler.
    @sg.handler
    async def a_any(self, message: object, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(("object", message))

    @sg.handler
    async def z_int(self, message: int, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(("int", message))


def test_int_goes_to_int_handler_str_to_object_and_bool_to_int() -> None:
    wf = sg.WorkflowBuilder(start=ObjectAndInt("h")).build()
    got = outputs(wf, 1, "s", True, 2.5)
    assert got == [("int", 1), ("object", "s"), ("int", True), ("object", 2.5)]
    assert type(got[2][1]) is bool


def test_handler_choice_is_the_same_for_messages_sent_by_another_executor() -> None:
    @sg.executor(id="src")
    async def src(message: str, ctx: sg.Context[object]) -> None:
        await ctx.send(1)
        await ctx.send("s")
        await ctx.send(True)

    wf = sg.WorkflowBuilder(start=src).add_edge(src, ObjectAndInt("h")).build()
    assert outputs(wf, "go") == [("int", 1), ("object", "s"), ("int", True)]


class Zoo(sg.Executor):
    @sg.handler
    async def a_object(self, message: object, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("object")

    @sg.handler
    async def b_animal(self, message: Animal, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("animal")

    @sg.handler
    async def c_dog(self, message: Dog, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("dog")

    @sg.handler
    async def d_bool(self, message: bool, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("bool")


def test_nearest_base_in_the_mro_wins() -> None:
    wf = sg.WorkflowBuilder(start=Zoo("zoo")).build()
    got = outputs(wf, Puppy(), Dog(), Cat(), Animal(), 3, True)
    assert got == ["dog", "dog", "animal", "animal", "object", "bool"]


class UnionHandlers(sg.Executor):
    @sg.handler
    async def a_object(self, message: object, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("object")

    @sg.handler
    async def b_number_or_text(self, message: int | str, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("int|str")

    @sg.handler
    async def c_bool(self, message: bool, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("bool")


def test_union_annotation_counts_for_each_member() -> None:
    wf = sg.WorkflowBuilder(start=UnionHandlers("u")).build()
    assert outputs(wf, 3, "x", True, 2.5) == ["int|str", "int|str", "bool", "object"]


class ListHandlers(sg.Executor):
    @sg.handler
    async def a_object(self, message: object, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("object")

    @sg.handler
    async def b_strs(self, message: list[str], ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("list[str]")

    @sg.handler
    async def c_ints(self, message: list[int], ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output("list[int]")


def test_generic_container_matches_origin_then_items() -> None:
    wf = sg.WorkflowBuilder(start=ListHandlers("l")).build()
    got = outputs(wf, [1, 2], ["a", "b"], [1.5], (1, 2))
    assert got == ["list[int]", "list[str]", "object", "object"]


class Explicit(sg.Executor):
    @sg.handler(input=int)
    async def on_message(self, message: str, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(("explicit", message))


def test_handler_input_argument_overrides_the_annotation() -> None:
    wf = sg.WorkflowBuilder(start=Explicit("e")).build()
    session = wf.session()
    with pytest.raises(sg.RoutingError):
        session.run("a str is not accepted")
    assert asyncio.run(session.run(5)).outputs == [("explicit", 5)]


def _build_duplicate_handlers() -> sg.Workflow:
    class Duplicate(sg.Executor):
        @sg.handler
        async def first(self, message: int, ctx: sg.Context[None, Any]) -> None:
            await ctx.yield_output(1)

        @sg.handler
        async def second(self, message: int, ctx: sg.Context[None, Any]) -> None:
            await ctx.yield_output(2)

    return sg.WorkflowBuilder(start=Duplicate("dup")).build()


def test_two_handlers_for_the_same_type_are_a_graph_error() -> None:
    with pytest.raises(sg.GraphError):
        _build_duplicate_handlers()


def test_graph_error_is_also_a_type_error() -> None:
    assert issubclass(sg.GraphError, TypeError)
    assert issubclass(sg.GraphError, sg.WorkflowError)


# --------------------------------------------------------------------------- build-time edges


class Sends(sg.Executor):
    """Start executor whose Context declares that it sends `Animal`."""

    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[Animal]) -> None:
        await ctx.send(Dog())


class SendsDog(sg.Executor):
    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[Dog]) -> None:
        await ctx.send(Puppy())


class TakesDog(sg.Executor):
    @sg.handler
    async def on_dog(self, message: Dog, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(type(message).__name__)


class TakesAnimal(sg.Executor):
    @sg.handler
    async def on_animal(self, message: Animal, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(type(message).__name__)


class TakesStr(sg.Executor):
    @sg.handler
    async def on_str(self, message: str, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(message)


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (Sends, TakesDog, ["Dog"]),  # target type is a subclass of the sent type
        (SendsDog, TakesAnimal, ["Puppy"]),  # target type is a superclass of the sent type
    ],
)
def test_edge_is_valid_when_sent_and_accepted_types_are_related(
    source: type[sg.Executor], target: type[sg.Executor], expected: list[str]
) -> None:
    wf = sg.WorkflowBuilder(start=source("src")).add_edge("src", target("dst")).build()
    assert outputs(wf, 1) == expected


def test_edge_along_which_nothing_can_be_accepted_is_a_graph_error() -> None:
    builder = sg.WorkflowBuilder(start=Sends("src")).add_edge("src", TakesStr("dst"))
    with pytest.raises(sg.GraphError):
        builder.build()


def test_unreachable_executor_warns_with_graph_warning() -> None:
    builder = (
        sg.WorkflowBuilder(start=SendsDog("src"))
        .add_edge("src", TakesAnimal("dst"))
        .add_edge(SendsDog("island"), "dst")
    )
    with pytest.warns(sg.GraphWarning):
        builder.build()


def test_reachable_graph_builds_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sg.WorkflowBuilder(start=SendsDog("src")).add_edge("src", TakesAnimal("dst")).build()
