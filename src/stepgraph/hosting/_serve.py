"""`serve`: load workflows (`path/to/app.py:workflow` or objects) and run them under uvicorn.

Shutdown on SIGINT/SIGTERM is graceful: new requests get 503, dev UI event
streams end, runs in progress get `shutdown_grace` seconds to finish and are
then cancelled (each ends `CANCELLED` at its last committed superstep, so a
restart continues cleanly), and the store is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import socket
import sys
import threading
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, cast

import uvicorn

import stepgraph as sg
from stepgraph.loading import import_file

from ._app import create_app
from ._auth import Authenticate, check_exposure, load_auth
from ._guard import DoubleTexting
from ._host import Host
from ._mcp_server import McpTransport, mcp_server, mount_mcp, serve_mcp_stdio
from ._models import model_names
from ._protocol import IdleTimeoutProtocol
from ._stores import DEFAULT_STORE_URL, open_store

__all__ = ["load_workflow", "load_workflows", "serve"]

Target = str | sg.Workflow[Any]
"""What names a workflow: `path/to/app.py:name`, `module:name`, or a `Workflow`."""


def load_workflow(target: str | sg.Workflow[Any]) -> sg.Workflow[Any]:
    """The workflow named by `target`: `path/to/file.py:name`, `package.module:name`,
    a YAML file (`flow.yaml`, see `sg.load_workflow`) or a `Workflow` (returned as is).
    `name` may also be a function returning one.

    Raises:
        ValueError: the target is malformed or names no workflow.
        GraphError: a YAML workflow that does not load (the message names file and line).
    """
    if isinstance(target, sg.Workflow):
        return target
    if target.lower().endswith((".yaml", ".yml")):
        return sg.load_workflow(target)  # a declarative workflow (raises GraphError)
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise ValueError(f"{target!r}: expected path/to/app.py:workflow or module:workflow")
    if where.endswith(".py") or Path(where).is_file():
        if not Path(where).is_file():
            raise ValueError(f"{target!r}: no file {where}")
        # Named as `python app.py` and `stepgraph` name it, so that signatures and stored
        # types agree between them.
        try:
            module = import_file(where)
        except ImportError as exc:
            if exc.path != str(Path(where).resolve()):
                raise  # an import inside the file failed
            raise ValueError(f"{target!r}: cannot import {where}") from exc
    else:
        module = importlib.import_module(where)
    obj: Any = getattr(module, name, None)
    if obj is not None and not isinstance(obj, sg.Workflow) and callable(obj):
        obj = obj()
    if not isinstance(obj, sg.Workflow):
        raise ValueError(f"{target!r}: {name!r} is not a stepgraph Workflow")
    return cast(sg.Workflow[Any], obj)


def load_workflows(
    targets: Target | Sequence[Target] | Mapping[str, Target],
) -> dict[str, sg.Workflow[Any]]:
    """The workflows `targets` name, by model name: a mapping's keys, else each
    workflow's `name` (which must then be unique).

    Raises:
        ValueError: a target is malformed or names no workflow, or two share a name.
    """
    if isinstance(targets, str | sg.Workflow):
        targets = [targets]
    if isinstance(targets, Mapping):
        return model_names({name: load_workflow(t) for name, t in targets.items()})
    return model_names([load_workflow(t) for t in targets])


class _Server(uvicorn.Server):
    """Tells the host to stop taking work as soon as a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, host: Host, mcp_path: str | None = None) -> None:
        super().__init__(config)
        self._host = host
        self._mcp_path = mcp_path

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start, then say where the dev UI and the API are (the port 0 picked, too)."""
        await super().startup(sockets)
        if self.should_exit or not self.servers or not self.servers[0].sockets:
            return
        port = self.servers[0].sockets[0].getsockname()[1]
        host = self.config.host
        where = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        models = ", ".join(self._host.models)
        mcp = f" - MCP at {where}{self._mcp_path}" if self._mcp_path else ""
        print(
            f"stepgraph: dev UI at {where}/ui/ - Responses API at {where}/v1/responses"
            f"{mcp} - models: {models}",
            file=sys.stderr,
            flush=True,
        )

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._host.closing = True
        self._host.hub.close()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        # Like uvicorn's, without raising the signal again afterwards: a graceful
        # shutdown closes the store and exits with status 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve(
    target: Target | Sequence[Target] | Mapping[str, Target],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    store_url: str | None = None,
    api_key: str | None = None,
    auth: Authenticate | str | None = None,
    insecure: bool = False,
    shutdown_grace: float = 10.0,
    log_level: str = "info",
    idle_timeout: float = 5.0,
    lease_ttl: float = 30.0,
    double_texting: DoubleTexting = "reject",
    mcp: McpTransport | None = None,
) -> None:
    """Serve workflows over HTTP until SIGINT/SIGTERM (what `stepgraph serve` runs).

    Raises:
        ValueError: a target or `auth` names nothing usable, or `host` is exposed
            without authentication (see `insecure`).

    Args:
        target: `path/to/app.py:workflow`, `module:workflow`, or a `Workflow`; or
            several, as a sequence (model names: the workflows' names) or a mapping
            of model names to targets. A request's `model` picks the workflow.
        host: the interface to bind.
        port: the TCP port (0 picks a free one).
        store_url: the checkpoint store (`stepgraph.stores.open_store` URLs); default
            `sqlite:///./.stepgraph/runs.db`.
        api_key: require `Authorization: Bearer <api_key>` (one tenant, an admin).
        auth: an authentication hook, or the `module:function` or
            `path/to/file.py:function` naming one (see `create_app`).
        insecure: allow a `host` other than loopback without `auth` or `api_key`
            (refused otherwise: anyone who reaches the port would be the admin).
        shutdown_grace: seconds runs may take to finish at shutdown.
        log_level: uvicorn's log level.
        idle_timeout: seconds a connection may wait for a request (after it opened, or
            after its last response) before it is closed, even when it sends a byte now
            and then; a request being served is never cut.
        lease_ttl: seconds the session leases and request locks last without renewal
            (see `create_app`).
        double_texting: what a request for a running conversation does unless it says:
            `reject` (409), `enqueue` or `interrupt` (see `create_app`).
        mcp: also serve the workflows as MCP tools (see `mcp_server`): `"http"` at
            `/mcp` beside the API, or `"stdio"` over stdin/stdout alone (no HTTP).
    """
    hook = load_auth(auth) if isinstance(auth, str) else auth
    check_exposure(host, secured=hook is not None or api_key is not None, insecure=insecure)
    workflows = load_workflows(target)
    store = open_store(store_url or DEFAULT_STORE_URL)
    if mcp == "stdio":
        asyncio.run(serve_mcp_stdio(workflows, store))
        return
    app = create_app(
        workflows,
        store=store,
        api_key=api_key,
        auth=hook,
        shutdown_grace=shutdown_grace,
        lease_ttl=lease_ttl,
        double_texting=double_texting,
    )
    if mcp == "http":
        mount_mcp(app, mcp_server(workflows, store=store), host=host)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=IdleTimeoutProtocol,
        timeout_keep_alive=idle_timeout,  # pyright: ignore[reportArgumentType]  # any seconds
        timeout_graceful_shutdown=max(1, round(shutdown_grace)),
        lifespan="on",
    )
    server = _Server(config, app.state.host, "/mcp" if mcp == "http" else None)

    async def main() -> None:
        try:
            await server.serve()
        finally:
            await store.aclose()

    asyncio.run(main())
