"""`Session.update_state`: state written from outside a run, as a new checkpoint.

The values are written on top of the head, or of any checkpoint (then the
new checkpoint is a fork: its parent is that checkpoint, and the branch it
came from is unchanged), and the new checkpoint becomes the session's head.
Everything else of the session (queued messages of a paused or failed run,
fan-in buffers, pending requests, executor snapshots, status) is carried over,
so `resume()` goes on from there with the new values.

The update is atomic: while it works it holds the session's run guard (a run
started meanwhile raises `ConcurrentRunError`), and if the checkpoint cannot
be saved (a value that cannot be stored, a store error) the session is left
as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._content import SessionContent
from ._state import DELETE

if TYPE_CHECKING:
    from ._core import CheckpointRef, SessionCore

__all__ = ["update_state"]


class _Updating:
    """The guard's token while `update_state` works (never a run: nothing to wind down)."""

    __slots__ = ()
    abandoned = False


async def update_state(
    core: SessionCore, values: Mapping[str, Any], checkpoint: CheckpointRef | None
) -> str:
    """Write `values` over the head (or `checkpoint`) as a new head; returns its id.

    Raises:
        ConcurrentRunError: a run is in progress.
        TypeError: `values` is not a mapping, or a key is not a str.
        SerializationError: a value cannot be stored (the session is unchanged).
        CheckpointNotFoundError: no such checkpoint.
    """
    core.check_guard("update_state")
    writes = _checked(values)
    token = _Updating()
    core.active = token
    try:
        return await _update(core, writes, checkpoint)
    finally:
        if core.active is token:
            core.active = None


def _checked(values: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(values, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise TypeError(
            f"update_state() takes a mapping of state keys to values, got {type(values).__name__}"
        )
    for key in values:
        if not isinstance(key, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise TypeError(
                f"update_state(): state keys must be str, got {key!r} ({type(key).__name__})"
            )
    return dict(values)


async def _update(core: SessionCore, writes: dict[str, Any], ref: CheckpointRef | None) -> str:
    await core.ensure_loaded()
    cpr = core.writer()
    mark = cpr.mark()
    before = SessionContent.empty(0)
    before.replace_with(core.content)  # the same objects: put back as a whole on failure
    try:
        if ref is not None:
            await core.apply(await core.fetch(ref))
        c = core.content
        state = dict(c.state)
        for key, value in writes.items():
            if value is DELETE:
                state.pop(key, None)
            else:
                state[key] = value
        trace = {
            "kind": "edit",
            "written": sorted(k for k, v in writes.items() if v is not DELETE),
            "deleted": sorted(k for k, v in writes.items() if v is DELETE),
        }
        cp = await core.save_whole(cpr, state, c.queue, trace)  # as create_checkpoint() does
    except BaseException:
        cpr.rewind(mark)
        core.content.replace_with(before)
        raise
    c.state = state
    c.head = cp.info.id
    return cp.info.id
