"""`memory_tools(store, namespace)`: "remember", "recall" and "forget" tools for an `Agent`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, cast

from ._memory import MemoryStore
from ._tools import Tool

__all__ = ["memory_tools"]


def memory_tools(store: MemoryStore, namespace: Sequence[str]) -> list[Tool]:
    """Tools that let an agent keep notes in `store` under `namespace`, across sessions.

    * `remember(text, key="")` stores a note (the key defaults to a hash of the text,
      so remembering the same thing twice keeps one note) and returns its key;
    * `recall(query="", limit=5)` returns the newest notes containing every word of
      `query` (all notes when it is empty), as `{"key", "text"}` dicts;
    * `forget(key)` drops a note.

    Pass a namespace per user (`("notes", user_id)`) to keep users' memories apart.
    """
    ns = tuple(namespace)

    async def remember(text: str, key: str = "") -> str:
        """Remember a fact for later conversations; returns the note's key.

        Args:
            text: the fact, in one or two sentences.
            key: a name for the note; notes with the same key are replaced.
        """
        key = key or hashlib.sha256(text.encode()).hexdigest()[:16]
        await store.put(ns, key, {"text": text})
        return key

    async def recall(query: str = "", limit: int = 5) -> list[dict[str, Any]]:
        """Look up remembered facts, newest first.

        Args:
            query: words the facts must contain; empty for the latest facts.
            limit: at most this many facts.
        """
        items = await store.search(ns, query=query or None, limit=limit)
        return [{"key": i.key, "text": _text(i.value)} for i in items]

    async def forget(key: str) -> str:
        """Forget a remembered fact.

        Args:
            key: the key `remember` returned (or `recall` shows).
        """
        await store.delete(ns, key)
        return f"forgot {key}"

    return [Tool(remember), Tool(recall), Tool(forget)]


def _text(value: Any) -> object:
    if not isinstance(value, dict):
        return cast(object, value)
    note = cast(dict[str, object], value)
    return note.get("text", note)
