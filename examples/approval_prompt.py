"""Human in the loop from the terminal: an expense workflow that asks before paying.

What it shows: `ctx.request(payload, response_type=...)` pausing a run, the
session status `IDLE_WITH_PENDING_REQUESTS`, answers typed at a prompt and
delivered with `session.respond(...)` to a `@response_handler`, and an answer
given as plain JSON-like data (a dict) converted into the declared dataclass.
Answers may be piped in (`printf 'y\\nn\\n' | python examples/approval_prompt.py`).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import stepgraph as sg


@dataclass(frozen=True)
class Expense:
    who: str
    amount: float


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str = ""


class Policy(sg.Executor):
    """Pays small expenses at once; asks a person about large ones."""

    @sg.handler
    async def on_expense(self, e: Expense, ctx: sg.Context[None, str]) -> None:
        if e.amount <= 100:
            await ctx.yield_output(f"paid {e.who} {e.amount:.2f} (under the limit)")
        else:
            await ctx.request(e, response_type=Decision)

    @sg.response_handler
    async def on_decision(self, e: Expense, d: Decision, ctx: sg.Context[None, str]) -> None:
        verdict = "paid" if d.approved else "refused"
        await ctx.yield_output(f"{verdict} {e.who} {e.amount:.2f} {d.reason}".rstrip())


def ask(request: sg.Request) -> dict[str, object]:
    e: Expense = request.payload
    answer = input(f"approve {e.who}'s expense of {e.amount:.2f}? [y/n] ").strip().lower()
    print(answer)
    return {"approved": answer.startswith("y"), "reason": "(by a person)"}


async def main() -> None:
    workflow = sg.WorkflowBuilder[Expense](start=Policy(id="policy")).build(name="expenses")
    session = workflow.session("expenses-demo")
    for expense in (Expense("ana", 42.0), Expense("bo", 980.0), Expense("cy", 310.5)):
        result = await session.run(expense)
        for line in result.outputs:
            print("OUTPUT", line)
    print("status:", session.status.name)
    while session.pending_requests:
        request = session.pending_requests[0]
        try:
            answer = ask(request)
        except EOFError:
            print("no more answers on stdin; leaving the rest pending")
            break
        result = await session.respond({request.id: answer})  # a dict becomes a Decision
        for line in result.outputs:
            print("OUTPUT", line)
        print("status:", session.status.name)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
