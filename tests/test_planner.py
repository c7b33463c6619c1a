"""The pure planner, table-driven: where a message goes and what the barrier delivers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from tests.helpers import relay

import stepgraph as sg
from stepgraph._planner import FanInSlot, Plan


class Ints(sg.Executor):
    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[None]) -> None: ...


class Strs(sg.Executor):
    @sg.handler
    async def on_str(self, s: str, ctx: sg.Context[None]) -> None: ...


class Lists(sg.Executor):
    @sg.handler
    async def on_list(self, items: list[int], ctx: sg.Context[None]) -> None: ...


def is_big(n: object) -> bool:
    return isinstance(n, int) and n > 10


def pick_all(m: object, ids: Sequence[str]) -> list[str]:
    return list(ids)


def pick_none(m: object, ids: Sequence[str]) -> list[str]:
    return []


def _plan(build: Any) -> Plan:
    return build(sg.WorkflowBuilder(start=relay("src"))).build().blueprint.plan


def _ids(plan: Plan, targets: list[Any]) -> list[str]:
    return [plan.ids[t] if isinstance(t, int) else f"fanin:{plan.ids[t.target]}" for t in targets]


CASES = [
    # (name, builder, message, to, expected target ids or an error match)
    ("type decides", lambda b: b.add_fan_out("src", [Ints(id="i"), Strs(id="s")]), 3, None, ["i"]),
    ("type decides str", lambda b: b.add_fan_out("src", [Ints(id="i"), Strs(id="s")]), "x", None, ["s"]),
    ("bool is an int", lambda b: b.add_edge("src", Ints(id="i")), True, None, ["i"]),
    ("condition true", lambda b: b.add_edge("src", Ints(id="i"), when=is_big), 11, None, ["i"]),
    ("condition false", lambda b: b.add_edge("src", Ints(id="i"), when=is_big), 1, None, "condition"),
    ("no edge", lambda b: b, 1, None, "no outgoing edge"),
    ("no handler", lambda b: b.add_edge("src", Ints(id="i")), "x", None, "no handler for str"),
    ("to narrows", lambda b: b.add_fan_out("src", [Ints(id="i"), Ints(id="j")]), 1, "j", ["j"]),
    ("to non-successor", lambda b: b.add_edge("src", relay("i")).add_edge("i", Ints(id="k")), 1, "k", "not a direct successor"),
    ("to unknown", lambda b: b.add_edge("src", Ints(id="i")), 1, "zz", "not an executor"),
    (
        "switch first match",
        lambda b: b.add_switch("src", [sg.Case(when=is_big, target=Ints(id="a")), sg.Case(when=is_big, target=Ints(id="b"))], default=Ints(id="d")),
        50, None, ["a"],
    ),
    (
        "switch default",
        lambda b: b.add_switch("src", [sg.Case(when=is_big, target=Ints(id="a"))], default=Ints(id="d")),
        5, None, ["d"],
    ),
    (
        "switch no default",
        lambda b: b.add_switch("src", [sg.Case(when=is_big, target=Ints(id="a"))]),
        5, None, "no switch case matched",
    ),
    ("multi-select all", lambda b: b.add_multi_select("src", [Ints(id="a"), Ints(id="b")], pick_all), 1, None, ["a", "b"]),
    ("multi-select none", lambda b: b.add_multi_select("src", [Ints(id="a")], pick_none), 1, None, "chose no target"),
    ("fan-in item", lambda b: b.add_fan_in(["src"], Lists(id="l")), 1, None, ["fanin:l"]),
    ("fan-in wrong item", lambda b: b.add_fan_in(["src"], Lists(id="l")), "x", None, "takes no str items"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "build", "message", "to", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_route(name: str, build: Any, message: object, to: str | None, expected: Any) -> None:
    plan = _plan(build)
    src = plan.index["src"]
    if isinstance(expected, str):
        with pytest.raises(sg.RoutingError, match=expected):
            plan.route(src, message, to)
    else:
        assert _ids(plan, plan.route(src, message, to)) == expected


def test_selector_naming_a_stranger_is_an_error() -> None:
    plan = _plan(lambda b: b.add_multi_select("src", [Ints(id="a")], lambda m, ids: ["b"]))
    with pytest.raises(sg.RoutingError, match="not one of its targets"):
        plan.route(plan.index["src"], 1)


def test_predicate_exception_propagates_to_sender() -> None:
    def boom(m: object) -> bool:
        raise ValueError("bad predicate")

    plan = _plan(
        lambda b: b.add_switch(
            "src", [sg.Case(when=boom, target=Ints(id="a"))], default=Ints(id="d")
        )
    )
    with pytest.raises(ValueError, match="bad predicate"):
        plan.route(plan.index["src"], 1)


def test_commit_joins_fan_in_in_source_order_and_keeps_extras() -> None:
    plan = (
        sg.WorkflowBuilder(start=relay("src"))
        .add_fan_out("src", [relay("a"), relay("b")])
        .add_fan_in(["a", "b"], Lists(id="l"))
        .build()
    ).blueprint.plan
    group = 0
    a, b, lst = plan.index["a"], plan.index["b"], plan.index["l"]
    slot_a, slot_b = FanInSlot(group, 0, lst), FanInSlot(group, 1, lst)
    queue: dict[int, list[Any]] = {}
    fanin: dict[int, list[list[Any]]] = {}
    plan.commit([(slot_b, 20), (slot_b, 21)], queue, fanin)
    assert queue == {}
    assert fanin == {group: [[], [20, 21]]}
    plan.commit([(slot_a, 10), (a, "direct")], queue, fanin)
    assert queue == {lst: [[10, 20]], a: ["direct"]}
    assert fanin == {group: [[], [21]]}
    plan.commit([(slot_a, 11)], queue, fanin)
    assert queue[lst] == [[10, 20], [11, 21]]
    assert fanin == {}
    assert b not in queue
