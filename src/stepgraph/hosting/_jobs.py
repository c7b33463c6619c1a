"""Background responses (`background: true`) this process is running or holding in line.

A job is registered when its request is accepted and removed when its final
body is recorded; `POST /v1/responses/{id}/cancel` finds it here. Its record in
the hosting log (`queued`, then `in_progress`, then final) is what
`GET /v1/responses/{id}` answers, on any replica.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import stepgraph as sg

__all__ = ["Job", "Jobs"]


@dataclass(slots=True)
class Job:
    """One background response.

    Attributes:
        response_id: its id.
        session_id: the session it runs in.
        turn: its place in the session's line while it waits (None once it holds
            the session, or when it never waited).
        run: its run once started.
        cancel_requested: a cancel arrived; the job ends `cancelled` at its next step.
        ended: set when its final body is recorded (created in the running loop).
    """

    response_id: str
    session_id: str
    turn: asyncio.Future[None] | None = None
    run: sg.Run | None = None
    cancel_requested: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Jobs:
    """The background responses of one host, by response id."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def add(self, job: Job) -> None:
        """Register a job."""
        self._jobs[job.response_id] = job

    def get(self, response_id: str) -> Job | None:
        """The job of a response, or None when this process does not run it."""
        return self._jobs.get(response_id)

    def finish(self, job: Job) -> None:
        """The job's final body is recorded: forget it and wake who waits for it."""
        self._jobs.pop(job.response_id, None)
        job.ended.set()
