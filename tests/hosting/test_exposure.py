"""`stepgraph serve` refuses to expose a server without authentication (issue #23).

The real command in a subprocess: a non-loopback `--host` without `--auth` or
`--api-key` is a usage error (exit 2) naming both and `--insecure`; with
`--insecure` it starts (port 0) and stops on SIGTERM once it says it listens.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.hosting.support import APPS, ROOT

import stepgraph.hosting as hosting


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("STEPGRAPH_", "OPENAI_"))}


def _serve(*args: str, tmp: Path) -> list[str]:
    store = f"sqlite:///{tmp}/runs.db"
    return [sys.executable, "-m", "stepgraph.cli", "serve", f"{APPS}:chat", "--store", store, *args]


def test_exposed_host_without_auth_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        _serve("--host", "0.0.0.0", "--port", "0", tmp=tmp_path),
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "--auth" in done.stderr
    assert "--api-key" in done.stderr
    assert "--insecure" in done.stderr
    assert "0.0.0.0" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs.db").exists()  # refused before anything was opened


def test_exposed_host_with_insecure_starts(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _serve("--host", "0.0.0.0", "--port", "0", "--insecure", tmp=tmp_path),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:  # blocks until the server says something (or exits)
            seen.append(line)
            if re.search(r"running on http://0\.0\.0\.0:\d+", line):
                break
        else:
            raise AssertionError("the server exited without listening:\n" + "".join(seen))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_python_serve_refuses_an_exposed_host_too() -> None:
    with pytest.raises(ValueError, match=r"auth=.*api_key=.*insecure=True"):
        hosting.serve(f"{APPS}:chat", host="0.0.0.0", store_url="memory:")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_auth(host: str) -> None:
    from stepgraph.hosting._auth import check_exposure  # pyright: ignore[reportPrivateUsage]

    check_exposure(host, secured=False, insecure=False)


def test_auth_with_api_key_or_a_bad_hook_is_a_usage_error(tmp_path: Path) -> None:
    hook = Path(__file__).with_name("authhook.py")
    for args, said in [
        (("--auth", f"{hook}:authenticate", "--api-key", "k"), "not both"),
        (("--auth", f"{hook}:nothing"), "no function 'nothing'"),
        (("--auth", "no_such_module_xyz:hook"), "cannot import"),
    ]:
        done = subprocess.run(
            _serve("--port", "0", *args, tmp=tmp_path),
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert said in done.stderr
        assert "Traceback" not in done.stderr


def test_hook_errors_are_a_generic_500() -> None:
    import asyncio

    import httpx2
    from tests.hosting import apps

    from stepgraph.hosting import create_app

    def broken(headers: object) -> None:
        raise RuntimeError("the token service is down: secret detail")

    async def main() -> None:
        app = create_app(apps.chat, auth=broken)  # pyright: ignore[reportArgumentType]
        transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://app") as http:
            r = await http.get("/v1/models")
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "server_error"
        assert "secret" not in r.text

    asyncio.run(main())
