"""Helpers for the hosting tests: in-process clients and a uvicorn server in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
from starlette.applications import Starlette

import stepgraph as sg
from stepgraph.hosting import create_app

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).with_name("apps.py")
ARTIFACTS = ROOT / "test-artifacts"


def client_for(app: Starlette, api_key: str = "test") -> openai.AsyncOpenAI:
    """An official client talking to `app` in process (no socket)."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://app")
    return openai.AsyncOpenAI(
        base_url="http://app/v1", api_key=api_key, http_client=http, max_retries=0
    )


@contextlib.asynccontextmanager
async def in_process(
    workflow: sg.Workflow[Any], *, store: sg.CheckpointStore | None = None, **kw: Any
) -> AsyncIterator[tuple[Starlette, openai.AsyncOpenAI]]:
    """An app (lifespan entered) and a client for it."""
    app = create_app(workflow, store=store, **kw)
    async with app.router.lifespan_context(app):
        client = client_for(app, kw.get("api_key") or "test")
        try:
            yield app, client
        finally:
            await client.close()


async def wait_until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    """Wait (bounded) until `predicate()` (sync or async) is true."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def serving(app: Starlette, token: str | None = None) -> AsyncIterator[httpx2.AsyncClient]:
    """`app` (lifespan entered) and an HTTP client for it in process, as `token` if given."""
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://app", headers=headers
        ) as http,
    ):
        yield http


class ServerProcess:
    """`stepgraph.hosting.serve(...)` in a subprocess on 127.0.0.1 with a free port."""

    def __init__(
        self,
        target: str | list[str],
        store_url: str,
        log: Path,
        api_key: str | None = None,
        *,
        options: str = "",
    ) -> None:
        self.target, self.store_url, self.log, self.api_key = target, store_url, log, api_key
        self.options = options  # more `serve` keyword arguments, as Python source
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        """The server's command line (subclasses run other front doors, e.g. the CLI)."""
        code = (
            "import json, sys; from stepgraph.hosting import serve; "
            "serve(json.loads(sys.argv[1]), host='127.0.0.1', port=0, store_url=sys.argv[2], "
            f"api_key=(sys.argv[3] or None), shutdown_grace=5, {self.options})"
        )
        target = json.dumps(self.target)
        return [sys.executable, "-c", code, target, self.store_url, self.api_key or ""]

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Spawn `argv()` and wait until it prints the port it serves on."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv(),
                cwd=ROOT,
                stdout=out,
                stderr=out,
                env={k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            found = re.findall(r"running on http://127\.0\.0\.1:(\d+)", text)
            if found:
                self.port = int(found[-1])
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{text}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start in time")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
        return proc.returncode

    def client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"{self.base_url}/v1", api_key=self.api_key or "none", max_retries=0
        )

    def http(self) -> httpx2.AsyncClient:
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx2.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)
