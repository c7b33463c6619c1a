"""Fixtures for the hosting tests: each scenario runs in process and over a real socket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from tests.hosting import apps
from tests.hosting.support import APPS, ServerProcess, in_process


class Target:
    """Where a scenario sends its requests: an in-process app or a uvicorn process."""

    def __init__(self, kind: str, server: ServerProcess | None = None) -> None:
        self.kind = kind
        self.server = server
        self._app: Any = None

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[openai.AsyncOpenAI]:
        if self.server is None:
            async with in_process(apps.chat) as (app, client):
                self._app = app
                yield client
        else:
            client = self.server.client()
            try:
                yield client
            finally:
                await client.close()

    async def busy(self, session_id: str) -> bool:
        if self.server is None:
            return bool(self._app.state.host.is_busy(session_id))
        async with self.server.http() as http:
            r = await http.get(f"/ui/api/sessions/{session_id}")
            return r.status_code == 200 and bool(r.json()["busy"])


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("srv")
    server = ServerProcess(f"{APPS}:chat", f"sqlite:///{tmp}/runs.db", tmp / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["inprocess", "socket"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "inprocess":
        return Target("inprocess")
    server: ServerProcess = request.getfixturevalue("chat_server")
    return Target("socket", server)
