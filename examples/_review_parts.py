"""The Python parts of declarative_review.yaml: executors and a scripted model client.

The YAML file names them by import path (`_review_parts:Draft`); stepgraph
finds this module beside the YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass

import stepgraph as sg
from stepgraph.agents import ScriptedChatClient


@dataclass(frozen=True)
class Graded:
    text: str
    score: float


class Draft(sg.Executor):
    """Signs the text with the author's name (an argument from the YAML file)."""

    def __init__(self, id: str, author: str) -> None:
        super().__init__(id)
        self.author = author

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str]) -> None:
        await ctx.send(f"{text} (by {self.author})")


@sg.executor(id="grade")
async def grade(text: str, ctx: sg.Context[Graded]) -> None:
    words = len(text.split())
    await ctx.send(Graded(text, score=min(1.0, words / 10)))


@sg.executor(id="publish")
async def publish(draft: Graded, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"published ({draft.score:.1f}): {draft.text}")


@sg.executor(id="revise")
async def revise(draft: Graded, ctx: sg.Context[str]) -> None:
    await ctx.send(f"Suggest one improvement to: {draft.text}")


@sg.executor(id="reject")
async def reject(draft: Graded, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"rejected ({draft.score:.1f}): {draft.text}")


def editor_client() -> ScriptedChatClient:
    """An offline stand-in for a model (use OpenAIChatClient for a real one)."""
    return ScriptedChatClient(["Add one concrete number."])
