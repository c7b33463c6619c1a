"""Serve a workflow over the OpenAI Responses API.

    stepgraph serve examples/hosting_app.py:workflow      # then open http://127.0.0.1:8000/ui/

Run directly, it does an offline round trip in process with the official
`openai` client: a turn, a second turn of the same conversation, and a
human-in-the-loop request answered with a `function_call_output`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import httpx2
import openai

import stepgraph as sg
from stepgraph.hosting import create_app


@dataclass(frozen=True)
class Refund:
    order: str
    amount: float


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str = ""


class Desk(sg.Executor):
    """Answers questions; `refund <order> <amount>` asks a person first."""

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str, str]) -> None:
        turns = int(ctx.state.get("turns", 0)) + 1
        ctx.state.set("turns", turns)
        if text.startswith("refund "):
            _, order, amount = text.split()
            await ctx.request(Refund(order, float(amount)), response_type=Decision)
        else:
            await ctx.send(f"#{turns} {text}")

    @sg.response_handler
    async def on_decision(self, r: Refund, d: Decision, ctx: sg.Context[str, str]) -> None:
        verdict = "refunded" if d.approved else f"refused ({d.reason})"
        await ctx.yield_output(f"{r.order}: {verdict} {r.amount:.2f}")


@sg.executor(id="polish")
async def polish(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"You said {text}")


workflow = (
    sg.WorkflowBuilder[str](start=Desk(id="desk")).add_edge("desk", polish).build(name="desk")
)


async def demo() -> None:
    app = create_app(workflow)  # in-memory store; `stepgraph serve` uses SQLite
    async with app.router.lifespan_context(app):
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://app")
        client = openai.AsyncOpenAI(base_url="http://app/v1", api_key="demo", http_client=http)
        first = await client.responses.create(model="desk", input="hello")
        print("OUTPUT", first.output_text)
        second = await client.responses.create(
            model="desk", input="how are you", previous_response_id=first.id
        )
        print("OUTPUT", second.output_text)
        ask = await client.responses.create(
            model="desk", input="refund A-17 129", previous_response_id=second.id
        )
        call = ask.output[0]
        assert call.type == "function_call"
        print("request:", call.name, call.arguments)
        done = await client.responses.create(
            model="desk",
            input=[
                {
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": json.dumps({"approved": True}),
                }
            ],
            previous_response_id=ask.id,
        )
        print("OUTPUT", done.output_text)
        await client.close()


if __name__ == "__main__":
    asyncio.run(demo())
