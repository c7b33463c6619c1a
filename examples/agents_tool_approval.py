"""An agent whose refund tool needs a person's approval, surviving a restart.

What it shows: tools described from type hints and docstrings, `@tool(approval_required=True)`
pausing the workflow with an `ApprovalRequest`, the approval given through a new
session object over the same SQLite file, and the tool running exactly once.
Offline with a scripted model; set OPENAI_API_KEY or OPENAI_BASE_URL for a real one.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

from _models import model

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    ChatMessage,
    FunctionCall,
    FunctionResult,
    ToolSpec,
    tool,
)
from stepgraph.stores.sqlite import SqliteCheckpointStore

REFUNDS: list[str] = []


def lookup_order(order_id: str) -> dict[str, object]:
    """Look an order up.

    Args:
        order_id: the order number, like "A-17".
    """
    return {"order_id": order_id, "amount": 129.0, "status": "delivered"}


@tool(approval_required=True)
def refund(order_id: str, amount: float) -> str:
    """Refund an order (a person must approve).

    Args:
        order_id: the order to refund.
        amount: how much to refund.
    """
    REFUNDS.append(order_id)
    return f"refunded {amount:.2f} for {order_id}"


def support_script(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> object:
    results = [c for m in messages for c in m.contents if isinstance(c, FunctionResult)]
    if not results:
        return FunctionCall("", "lookup_order", {"order_id": "A-17"})
    if len(results) == 1:
        return FunctionCall(
            "", "refund", {"order_id": "A-17", "amount": results[0].result["amount"]}
        )
    last = results[-1]
    return f"Done: {last.result}" if last.error is None else f"Sorry, no refund: {last.error}"


def build() -> sg.Workflow[str]:
    agent = Agent(
        "support",
        model(support_script),  # type: ignore[arg-type]
        instructions="Help with orders. Refund delivered orders when asked.",
        tools=[lookup_order, refund],
    )
    return sg.WorkflowBuilder[str](start=AgentExecutor(agent)).build(name="support")


async def main() -> None:
    db = Path(tempfile.mkdtemp()) / "support.db"
    async with SqliteCheckpointStore(db) as store:
        session = build().session("ticket-9", store=store)
        result = await session.run("Please refund order A-17.")
        (request,) = result.pending_requests
        call = request.payload.call
        print(f"approval needed: {call.name}({call.arguments}) -> status {result.status.name}")

    async with SqliteCheckpointStore(db) as store:  # a restart: new objects, same file
        session = build().session("ticket-9", store=store)
        result = await session.respond({request.id: {"approved": True, "reason": "policy ok"}})
        print("OUTPUT", result.outputs[0].text)
    print("refunds made:", REFUNDS)


if __name__ == "__main__":
    asyncio.run(main())
