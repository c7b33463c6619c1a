"""Load test for token streaming: N concurrent clients stream agent replies of T tokens.

Starts `stepgraph.hosting.serve` for the one-agent workflow below (a paced
scripted model: T tokens, `--token-ms` apart) on 127.0.0.1 with a free port
(SQLite store in a temporary directory unless `--store`), then N clients each
send M streamed requests (`stream: true`, raw HTTP through one httpx2 pool) and
read the server-sent events. Reports replies/s, time to first token (request
sent -> first `response.output_text.delta` received), the whole reply's time,
and the deltas per reply (each must be T, and their text the reply's).
Loopback only, bounded in requests and time.

    .venv/bin/python scripts/load_stream.py --clients 50 --requests 20 --tokens 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    ChatMessage,
    ChatOptions,
    ChatResponse,
    ChatUpdate,
    TextContent,
    ToolSpec,
)

TOKENS = int(os.environ.get("LOAD_STREAM_TOKENS", "50"))
TOKEN_MS = float(os.environ.get("LOAD_STREAM_TOKEN_MS", "0"))


def reply_text(tokens: int) -> str:
    """The reply the paced model gives: `tokens` words, one token each."""
    return " ".join(f"w{i}" for i in range(tokens))


class PacedModel:
    """A scripted model: `TOKENS` tokens, `TOKEN_MS` apart (0: as fast as the loop goes), the
    first at once.
    """

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> ChatResponse:
        return ChatResponse(ChatMessage("assistant", (TextContent(reply_text(TOKENS)),)))

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        options: ChatOptions | None = None,
    ) -> AsyncIterator[ChatUpdate]:
        for i in range(TOKENS):
            if TOKEN_MS and i:  # the first token comes at once: TTFT is the server's own
                await asyncio.sleep(TOKEN_MS / 1000)
            yield ChatUpdate(text=f"w{i}" + (" " if i < TOKENS - 1 else ""))
        yield ChatUpdate(finish_reason="stop")


workflow = sg.WorkflowBuilder[str](start=AgentExecutor(Agent("writer", PacedModel()))).build(
    name="writer"
)
"""One agent streaming its reply."""


@dataclass
class Tally:
    ttft: list[float] = field(default_factory=list[float])
    total: list[float] = field(default_factory=list[float])
    deltas: list[int] = field(default_factory=list[int])
    errors: int = 0


async def one(http: httpx2.AsyncClient, body: dict[str, object], expected: str, t: Tally) -> None:
    t0 = time.perf_counter()
    first: float | None = None
    count, text, final = 0, [], None
    kind = ""
    async with http.stream("POST", "/v1/responses", json=body) as r:
        if r.status_code != 200:
            t.errors += 1
            return
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "response.output_text.delta":
                if first is None:
                    first = time.perf_counter()
                count += 1
                text.append(json.loads(line[6:])["delta"])
            elif line.startswith("data: ") and kind == "response.completed":
                final = json.loads(line[6:])["response"]
    done = time.perf_counter()
    got = "".join(text)
    out = final["output"][0]["content"][0]["text"] if final and final["output"] else None
    if first is None or got != expected or out != expected:
        t.errors += 1
        return
    t.ttft.append(first - t0)
    t.total.append(done - t0)
    t.deltas.append(count)


async def drive(base: str, clients: int, requests: int, expected: str) -> tuple[Tally, float]:
    tally = Tally()
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

        async def client(n: int) -> None:
            for i in range(requests):
                body = {"model": "writer", "input": f"client {n} turn {i}", "stream": True}
                try:
                    await one(http, body, expected, tally)
                except httpx2.HTTPError:
                    tally.errors += 1

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for n in range(clients):
                tg.create_task(client(n))
        wall = time.perf_counter() - t0
    return tally, wall


def ms(values: list[float]) -> str:
    v = sorted(x * 1000 for x in values)
    q = statistics.quantiles(v, n=100) if len(v) > 1 else v * 99
    return f"p50 {q[49]:.1f}  p90 {q[89]:.1f}  p99 {q[98]:.1f}  max {v[-1]:.1f}"


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from load_responses import free_port, start_server, wait_ready

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20, help="streamed requests per client")
    ap.add_argument("--tokens", type=int, default=50, help="tokens per reply")
    ap.add_argument("--token-ms", type=float, default=0.0, help="the model's pause per token")
    ap.add_argument("--store", default=None, help="store URL (default: SQLite in a temp dir)")
    ap.add_argument("--warmup", type=int, default=100, help="requests before measuring")
    args = ap.parse_args()
    if args.clients * args.requests > 100_000 or args.tokens > 10_000:
        raise SystemExit("bounded: at most 100000 requests and 10000 tokens per reply")
    os.environ["LOAD_STREAM_TOKENS"] = str(args.tokens)  # read by the server process
    os.environ["LOAD_STREAM_TOKEN_MS"] = str(args.token_ms)
    expected = reply_text(args.tokens)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"sqlite:///{tmp}/runs.db"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "server.log"
        proc = start_server(f"{Path(__file__).resolve()}:workflow", store, port, log)
        try:
            asyncio.run(wait_ready(base, proc, log))
            if args.warmup:
                asyncio.run(drive(base, min(args.clients, 10), max(1, args.warmup // 10), expected))
            tally, wall = asyncio.run(drive(base, args.clients, args.requests, expected))
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
        n = len(tally.ttft)
        print(
            f"store        {store.split(':', 1)[0]}  tokens/reply {args.tokens}"
            f"  model pause {args.token_ms:g} ms/token"
        )
        print(f"clients      {args.clients} x {args.requests} streamed requests ({n} ok)")
        print(
            f"throughput   {n / wall:.0f} replies/s, {n * args.tokens / wall:.0f} tokens/s"
            f" over {wall:.2f} s"
        )
        if n:
            print(f"first token  ms  {ms(tally.ttft)}")
            print(f"whole reply  ms  {ms(tally.total)}")
            print(f"deltas/reply min {min(tally.deltas)}  max {max(tally.deltas)}")
        print(f"errors       {tally.errors}")
        print(f"server exit  {code} (cpus: {os.cpu_count()})")
        if code != 0:
            print(log.read_text()[-2000:])


if __name__ == "__main__":
    main()
