"""Starting a dev UI run in the background: the one place both UI modules launch runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import stepgraph as sg

if TYPE_CHECKING:
    from ._host import Host, RunRecord

__all__ = ["spawn_run"]


def spawn_run(
    host: Host,
    session_id: str,
    session: sg.Session[Any],
    run: sg.Run,
    *,
    kind: str,
    owner: str,
    label: str = "",
) -> RunRecord:
    """Record `run` (started on a session the caller holds) and drive it in the
    background; the session is released when it ends.
    """
    host.log.add_session(session_id, "ui", label, owner)
    rec = host.new_run(session_id, kind, "ui", owner)

    async def work() -> None:
        try:
            async for _ in host.drive(session, run, rec, live=True):
                pass
        finally:
            await host.release(session_id)

    host.spawn(work)
    return rec
