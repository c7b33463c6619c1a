"""Black-box tests of ARCHITECTURE.md section 4, rules 1 and 7: where a sent message goes.

Every test builds a small graph through the public builder and observes only what
the public API reports (outputs, errors, status). Observers yield
`(executor_id, message)` so the outputs say who received what, in the order the
contract fixes (superstep, executor declaration order, yield order).
"""

import asyncio
from typing import Any

import pytest

import stepgraph as sg


class Sink(sg.Executor):
    """Accepts anything and yields `(executor_id, message)`."""

    @sg.handler
    async def on_any(self, message: object, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output((ctx.executor_id, message))


class IntSink(sg.Executor):
    """Accepts only `int` and yields `(executor_id, message)`."""

    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output((ctx.executor_id, message))


class StrSink(sg.Executor):
    """Accepts only `str` and yields `(executor_id, message)`."""

    @sg.handler
    async def on_str(self, message: str, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output((ctx.executor_id, message))


def run_outputs(wf: sg.Workflow, message: Any) -> list[Any]:
    result = asyncio.run(wf.run(message))
    assert result.status is sg.RunStatus.IDLE
    return list(result.outputs)


def run_failure(wf: sg.Workflow, message: Any) -> sg.ExecutorFailedError:
    async def main() -> sg.ExecutorFailedError:
        with pytest.raises(sg.ExecutorFailedError) as info:
            await wf.run(message)
        return info.value

    return asyncio.run(main())


# --------------------------------------------------------------------------- rule 1: supersteps


def test_message_sent_in_superstep_k_is_delivered_in_superstep_k_plus_1() -> None:
    seen: list[tuple[str, int, bool]] = []
    sender_done: list[bool] = []

    @sg.executor(id="a")
    async def a(n: int, ctx: sg.Context[int]) -> None:
        seen.append(("a", ctx.superstep, bool(sender_done)))
        await ctx.send(n + 1)
        # Give an engine that delivered inline every chance to run the receiver now.
        for _ in range(10):
            await asyncio.sleep(0)
        sender_done.append(True)

    @sg.executor(id="b")
    async def b(n: int, ctx: sg.Context[int]) -> None:
        seen.append(("b", ctx.superstep, bool(sender_done)))
        await ctx.send(n + 1)

    c = IntSink("c")
    wf = sg.WorkflowBuilder(start=a).add_chain([a, b, c]).build()
    assert run_outputs(wf, 1) == [("c", 3)]
    # b runs one superstep after a and only once a's handler has finished.
    assert seen == [("a", 1, False), ("b", 2, True)]


def test_send_travels_every_edge_whose_target_accepts_the_message_type() -> None:
    @sg.executor(id="src")
    async def src(n: int, ctx: sg.Context[int | str]) -> None:
        await ctx.send(n)
        await ctx.send(str(n))

    ints, strs, anys = IntSink("ints"), StrSink("strs"), Sink("anys")
    wf = sg.WorkflowBuilder(start=src).add_fan_out(src, [ints, strs, anys]).build()
    assert run_outputs(wf, 7) == [("ints", 7), ("strs", "7"), ("anys", 7), ("anys", "7")]


def test_when_conditions_select_the_edges_a_message_travels() -> None:
    @sg.executor(id="src")
    async def src(n: int, ctx: sg.Context[int]) -> None:
        for i in range(n):
            await ctx.send(i)

    evens, odds, small = IntSink("evens"), IntSink("odds"), IntSink("small")
    wf = (
        sg.WorkflowBuilder(start=src)
        .add_edge(src, evens, when=lambda m: m % 2 == 0)
        .add_edge(src, odds, when=lambda m: m % 2 == 1)
        .add_edge(src, small, when=lambda m: m < 2)
        .build()
    )
    assert run_outputs(wf, 4) == [
        ("evens", 0),
        ("evens", 2),
        ("odds", 1),
        ("odds", 3),
        ("small", 0),
        ("small", 1),
    ]


def test_condition_is_only_asked_about_messages_its_target_accepts() -> None:
    # "travels along every outgoing edge whose condition holds and whose target accepts
    # the message's type": a str never travels the int edge, so its int-typed condition
    # has no business being called with it (the reference engine checks type first).
    asked: list[Any] = []

    def positive(message: int) -> bool:
        asked.append(message)
        return message > 0

    @sg.executor(id="src")
    async def src(n: int, ctx: sg.Context[int | str]) -> None:
        await ctx.send(n)
        await ctx.send(str(n))

    wf = (
        sg.WorkflowBuilder(start=src)
        .add_edge(src, IntSink("ints"), when=positive)
        .add_edge(src, StrSink("strs"))
        .build()
    )
    assert run_outputs(wf, 3) == [("ints", 3), ("strs", "3")]
    assert asked == [3]


def test_every_condition_false_is_a_routing_error_raised_in_the_sender() -> None:
    caught: list[BaseException] = []

    @sg.executor(id="src")
    async def src(n: int, ctx: sg.Context[int]) -> None:
        try:
            await ctx.send(n)
        except BaseException as exc:
            caught.append(exc)
            raise

    wf = (
        sg.WorkflowBuilder(start=src)
        .add_edge(src, IntSink("pos"), when=lambda m: m > 0)
        .add_edge(src, IntSink("neg"), when=lambda m: m < 0)
        .build()
    )
    assert run_outputs(wf, 5) == [("pos", 5)]
    err = run_failure(wf, 0)
    assert isinstance(err.__cause__, sg.RoutingError)
    assert err.executor_id == "src"
    assert len(caught) == 1
    assert caught[0] is err.__cause__


def test_condition_exception_fails_the_run_with_the_original_as_cause() -> None:
    boom = ZeroDivisionError("predicate failed")

    def explode(message: int) -> bool:
        if message == 13:
            raise boom
        return True

    @sg.executor(id="src")
    async def src(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    wf = (
        sg.WorkflowBuilder(start=src)
        .add_edge(src, IntSink("always"))
        .add_edge(src, IntSink("guarded"), when=explode)
        .build()
    )
    assert run_outputs(wf, 1) == [("always", 1), ("guarded", 1)]
    err = run_failure(wf, 13)
    assert err.__cause__ is boom
    assert err.executor_id == "src"


def test_send_from_an_executor_without_outgoing_edges_is_a_routing_error() -> None:
    @sg.executor(id="a")
    async def a(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    @sg.executor(id="last")
    async def last(n: int, ctx: sg.Context[int, int]) -> None:
        await ctx.yield_output(n)
        if n > 1:
            await ctx.send(n)  # no edge leaves "last"

    wf = sg.WorkflowBuilder(start=a).add_edge(a, last).build()
    assert run_outputs(wf, 1) == [1]
    err = run_failure(wf, 2)
    assert isinstance(err.__cause__, sg.RoutingError)
    assert err.executor_id == "last"


def test_a_type_no_target_accepts_is_a_routing_error_not_a_silent_drop() -> None:
    @sg.executor(id="src")
    async def src(n: int, ctx: sg.Context[int | str]) -> None:
        await ctx.send(n if n >= 0 else str(n))

    wf = sg.WorkflowBuilder(start=src).add_edge(src, IntSink("ints")).build()
    assert run_outputs(wf, 3) == [("ints", 3)]
    err = run_failure(wf, -3)
    assert isinstance(err.__cause__, sg.RoutingError)
    assert err.executor_id == "src"


def test_start_executor_that_cannot_handle_the_input_raises_routing_error_at_call() -> None:
    wf = sg.WorkflowBuilder(start=IntSink("ints")).build()
    session = wf.session()
    with pytest.raises(sg.RoutingError):
        session.run("not an int")
    # The failed call took no guard: the session runs normally afterwards.
    result = asyncio.run(session.run(4))
    assert result.outputs == [("ints", 4)]


# --------------------------------------------------------------------------- to=


class _Forward(sg.Executor):
    @sg.handler
    async def on_int(self, message: int, ctx: sg.Context[int, Any]) -> None:
        await ctx.yield_output((ctx.executor_id, message))


def test_to_narrows_a_send_to_one_direct_successor() -> None:
    @sg.executor(id="src")
    async def src(message: int, ctx: sg.Context[int]) -> None:
        await ctx.send(message, to="right")
        await ctx.send(message + 1, to="left")
        await ctx.send(message + 2)

    left, right = IntSink("left"), IntSink("right")
    wf = sg.WorkflowBuilder(start=src).add_fan_out(src, [left, right]).build()
    assert run_outputs(wf, 10) == [("left", 11), ("left", 12), ("right", 10), ("right", 12)]


def test_to_narrowing_does_not_consult_the_conditions_of_other_edges() -> None:
    # to= narrows the send to one direct successor: the edge to "guarded" is not taken,
    # so its condition is not the sender's business for this message.
    asked: list[int] = []

    def explode(message: int) -> bool:
        asked.append(message)
        raise ZeroDivisionError("only for messages that travel this edge")

    @sg.executor(id="src")
    async def src(message: int, ctx: sg.Context[int]) -> None:
        await ctx.send(message, to="plain")

    wf = (
        sg.WorkflowBuilder(start=src)
        .add_edge(src, IntSink("guarded"), when=explode)
        .add_edge(src, IntSink("plain"))
        .build()
    )
    assert run_outputs(wf, 1) == [("plain", 1)]
    assert asked == []


@pytest.mark.parametrize("target", ["far", "nope", "src"])
def test_to_an_executor_that_is_not_a_direct_successor_is_a_routing_error(target: str) -> None:
    @sg.executor(id="src")
    async def src(message: int, ctx: sg.Context[int]) -> None:
        await ctx.send(message, to=target)

    left = _Forward("left")
    far = IntSink("far")
    wf = sg.WorkflowBuilder(start=src).add_edge(src, left).add_edge(left, far).build()
    err = run_failure(wf, 1)
    assert isinstance(err.__cause__, sg.RoutingError)
    assert err.executor_id == "src"


def test_to_a_successor_that_does_not_accept_the_type_is_a_routing_error() -> None:
    @sg.executor(id="src")
    async def src(message: int, ctx: sg.Context[int | str]) -> None:
        await ctx.send(str(message), to="ints")

    wf = sg.WorkflowBuilder(start=src).add_fan_out(src, [IntSink("ints"), StrSink("strs")]).build()
    err = run_failure(wf, 1)
    assert isinstance(err.__cause__, sg.RoutingError)


# --------------------------------------------------------------------------- switch


def _switch_workflow(*, default: bool = True, explode_on: int | None = None) -> sg.Workflow:
    def is_big(message: int) -> bool:
        if message == explode_on:
            raise ZeroDivisionError("predicate failed")
        return message > 10

    def is_mid(message: int) -> bool:
        return message > 5

    @sg.executor(id="src")
    async def src(message: int, ctx: sg.Context[int]) -> None:
        await ctx.send(message)

    big, mid, small = IntSink("big"), IntSink("mid"), IntSink("small")
    cases = [sg.Case(when=is_big, target=big), sg.Case(when=is_mid, target=mid)]
    builder = sg.WorkflowBuilder(start=src)
    if default:
        builder = builder.add_switch(src, cases, default=small)
    else:
        builder = builder.add_switch(src, cases)
    return builder.build()


@pytest.mark.parametrize(
    ("message", "expected"),
    [(20, [("big", 20)]), (7, [("mid", 7)]), (1, [("small", 1)])],
)
def test_switch_first_matching_case_wins_and_default_takes_the_rest(
    message: int, expected: list[Any]
) -> None:
    # 20 matches both cases: only the first one receives it.
    assert run_outputs(_switch_workflow(), message) == expected


def test_switch_without_default_and_no_match_is_a_routing_error() -> None:
    wf = _switch_workflow(default=False)
    assert run_outputs(wf, 8) == [("mid", 8)]
    err = run_failure(wf, 1)
    assert isinstance(err.__cause__, sg.RoutingError)


def test_switch_predicate_exception_fails_the_run_instead_of_routing_to_default() -> None:
    wf = _switch_workflow(explode_on=3)
    err = run_failure(wf, 3)
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert err.executor_id == "src"


def test_switch_skips_messages_its_targets_do_not_accept() -> None:
    # A str travels only the edge whose target accepts str; the int-only switch beside
    # it (cases and default alike) is not an edge the str can travel, so it is no error.
    @sg.executor(id="src")
    async def src(message: int, ctx: sg.Context[int | str]) -> None:
        await ctx.send(message)
        await ctx.send(str(message))

    big, small, strs = IntSink("big"), IntSink("small"), StrSink("strs")
    wf = (
        sg.WorkflowBuilder(start=src)
        .add_switch(src, [sg.Case(when=lambda m: m > 10, target=big)], default=small)
        .add_edge(src, strs)
        .build()
    )
    assert run_outputs(wf, 20) == [("big", 20), ("strs", "20")]
    assert run_outputs(wf, 1) == [("small", 1), ("strs", "1")]


# --------------------------------------------------------------------------- multi-select


def _multi_select_workflow(selector: Any) -> sg.Workflow:
    @sg.executor(id="src")
    async def src(message: int, ctx: sg.Context[int]) -> None:
        await ctx.send(message)

    a, b, c = IntSink("a"), IntSink("b"), IntSink("c")
    return sg.WorkflowBuilder(start=src).add_multi_select(src, [a, b, c], selector).build()


def test_multi_select_delivers_to_every_selected_target() -> None:
    calls: list[tuple[int, list[str]]] = []

    def selector(message: int, target_ids: Any) -> list[str]:
        calls.append((message, list(target_ids)))
        return {1: ["c"], 2: ["c", "a"], 3: ["a", "b", "c"]}[message]

    wf = _multi_select_workflow(selector)
    assert run_outputs(wf, 1) == [("c", 1)]
    assert run_outputs(wf, 2) == [("a", 2), ("c", 2)]
    assert run_outputs(wf, 3) == [("a", 3), ("b", 3), ("c", 3)]
    assert calls == [(1, ["a", "b", "c"]), (2, ["a", "b", "c"]), (3, ["a", "b", "c"])]


def test_empty_multi_select_is_a_routing_error() -> None:
    wf = _multi_select_workflow(lambda message, target_ids: [])
    err = run_failure(wf, 1)
    assert isinstance(err.__cause__, sg.RoutingError)
    assert err.executor_id == "src"


def test_multi_select_selector_exception_fails_the_run() -> None:
    boom = LookupError("selector failed")

    def selector(message: int, target_ids: Any) -> list[str]:
        raise boom

    err = run_failure(_multi_select_workflow(selector), 1)
    assert err.__cause__ is boom
    assert err.executor_id == "src"


def test_multi_select_of_an_id_that_is_not_a_target_fails_the_run() -> None:
    run_failure(_multi_select_workflow(lambda message, target_ids: ["src"]), 1)


# --------------------------------------------------------------------------- fan-in


class Collect(sg.Executor):
    """Fan-in target: yields `(superstep, items)` for each list it receives."""

    @sg.handler
    async def on_list(self, items: list[int], ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output((ctx.superstep, list(items)))


def test_fan_in_delivers_one_list_in_source_order_once_every_source_has_sent() -> None:
    @sg.executor(id="s")
    async def s(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    @sg.executor(id="quick")
    async def quick(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n * 10)  # superstep 2

    @sg.executor(id="detour")
    async def detour(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n + 1)  # superstep 2

    @sg.executor(id="late")
    async def late(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n * 100)  # superstep 3

    join = Collect("join")
    wf = (
        sg.WorkflowBuilder(start=s)
        .add_fan_out(s, [quick, detour])
        .add_edge(detour, late)
        .add_fan_in([late, quick], join)
        .build()
    )
    # join fires once, in superstep 4, with items in the order of the fan-in's sources.
    assert run_outputs(wf, 1) == [(4, [200, 10])]


@pytest.mark.parametrize("slow", ["first", "second"])
def test_fan_in_order_is_source_order_whatever_the_timing(slow: str) -> None:
    async def main() -> list[Any]:
        done = {"first": asyncio.Event(), "second": asyncio.Event()}
        other = "second" if slow == "first" else "first"

        @sg.executor(id="s")
        async def s(n: int, ctx: sg.Context[int]) -> None:
            await ctx.send(n)

        def make(name: str, value: int) -> sg.Executor:
            @sg.executor(id=name)
            async def source(n: int, ctx: sg.Context[int]) -> None:
                if name == slow:
                    await asyncio.wait_for(done[other].wait(), 5)
                await ctx.send(value)
                done[name].set()

            return source

        first, second = make("first", 1), make("second", 2)
        join = Collect("join")
        wf = (
            sg.WorkflowBuilder(start=s)
            .add_fan_out(s, [second, first])
            .add_fan_in([first, second], join)
            .build()
        )
        return list((await wf.run(0)).outputs)

    assert asyncio.run(main()) == [(3, [1, 2])]


def test_fan_in_edge_carries_only_the_item_type_of_the_targets_list() -> None:
    @sg.executor(id="s")
    async def s(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n)

    @sg.executor(id="mixed")
    async def mixed(n: int, ctx: sg.Context[int | str]) -> None:
        await ctx.send("text")  # only the str edge accepts this
        await ctx.send(n)

    @sg.executor(id="plain")
    async def plain(n: int, ctx: sg.Context[int]) -> None:
        await ctx.send(n + 1)

    join, strs = Collect("join"), StrSink("strs")
    wf = (
        sg.WorkflowBuilder(start=s)
        .add_fan_out(s, [mixed, plain])
        .add_edge(mixed, strs)
        .add_fan_in([mixed, plain], join)
        .build()
    )
    assert run_outputs(wf, 5) == [("strs", "text"), (3, [5, 6])]
