"""The functional API and declarative YAML served like graphs: one engine, three front doors."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from tests.hosting.support import in_process

import stepgraph as sg


@sg.step
async def shout(text: str) -> str:
    return text.upper()


@sg.workflow(name="echo")
async def echo(text: str) -> str:
    count = int(sg.context().state.get("turns", 0)) + 1
    sg.context().state.set("turns", count)
    return f"turn {count}: {await shout(text)}"


@sg.workflow(name="ask")
async def ask(text: str) -> str:
    ok = await sg.request(f"publish {text!r}?", response_type=bool)
    return f"published {text}" if ok else "withheld"


def test_a_functional_workflow_holds_a_conversation_over_the_responses_api(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        store = sg.SqliteCheckpointStore(tmp_path / "runs.db")
        async with in_process(echo, store=store) as (_, client):
            first = await client.responses.create(model="echo", input="tide")
            second = await client.responses.create(
                model="echo", input="moon", previous_response_id=first.id
            )
            assert [first.output_text, second.output_text] == ["turn 1: TIDE", "turn 2: MOON"]
        await store.aclose()

    asyncio.run(main())


def test_a_functional_request_is_answered_with_function_call_output() -> None:
    async def main() -> None:
        async with in_process(ask) as (_, client):
            paused = await client.responses.create(model="ask", input="notes")
            calls = [item for item in paused.output if item.type == "function_call"]
            assert len(calls) == 1, paused.output
            done = await client.responses.create(
                model="ask",
                previous_response_id=paused.id,
                input=[
                    {"type": "function_call_output", "call_id": calls[0].call_id, "output": "true"}
                ],
            )
            assert done.output_text == "published notes"

    asyncio.run(main())


def test_a_yaml_workflow_is_served(tmp_path: Path) -> None:
    (tmp_path / "yaml_parts.py").write_text(
        textwrap.dedent(
            """
            import stepgraph as sg

            @sg.executor(id="greet")
            async def greet(name: str, ctx: sg.Context[None, str]) -> None:
                await ctx.yield_output(f"hello {name}")
            """
        )
    )
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: greeter\nstart: greet\nexecutors:\n  greet: {use: 'yaml_parts:greet'}\n")

    async def main() -> None:
        wf = sg.load_workflow(flow)
        async with in_process(wf) as (_, client):
            reply = await client.responses.create(model="greeter", input="Ada")
            assert reply.output_text == "hello Ada"

    asyncio.run(main())
