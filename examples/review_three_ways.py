"""One demo written three ways: the graph API, the functional API and declarative YAML.

What it shows: the review flow of declarative_review.yaml (sign a text, grade
it, publish, send it to an editor agent, or reject it) as a `WorkflowBuilder`
graph, as an `@sg.workflow` function with `@sg.step` calls, and as the YAML
file; all three are ordinary `sg.Workflow`s, run on the same sessions, and
give the same outputs for the same inputs. Needs the `yaml` extra for the
third: pip install 'stepgraph[yaml]'.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from _review_parts import Draft, Graded, editor_client, grade, publish, reject, revise

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, ChatMessage

HERE = Path(__file__).parent
INSTRUCTIONS = "You are a terse editor."
TEXTS = (
    "Supersteps make agent workflows predictable, durable and fast",
    "Supersteps are neat",
    "Hi",
)


def as_graph() -> sg.Workflow[str]:
    """1. The graph API: the executors of _review_parts, wired with a switch."""
    draft = Draft("draft", author="Ada")
    editor = AgentExecutor(
        Agent("editor", editor_client(), instructions="You are a terse editor."),
        id="editor",
        stream=False,
    )
    return (
        sg.WorkflowBuilder[str](start=draft)
        .add_edge(draft, grade)
        .add_switch(
            grade,
            [sg.Case(lambda g: g.score >= 0.8, publish), sg.Case(lambda g: g.score >= 0.4, revise)],
            default=reject,
        )
        .add_edge(revise, editor)
        .build(name="review")
    )


# 2. The functional API: the same steps as one function; each step's result is recorded.
@sg.step
async def score(text: str) -> float:
    return min(1.0, len(text.split()) / 10)


@sg.step
async def edit(text: str) -> str:
    reply = await editor_client().get_response(
        [
            ChatMessage.system("You are a terse editor."),
            ChatMessage.user(f"Suggest one improvement to: {text}"),
        ]
    )
    return reply.message.text


@sg.workflow(name="review")
async def review(text: str) -> str:
    signed = f"{text} (by Ada)"
    graded = Graded(signed, await score(signed))
    if graded.score >= 0.8:
        return f"published ({graded.score:.1f}): {graded.text}"
    if graded.score >= 0.4:
        return await edit(graded.text)
    return f"rejected ({graded.score:.1f}): {graded.text}"


def as_yaml() -> sg.Workflow[str]:
    """3. Declarative: the graph of declarative_review.yaml."""
    return sg.load_workflow(HERE / "declarative_review.yaml")


def text_of(output: object) -> str:
    return str(getattr(output, "text", output))


async def main() -> None:
    results: dict[str, list[str]] = {}
    for way, wf in (("graph", as_graph()), ("functional", review), ("yaml", as_yaml())):
        outputs: list[str] = []
        for i, text in enumerate(TEXTS):
            result = await wf.session(f"{way}-{i}").run(text)
            outputs += [text_of(o) for o in result.outputs]
        results[way] = outputs
        print(f"{way:>10}: {outputs}")
    print("the three ways agree:", results["graph"] == results["functional"] == results["yaml"])


if __name__ == "__main__":
    asyncio.run(main())
