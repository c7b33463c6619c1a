"""Shared state: committed at superstep barriers, read through per-executor views.

A `StateView` shows the state committed at the end of the previous superstep
plus the executor's own writes of the current one. Writes become visible to
others only at the barrier, where they are committed executor by executor in
declaration order (a later writer of a key wins).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["DELETE", "DELETED", "StateView"]


class _Deleted:
    """`sg.DELETE`: as a state value, deletes the key (`session.update_state({"k": sg.DELETE})`).

    A deleted key maps to it in a `StateUpdated` event. There is one such marker.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "DELETE"

    def __reduce__(self) -> str:
        return "DELETE"  # copy and pickle keep the one marker


DELETE: Any = _Deleted()
"""Marks a state key deleted: `session.update_state({"key": sg.DELETE})`.

Also what a deleted key maps to in a `StateUpdated` event.
"""
DELETED: Any = DELETE
"""The engine's name for `DELETE` in pending write sets."""


class StateView:
    """`ctx.state`: committed state plus this executor's pending writes.

    Values are shared, not copied: treat them as immutable and `set` a new
    value instead of mutating one in place.
    """

    __slots__ = ("_committed", "_writes")

    def __init__(self, committed: Mapping[str, Any], writes: dict[str, Any]) -> None:
        self._committed = committed
        self._writes = writes

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`, or `default` when it is absent."""
        if key in self._writes:
            value = self._writes[key]
            return default if value is DELETED else value
        return self._committed.get(key, default)

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, DELETED)
        if value is DELETED:
            raise KeyError(key)
        return value

    def set(self, key: str, value: Any) -> None:
        """Write `key`; others see it after this superstep's barrier."""
        if not isinstance(key, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(f"state keys must be str, got {type(key).__name__}")
        self._writes[key] = value

    def append(self, key: str, *items: Any) -> None:
        """Append `items` to the list at `key` (a new list; an absent key starts empty).

        Same as setting `[*ctx.state.get(key, []), *items]`: with a store that keeps
        chunks, a checkpoint then stores only the appended items, however long the
        list grows.

        Raises:
            TypeError: the value at `key` is not a list.
        """
        current = self.get(key, None)
        if current is None:
            current = []
        elif type(current) is not list:
            raise TypeError(
                f"ctx.state.append({key!r}, ...) needs a list at {key!r}, found "
                f"{type(current).__name__}: set a list first, or use ctx.state.set"
            )
        self.set(key, [*current, *items])

    def delete(self, key: str) -> None:
        """Delete `key` (no error when it is absent)."""
        self._writes[key] = DELETED

    def __contains__(self, key: object) -> bool:
        if key in self._writes:
            return self._writes[key] is not DELETED  # type: ignore[index]
        return key in self._committed

    def keys(self) -> list[str]:
        """Keys visible to this executor."""
        keys = dict.fromkeys(self._committed)
        keys.update(dict.fromkeys(self._writes))
        return [k for k in keys if k in self]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __repr__(self) -> str:
        return f"StateView({ {k: self.get(k) for k in self.keys()}!r})"


def commit(state: dict[str, Any], writes: dict[str, Any]) -> None:
    """Apply one executor's writes to the committed state."""
    for key, value in writes.items():
        if value is DELETED:
            state.pop(key, None)
        else:
            state[key] = value
