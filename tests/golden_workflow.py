"""The workflow behind the golden checkpoint files in tests/fixtures/checkpoints/.

Changing anything here changes the graph signature and breaks the golden
files on purpose: checkpoint format changes must be deliberate. Regenerate
with `python tests/make_golden.py` only together with a format migration.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import stepgraph as sg


class Mood(enum.Enum):
    CALM = "calm"
    LOUD = "loud"


@dataclass(frozen=True)
class Part:
    index: int
    text: str
    mood: Mood


class Splitter(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[Part]) -> None:
        ctx.state.set("source", text)
        ctx.state.set("seen", {len(text)})
        await ctx.send(Part(0, text, Mood.CALM))


class Shouter(sg.Executor):
    @sg.handler
    async def on_part(self, part: Part, ctx: sg.Context[Part]) -> None:
        await ctx.send(Part(part.index + 1, part.text.upper(), Mood.LOUD))


class Whisperer(sg.Executor):
    @sg.handler
    async def on_part(self, part: Part, ctx: sg.Context[Part]) -> None:
        await ctx.send(Part(part.index + 2, part.text.lower(), Mood.CALM))


class Joiner(sg.Executor):
    def __init__(self, id: str) -> None:
        super().__init__(id=id)
        self.rounds: list[int] = []

    @sg.handler
    async def on_parts(self, parts: list[Part], ctx: sg.Context[str, str]) -> None:
        self.rounds.append(len(parts))
        joined = "|".join(f"{p.index}:{p.text}:{p.mood.value}" for p in parts)
        if len(self.rounds) < 3:
            await ctx.send(joined)
        else:
            await ctx.yield_output(f"{joined} after {self.rounds}")

    async def snapshot(self) -> list[int]:
        return list(self.rounds)

    async def restore(self, data: list[int]) -> None:
        self.rounds = list(data)


def build() -> sg.Workflow[str]:
    splitter = Splitter(id="split")
    shout, whisper, join = Shouter(id="shout"), Whisperer(id="whisper"), Joiner(id="join")
    return (
        sg.WorkflowBuilder[str](start=splitter)
        .add_fan_out(splitter, [shout, whisper])
        .add_fan_in([shout, whisper], join)
        .add_edge(join, splitter)
        .build(name="golden")
    )


INPUT = "Hello Golden"


# -- version 2: values stored in chunked forms (tests/fixtures/checkpoints/v2-golden-*) ----
# Changing anything below changes the v2 golden files on purpose, as above.


def golden_item(i: int) -> str:
    """About 200 bytes: 20 items fill a chunk."""
    return f"item {i:04d} " + "ü" * 30 + "x" * 150


GOLDEN_BLOB = "blob " * 2000  # 10 KB: stored as one chunk


class Collector(sg.Executor):
    """Appends to state["history"] and to its own conversation, `steps` supersteps long."""

    def __init__(self, id: str) -> None:
        super().__init__(id=id)
        self.conversation: list[Part] = []

    @sg.handler
    async def on_steps(self, steps: int, ctx: sg.Context[int, str]) -> None:
        history = ctx.state.get("history", [])
        ctx.state.set("history", [*history, golden_item(len(history))])
        self.conversation.append(Part(len(self.conversation), "said", Mood.CALM))
        if len(history) == 20:
            ctx.state.set("blob", GOLDEN_BLOB)
        if steps > 1:
            await ctx.send(steps - 1)
        else:
            await ctx.yield_output(f"{len(history) + 1} items, {len(self.conversation)} turns")

    async def snapshot(self) -> dict[str, object]:
        return {"conversation": list(self.conversation), "n": len(self.conversation)}

    async def restore(self, data: dict[str, object]) -> None:
        self.conversation = list(data["conversation"])  # type: ignore[call-overload]


def build_chunked() -> sg.Workflow[int]:
    collector = Collector(id="collect")
    return (
        sg.WorkflowBuilder[int](start=collector)
        .add_edge(collector, collector)
        .register_types(Part)
        .build(name="golden-chunks", max_supersteps=1000)
    )


CHUNKED_INPUT = 60
