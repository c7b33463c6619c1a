"""Executors, predicates and clients that the declarative tests' YAML files name by import path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stepgraph as sg
from stepgraph.agents import ScriptedChatClient, tool


@dataclass(frozen=True)
class Draft:
    text: str
    score: float
    tags: tuple[str, ...] = ()


class Drafter(sg.Executor):
    """Turns text into a draft; its score is the text's length / 10."""

    def __init__(self, id: str, prefix: str = "draft", tags: list[str] | None = None) -> None:
        super().__init__(id)
        self.prefix = prefix
        self.tags = tuple(tags or ())

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[Draft]) -> None:
        await ctx.send(Draft(f"{self.prefix}: {text}", len(text) / 10, self.tags))


@sg.executor(id="grade")
async def grade(draft: Draft, ctx: sg.Context[Draft]) -> None:
    await ctx.send(draft)


@sg.executor(id="publish")
async def publish(draft: Draft, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"published {draft.text}")


@sg.executor(id="reject")
async def reject(draft: Draft, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"rejected {draft.text}")


class Label(sg.Executor):
    """Outputs `<label> <draft text>` or sends it on as a str when it has a successor."""

    def __init__(self, id: str, label: str) -> None:
        super().__init__(id)
        self.label = label

    @sg.handler
    async def on_draft(self, draft: Draft, ctx: sg.Context[str, str]) -> None:
        if ctx.successors:
            await ctx.send(f"{self.label} {draft.text}")
        else:
            await ctx.yield_output(f"{self.label} {draft.text}")

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str, str]) -> None:
        if ctx.successors:
            await ctx.send(f"{self.label} {text}")
        else:
            await ctx.yield_output(f"{self.label} {text}")


class Join(sg.Executor):
    """Joins a list of strings (fan-in or map collector) into one output."""

    def __init__(self, id: str, sep: str = " | ") -> None:
        super().__init__(id)
        self.sep = sep

    @sg.handler
    async def on_list(self, items: list[str], ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(self.sep.join(items))


@sg.executor(id="split")
async def split(text: str, ctx: sg.Context[list[str]]) -> None:
    await ctx.send(text.split())


@sg.executor(id="shout")
async def shout(word: str, ctx: sg.Context[str]) -> None:
    await ctx.send(word.upper())


@sg.executor(id="remember")
async def remember(draft: Draft, ctx: sg.Context[Draft]) -> None:
    ctx.state.set("approved", "ok" in draft.text)
    await ctx.send(draft)


def is_long(draft: Draft) -> bool:
    return draft.score >= 1


def pick(draft: Draft, targets: Any) -> list[str]:
    return [t for t in targets if t in draft.tags]


class Flaky(sg.Executor):
    """Fails its first attempt in every session, then passes the text on."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.attempts = 0

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        self.attempts += 1
        if self.attempts == 1:
            raise TimeoutError("first try")
        await ctx.yield_output(f"{text} after {self.attempts} attempts")


@sg.executor(id="boom")
async def boom(text: str, ctx: sg.Context[str]) -> None:
    raise ValueError(f"boom {text}")


@sg.executor(id="catch")
async def catch(failure: sg.ExecutorFailure, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"caught {failure.error_type} from {failure.executor_id}")


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def make_client(reply: str) -> ScriptedChatClient:
    return ScriptedChatClient([reply])


not_an_executor = 42
