"""Load test: N concurrent clients x M requests against `POST /v1/responses` on a uvicorn process.

Starts `stepgraph.hosting.serve` for a workflow (default: the three-executor
workflow below) on 127.0.0.1 with a free port and the SQLite store in a
temporary directory, drives it with N concurrent clients (raw HTTP through one
httpx2 pool, so the client costs little CPU), then stops it with SIGTERM.
Each client holds a conversation: its first request is fresh, the next ones
continue with `previous_response_id` (`--fresh` makes every request fresh).
Loopback only, bounded in requests and time.

    .venv/bin/python scripts/load_responses.py --clients 50 --requests 40
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

import stepgraph as sg


@sg.executor(id="parse")
async def parse(text: str, ctx: sg.Context[str]) -> None:
    await ctx.send(text.strip())


@sg.executor(id="enrich")
async def enrich(text: str, ctx: sg.Context[str]) -> None:
    await ctx.send(text.upper())


@sg.executor(id="answer")
async def answer(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"echo {text}")


workflow = (
    sg.WorkflowBuilder[str](start=parse).add_chain([parse, enrich, answer]).build(name="three")
)
"""Three executors in a chain: three supersteps, four checkpoints per request."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(target: str, store: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    code = (
        "import sys; from stepgraph.hosting import serve; "
        "serve(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]), store_url=sys.argv[3], "
        "log_level='warning')"
    )
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, target, str(port), store], stdout=out, stderr=out
    )
    out.close()
    return proc


async def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx2.AsyncClient(base_url=base) as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit(f"server exited; see {log}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("server did not become ready in 15 s")


async def drive(
    base: str, clients: int, requests: int, fresh: bool
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def client(n: int) -> None:
            nonlocal errors
            previous: str | None = None
            for i in range(requests):
                body: dict[str, object] = {"model": "three", "input": f"client {n} turn {i}"}
                if previous is not None and not fresh:
                    body["previous_response_id"] = previous
                t0 = time.perf_counter()
                try:
                    r = await http.post("/v1/responses", json=body)
                    ok = r.status_code == 200 and r.json().get("status") == "completed"
                except httpx2.HTTPError:
                    ok = False
                    r = None
                latencies.append(time.perf_counter() - t0)
                if not ok or r is None:
                    errors += 1
                    previous = None
                else:
                    previous = r.json()["id"]

        t0 = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for n in range(clients):
                tg.create_task(client(n))
        wall = time.perf_counter() - t0
    return latencies, errors, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=40, help="requests per client")
    ap.add_argument("--target", default=f"{Path(__file__).resolve()}:workflow")
    ap.add_argument("--store", default=None, help="store URL (default: SQLite in a temp dir)")
    ap.add_argument("--fresh", action="store_true", help="every request starts a new session")
    ap.add_argument("--warmup", type=int, default=200, help="requests before measuring")
    args = ap.parse_args()
    if args.clients * args.requests > 200_000:
        raise SystemExit("bounded: at most 200000 requests per run")
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"sqlite:///{tmp}/runs.db"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "server.log"
        proc = start_server(args.target, store, port, log)
        try:
            asyncio.run(wait_ready(base, proc, log))
            if args.warmup:
                asyncio.run(drive(base, min(args.clients, 10), max(1, args.warmup // 10), True))
            lat, errors, wall = asyncio.run(drive(base, args.clients, args.requests, args.fresh))
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
        lat_ms = sorted(x * 1000 for x in lat)
        q = statistics.quantiles(lat_ms, n=100)
        print(f"workflow     {args.target.rsplit(':', 1)[-1]}  store {store.split(':', 1)[0]}")
        print(
            f"clients      {args.clients} x {args.requests} requests ({len(lat)} total)"
            f"{'  fresh sessions' if args.fresh else '  conversations'}"
        )
        print(f"throughput   {len(lat) / wall:.0f} requests/s over {wall:.2f} s")
        print(
            f"latency ms   p50 {q[49]:.1f}  p90 {q[89]:.1f}  p99 {q[98]:.1f}  max {lat_ms[-1]:.1f}"
        )
        print(f"errors       {errors}")
        print(f"server exit  {code} (cpus: {os.cpu_count()})")
        if code != 0:
            print(log.read_text()[-2000:])


if __name__ == "__main__":
    main()
