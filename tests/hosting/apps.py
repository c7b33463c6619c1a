"""Workflows the hosting tests serve (importable by path from a uvicorn subprocess)."""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import stepgraph as sg
from stepgraph.agents import Agent, AgentExecutor, ChatUpdate


@dataclass(frozen=True)
class Question:
    text: str


@dataclass(frozen=True)
class Verdict:
    approved: bool
    note: str = ""


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@dataclass(frozen=True)
class Summary:
    text: str
    words: int


class Chat(sg.Executor):
    """Counts turns in the session's state; `approve X` asks a question, `pick X` asks for a
    priority, `twice X` asks two questions, `sleep S X` waits S seconds, `boom` fails,
    `json X` outputs a structured value."""

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[str, object]) -> None:
        turns = int(ctx.state.get("turns", 0)) + 1
        ctx.state.set("turns", turns)
        if text.startswith("sleep "):
            _, seconds, text = text.split(" ", 2)
            await asyncio.sleep(float(seconds))
        if text == "boom":
            raise ValueError("boom requested")
        if text.startswith("approve "):
            await ctx.request(Question(text[8:]), response_type=Verdict)
        elif text.startswith("pick "):
            await ctx.request(Question(text[5:]), response_type=Priority)
        elif text.startswith("twice "):
            await ctx.request(Question(text[6:] + "-1"), response_type=Verdict)
            await ctx.request(Question(text[6:] + "-2"), response_type=Verdict)
        elif text.startswith("json "):
            await ctx.yield_output(Summary(text[5:], len(text[5:].split())))
        else:
            await ctx.send(f"{turns}:{text}")

    @sg.response_handler
    async def on_verdict(self, q: Question, v: Verdict, ctx: sg.Context[str, object]) -> None:
        await ctx.yield_output(f"{q.text}: {'approved' if v.approved else 'refused'}{v.note}")

    @sg.response_handler
    async def on_priority(self, q: Question, p: Priority, ctx: sg.Context[str, object]) -> None:
        await ctx.yield_output(f"{q.text}: {p.value}")


@sg.executor(id="reply")
async def reply(message: str, ctx: sg.Context[None, str]) -> None:
    n, _, text = message.partition(":")
    await ctx.yield_output(f"turn {n}: {text}")


chat = sg.WorkflowBuilder[str](start=Chat(id="chat")).add_edge("chat", reply).build(name="chat")


@sg.executor(id="parse")
async def parse(text: str, ctx: sg.Context[str]) -> None:
    await ctx.send(text.strip())


@sg.executor(id="enrich")
async def enrich(text: str, ctx: sg.Context[str]) -> None:
    await ctx.send(text.upper())


@sg.executor(id="answer")
async def answer(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"echo {text}")


three = sg.WorkflowBuilder[str](start=parse).add_chain([parse, enrich, answer]).build(name="three")
"""The three-executor workflow of the load figures."""


class PacedModel:
    """A scripted model streaming `streamed reply to <input>` a word every 0.3 s."""

    async def get_response(self, messages: Any, *, tools: Any = (), options: Any = None) -> Any:
        raise NotImplementedError("the writer streams")

    async def get_streaming_response(
        self, messages: Any, *, tools: Any = (), options: Any = None
    ) -> AsyncIterator[ChatUpdate]:
        for word in re.findall(r"\S+\s*", f"streamed reply to {messages[-1].text}"):
            yield ChatUpdate(text=word)
            await asyncio.sleep(0.3)


writer = sg.WorkflowBuilder[str](start=AgentExecutor(Agent("writer", PacedModel()))).build(
    name="writer"
)
"""One agent whose reply streams slowly enough to watch."""


@sg.executor(id="brief")
async def brief(words: int, ctx: sg.Context[str]) -> None:
    await ctx.send(f"{words} words")


relay = (
    sg.WorkflowBuilder[int](start=brief)
    .add_edge(brief, AgentExecutor(Agent("writer", PacedModel())))
    .build(name="relay")
)
"""The writer behind a start that takes a number: an agent workflow without a chat view."""
