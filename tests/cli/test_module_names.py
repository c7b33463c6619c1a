"""One workflow file, three ways to import it, one graph: a session moves between them.

`python expense.py` (module `__main__`), `stepgraph ... expense.py` (module
`expense`) and `stepgraph.hosting.load_workflow("expense.py:workflow")` must
give the same graph signature and the same stored type names, so a session
started by the script can be answered from the command line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_support import FIXTURES, TIMEOUT, cli_env, run_cli

SCRIPT = """
if __name__ == "__main__":
    import asyncio
    import sys

    async def main() -> None:
        store = sg.SqliteCheckpointStore(sys.argv[1])
        try:
            session = workflow.session("trip", store=store)
            result = await session.run(900)
            print(result.status.name, result.pending_requests[0].id)
            print(workflow.signature)
        finally:
            await store.aclose()

    asyncio.run(main())
"""


def python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=TIMEOUT,
        check=False,
    )


def test_a_session_started_by_the_script_is_answered_from_the_command_line(
    tmp_path: Path,
) -> None:
    app = tmp_path / "expense.py"
    app.write_text((FIXTURES / "approve.py").read_text() + SCRIPT)
    db = tmp_path / "runs.db"

    started = python("expense.py", str(db), cwd=tmp_path)  # module __main__
    assert started.returncode == 0, started.stderr
    (status_line, signature) = started.stdout.splitlines()
    status, request_id = status_line.split()
    assert status == "IDLE_WITH_PENDING_REQUESTS"

    # The same signature when the file is loaded by the hosting loader and by `python -m`.
    loaded = python(
        "-c",
        "import sys; from stepgraph.hosting import load_workflow; "
        "print(load_workflow(sys.argv[1]).signature)",
        "expense.py:workflow",
        cwd=tmp_path,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == signature
    as_module = python("-m", "expense", str(tmp_path / "other.db"), cwd=tmp_path)
    assert as_module.returncode == 0, as_module.stderr
    assert as_module.stdout.splitlines()[1] == signature

    # The command line loads the file as module `expense` and continues the session,
    # decoding the stored `Decision` type and the pending request.
    answer = f'{request_id}={{"approved": true, "reason": "ok"}}'
    done = run_cli("respond", "expense.py:workflow", "--session", "trip", "--answer", answer,
                   "--store", f"sqlite://{db}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'Output executor_id=policy value="paid 900 ok"' in done.stdout
