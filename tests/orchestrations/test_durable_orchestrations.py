"""Orchestrations journal their agents' and managers' model calls: resumed, none repeats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import store_of

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    ChatMessage,
    FunctionCall,
    FunctionResult,
    ScriptedChatClient,
    ScriptedRequest,
    tool,
)
from stepgraph.orchestrations import concurrent, group_chat, magentic
from stepgraph.stores import MemoryCheckpointStore


def _systems(requests: Sequence[ScriptedRequest]) -> list[str]:
    """The first line of the system prompt of each request (which kind of call it was)."""
    return [r.messages[0].text.split("\n")[0][:20] for r in requests]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_concurrent_resumed_repeats_no_finished_model_or_tool_call(
    kind: str, tmp_path: Path
) -> None:
    """Agent b looks something up, then its model call fails; a finished beside it."""
    looked: list[str] = []

    def search(query: str) -> str:
        """Search the web (a paid call)."""
        looked.append(query)
        return f"results for {query}"

    a_client = ScriptedChatClient(["a's answer"], name="a")
    b_client = ScriptedChatClient(
        [FunctionCall("", "search", {"query": "tides"}), ConnectionError("429"), "b's answer"],
        name="b",
    )
    wf = concurrent([Agent("a", a_client), Agent("b", b_client, tools=[tool(search)])])

    async def main() -> list[Any]:
        session = wf.session("s", store=store_of(kind, tmp_path))
        with pytest.raises(sg.ExecutorFailedError):
            await session.run("tides")
        return (await session.resume()).outputs

    (conversation,) = asyncio.run(main())
    assert [m.text for m in conversation] == ["tides", "a's answer", "b's answer"]
    assert looked == ["tides"]  # the tool ran once
    assert len(a_client.requests) == 1  # a finished in the failed superstep: not asked again
    first, failed, again = b_client.requests  # b's first model call was not asked again
    assert failed.messages == again.messages
    assert [type(c) for m in failed.messages for c in m.contents][-1] is FunctionResult
    assert first.messages == failed.messages[:1]


def _ledger(done: bool) -> str:
    return json.dumps(
        {
            "is_request_satisfied": done,
            "is_in_loop": False,
            "is_progress_being_made": True,
            "next_speaker": "coder",
            "instruction": "write it",
        }
    )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_magentic_resumed_does_not_plan_again(kind: str, tmp_path: Path) -> None:
    """The manager's first progress ledger fails: its facts and plan are not asked again."""
    failures = [ConnectionError("429")]

    def manager(messages: Sequence[ChatMessage], tools: object) -> Any:
        system = messages[0].text
        if system.startswith("List the facts"):
            return "facts"
        if system.startswith("Write a short"):
            return "plan"
        if system.startswith("Give the final"):
            return "final answer"
        if failures:
            return failures.pop()
        return _ledger(done=any(m.author == "coder" for m in messages))

    manager_client = ScriptedChatClient(manager)
    coder = Agent("coder", ScriptedChatClient(["code"], name="coder"))
    wf = magentic([coder], manager=Agent("manager", manager_client))

    async def main() -> list[Any]:
        session = wf.session("s", store=store_of(kind, tmp_path))
        with pytest.raises(sg.ExecutorFailedError):
            await session.run("write a sorter")
        return (await session.resume()).outputs

    (answer,) = asyncio.run(main())
    assert answer.text == "final answer"
    assert _systems(manager_client.requests) == [
        "List the facts given",
        "Write a short bullet",
        "Task: write a sorter",  # the ledger call that failed
        "Task: write a sorter",  # asked again on resume, without planning again
        "Task: write a sorter",
        "Give the final answe",
    ]


def test_a_group_chat_manager_reply_that_cannot_be_used_is_asked_for_again() -> None:
    """The choice is parsed inside the step: an unusable reply is not recorded."""
    replies = iter([json.dumps({"next": "nobody"}), json.dumps({"next": None})])
    manager_client = ScriptedChatClient(lambda m, t: next(replies))
    alice = Agent("alice", ScriptedChatClient(["hi"]))
    wf = group_chat([alice], manager=Agent("boss", manager_client))

    async def main() -> list[Any]:
        session = wf.session("s", store=MemoryCheckpointStore())
        with pytest.raises(sg.ExecutorFailedError, match="nobody"):
            await session.run("hello")
        return (await session.resume()).outputs

    (conversation,) = asyncio.run(main())
    assert [m.text for m in conversation] == ["hello"]
    assert len(manager_client.requests) == 2
