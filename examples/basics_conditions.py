"""Conditional routing: edges with conditions, a switch, and a multi-select.

What it shows: `add_edge(src, dst, when=pred)` (the message travels only when
`pred(message)` holds), `add_switch(src, [sg.Case(when=..., target=...)],
default=...)` (the first matching case wins, else the default) and
`add_multi_select(src, targets, selector)` (the selector returns the target
ids to deliver to). One message travels along all three edge groups at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import stepgraph as sg


@dataclass(frozen=True)
class Order:
    id: int
    amount: float
    country: str
    notify: tuple[str, ...]  # "email", "sms"


class Intake(sg.Executor):
    @sg.handler
    async def on_order(self, order: Order, ctx: sg.Context[Order]) -> None:
        await ctx.send(order)  # travels along all three edge groups of `intake`


class Step(sg.Executor):
    """Yields one line saying what it did; `what` names the step."""

    def __init__(self, id: str, what: str) -> None:
        super().__init__(id=id)
        self.what = what

    @sg.handler
    async def on_order(self, order: Order, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(self.what)


def is_large(order: Order) -> bool:
    return order.amount > 1000


def channels(order: Order, target_ids: Sequence[str]) -> list[str]:
    return [t for t in target_ids if t in order.notify]


def build() -> sg.Workflow[Order]:
    intake = Intake(id="intake")
    return (
        sg.WorkflowBuilder[Order](start=intake)
        .add_edge(intake, Step("audit", "audit (large order)"), when=is_large)
        .add_switch(
            intake,
            [
                sg.Case(when=lambda o: o.country == "NL", target=Step("domestic", "ship by van")),
                sg.Case(
                    when=lambda o: o.country in {"DE", "FR", "BE"},
                    target=Step("eu", "ship by rail"),
                ),
            ],
            default=Step("world", "ship by air"),
        )
        .add_multi_select(intake, [Step("email", "email sent"), Step("sms", "sms sent")], channels)
        .build(name="conditions")
    )


async def main() -> None:
    workflow = build()
    for order in (
        Order(1, 40.0, "NL", ("email",)),
        Order(2, 2500.0, "DE", ("email", "sms")),
        Order(3, 99.0, "JP", ("sms",)),
    ):
        result = await workflow.run(order)
        print(f"OUTPUT order {order.id}:", " | ".join(result.outputs))


if __name__ == "__main__":
    asyncio.run(main())
