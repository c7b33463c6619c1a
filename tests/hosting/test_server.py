"""Over a real socket only: restarts between turns, graceful shutdown, Schemathesis."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import hypothesis.errors
import openai
import pytest
import schemathesis
from schemathesis import GenerationMode
from tests.hosting.support import APPS, ServerProcess


def test_server_restarted_between_two_turns(tmp_path: Path) -> None:
    server = ServerProcess(f"{APPS}:chat", f"sqlite:///{tmp_path}/runs.db", tmp_path / "log")

    async def before() -> tuple[str, str, str, str]:
        async with server.client() as c:
            conv = await c.conversations.create()
            await c.responses.create(model="chat", input="one", conversation=conv.id)
            r1 = await c.responses.create(model="chat", input="alpha")
            ask = await c.responses.create(model="chat", input="approve go")
            return conv.id, r1.id, ask.id, ask.output[0].call_id  # type: ignore[union-attr]

    async def after(conv: str, r1: str, ask: str, call: str) -> None:
        async with server.client() as c:
            two = await c.responses.create(model="chat", input="two", conversation=conv)
            assert two.output_text == "turn 2: two"
            beta = await c.responses.create(model="chat", input="beta", previous_response_id=r1)
            assert beta.output_text == "turn 2: beta"
            assert (await c.responses.retrieve(r1)).output_text == "turn 1: alpha"
            with pytest.raises(openai.BadRequestError, match="must be a Verdict"):
                await c.responses.create(
                    model="chat",
                    input=[{"type": "function_call_output", "call_id": call, "output": "true"}],
                    previous_response_id=ask,
                )
            done = await c.responses.create(
                model="chat",
                input=[
                    {
                        "type": "function_call_output",
                        "call_id": call,
                        "output": '{"approved": true}',
                    }
                ],
                previous_response_id=ask,
            )
            assert done.output_text == "go: approved"

    server.start()
    try:
        ids = asyncio.run(before())
    finally:
        assert server.stop() == 0
    server.start()  # a new process on the same store
    try:
        asyncio.run(after(*ids))
    finally:
        assert server.stop() == 0


def test_graceful_shutdown_finishes_the_running_turn(tmp_path: Path) -> None:
    server = ServerProcess(f"{APPS}:chat", f"sqlite:///{tmp_path}/runs.db", tmp_path / "log")
    server.start()

    async def main() -> None:
        async with server.client() as c:
            slow = asyncio.ensure_future(c.responses.create(model="chat", input="sleep 1 late"))
            async with server.http() as http:
                for _ in range(500):
                    sessions = (await http.get("/ui/api/sessions")).json()["data"]
                    if any(s["busy"] for s in sessions):
                        break
                    await asyncio.sleep(0.01)
            proc = server.proc
            assert proc is not None
            proc.terminate()
            assert (await slow).output_text == "turn 1: late"

    try:
        asyncio.run(main())
        # It exits on its own once the turn is done; stop() must not signal it again
        # (a second SIGTERM after its handlers are restored kills it: -15, a race).
        assert server.proc is not None
        server.proc.wait(timeout=20)
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("schema")
    server = ServerProcess(f"{APPS}:chat", f"sqlite:///{tmp}/runs.db", tmp / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_property_based_no_server_errors(
    api_server: ServerProcess, mode: GenerationMode
) -> None:
    """Schemathesis cases from /openapi.json (valid ones, then malformed ones): never a 5xx,
    never a traceback; malformed bodies get a 4xx."""
    schema = schemathesis.openapi.from_url(f"{api_server.base_url}/openapi.json")
    seen: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.given(case=operation.as_strategy(mode))
        @hypothesis.settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=api_server.base_url, timeout=30)
            assert response.status_code < 500, (case.method, case.path, response.text)
            assert "Traceback" not in response.text

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing in it can be made invalid
            continue
        seen.append(operation.label)
    assert "POST /v1/responses" in seen


def _closed_by_server(sock: socket.socket, *, drip: bytes = b"", within: float = 10.0) -> float:
    """Seconds until the server closes `sock` (at most `within`, else fail), sending one
    byte of `drip` every 0.1 s meanwhile."""
    started = time.monotonic()
    for n in range(int(within / 0.1)):
        if n < len(drip):
            try:
                sock.send(drip[n : n + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - started
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                return time.monotonic() - started
            if data == b"":
                return time.monotonic() - started
            # else part of a response: read on
    raise AssertionError(f"the server kept an idle connection open for {within} s")


def test_idle_and_half_open_connections_are_closed(tmp_path: Path) -> None:
    server = ServerProcess(
        f"{APPS}:chat",
        f"sqlite:///{tmp_path}/runs.db",
        tmp_path / "log",
        options="idle_timeout=0.5",
    )
    server.start()
    try:
        address = ("127.0.0.1", server.port)
        with socket.create_connection(address) as silent:  # connects, never sends
            assert _closed_by_server(silent) < 5
        with socket.create_connection(address) as partial:  # half a request head, then silence
            partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            assert _closed_by_server(partial) < 5
        with socket.create_connection(address) as loris:  # a byte every 0.1 s never ends
            head = b"GET /healthz HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200
            assert _closed_by_server(loris, drip=head) < 5
        with socket.create_connection(address) as kept:  # keep-alive after a response
            kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _closed_by_server(kept) < 5

        async def slow_turn() -> str:
            async with server.client() as c:  # a request longer than the idle timeout
                r = await c.responses.create(model="chat", input="sleep 1.5 slow")
                return r.output_text

        assert asyncio.run(slow_turn()) == "turn 1: slow"
    finally:
        assert server.stop() == 0
