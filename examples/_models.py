"""Shared by the agent examples: a real model when configured, a scripted one otherwise."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from stepgraph.agents import ChatClient, ChatMessage, Reply, ScriptedChatClient, ToolSpec


def model(
    script: Sequence[Reply] | Callable[[Sequence[ChatMessage], Sequence[ToolSpec]], Reply],
) -> ChatClient:
    """`OpenAIChatClient` when OPENAI_API_KEY or OPENAI_BASE_URL is set, else the script."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        from stepgraph.agents import OpenAIChatClient  # needs: pip install 'stepgraph[openai]'

        client: ChatClient = OpenAIChatClient()
        return client
    return ScriptedChatClient(script)
