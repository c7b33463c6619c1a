"""Where a session's executors run: outside this process.

`RayBackend` runs each executor of a session as a Ray actor (the `ray` extra)::

    session = workflow.session("s1", store=store, backend=RayBackend())

Modules:
    `_ray`: `RayBackend` and `RayExecutor`, the session-side proxy of an actor.
    `_local`: `LocalExecutor`, a proxy running its executor here (sub-workflows).
    `_host`: `ExecutorHost`, the actor body, and the recording contexts handlers get there.
    `_effects`: the effects a handler streams back, and how exceptions cross (`RemoteError`).

Importing this package does not import Ray; starting the first actor does.
"""

from ._effects import RemoteError
from ._ray import RayBackend, RayExecutor

__all__ = ["RayBackend", "RayExecutor", "RemoteError"]
