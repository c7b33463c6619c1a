"""`stepgraph run/respond/resume`, driven as a real command in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from cli_support import cli_env, command, fixture, read_until, run_cli


def _store(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/runs.db"


def test_run_streams_one_line_per_event(tmp_path: Path) -> None:
    done = run_cli("run", fixture("hello.py:workflow"), "--text", "hi", "--session", "s1",
                   "--store", _store(tmp_path), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "RunStarted session_id=s1"
    assert "ExecutorInvoked executor_id=upper superstep=1" in lines
    assert "Shouted length=2" in lines  # a user event
    assert 'Output executor_id=shout value="HI!"' in lines
    assert lines[-1] == "RunCompleted status=idle"
    assert sum(line.startswith("CheckpointSaved") for line in lines) == 3
    assert done.stderr == ""


def test_run_json_lines_end_with_the_result(tmp_path: Path) -> None:
    done = run_cli("run", fixture("hello.py:make"), "--input", '"hey"', "--json",
                   "--store", "memory:", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["event"] == "RunStarted"
    assert {"event": "Output", "executor_id": "shout", "value": "HEY!"} in events
    assert events[-2] == {"event": "RunCompleted", "status": "idle"}
    result = events[-1]
    assert result["event"] == "Result"
    assert result["outputs"] == ["HEY!"]
    assert result["status"] == "idle"


def test_an_answer_typed_at_the_prompt_continues_the_run(tmp_path: Path) -> None:
    # The first line is not a Decision: the error is shown and the prompt asks again.
    typed = 'nope\n{"approved": true, "reason": "fine"}\n'
    done = run_cli("run", fixture("approve.py"), "--input", "500", "--interactive",
                   "--store", _store(tmp_path), cwd=tmp_path, stdin=typed)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "RunCompleted status=idle_with_pending_requests" in done.stdout
    assert 'Output executor_id=policy value="paid 500 fine"' in done.stdout
    assert done.stdout.splitlines()[-1] == "RunCompleted status=idle"
    assert done.stderr.count("answer>") == 2
    assert "must be a Decision" in done.stderr
    assert "{approved: bool, reason: str}" in done.stderr  # the prompt shows the expected shape


def test_without_a_prompt_the_run_waits_and_respond_answers(tmp_path: Path) -> None:
    store = _store(tmp_path)
    waiting = run_cli("run", fixture("approve.py"), "--input", "900", "--session", "exp",
                      "--store", store, cwd=tmp_path)  # fmt: skip
    assert waiting.returncode == 4, waiting.stderr
    assert "stepgraph respond --session exp" in waiting.stderr
    issued = next(x for x in waiting.stdout.splitlines() if x.startswith("RequestIssued"))
    request_id = issued.split("id=", 1)[1].split()[0]
    # The workflow is remembered for the session; a prefix of the request id is enough.
    answer = f'{request_id[:6]}={{"approved": false, "reason": "too much"}}'
    done = run_cli("respond", "--session", "exp", "--answer", answer, "--store", store,
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert 'Output executor_id=policy value="refused 900 too much"' in done.stdout


def _start_and_kill(tmp_path: Path, store: str) -> None:
    """Run slow.py, SIGKILL it while its 4th superstep runs (3 are checkpointed)."""
    argv = command("run", fixture("slow.py:workflow"), "--input", "0", "--session", "k",
                   "--store", store)  # fmt: skip
    env = cli_env(STEPGRAPH_TEST_BLOCK="1")  # the 4th superstep sleeps for a minute
    with subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True) as proc:  # fmt: skip
        try:
            seen = read_until(proc.stdout, "ExecutorInvoked executor_id=count superstep=4", 20)
            assert "CheckpointSaved" in "\n".join(seen)  # events arrive live, while it runs
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    listed = run_cli("checkpoints", "list", "--session", "k", "--store", store, "--json",
                     cwd=tmp_path)  # fmt: skip
    head = json.loads(listed.stdout)[0]
    assert (head["superstep"], head["status"]) == (3, "mid-run")


def test_resume_finishes_a_run_killed_mid_superstep(tmp_path: Path) -> None:
    store = f"file://{tmp_path}/checkpoints"
    _start_and_kill(tmp_path, store)
    done = run_cli("resume", "--session", "k", "--store", store, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "SuperstepStarted superstep=4"  # continues where the killed run was
    assert "Output executor_id=report value=5" in lines
    assert lines[-1] == "RunCompleted status=idle"


def test_resume_right_after_a_kill_with_a_leasing_store(tmp_path: Path) -> None:
    """SQLite may hold the killed run's lease until it expires: a clean exit 6 meanwhile."""
    store = _store(tmp_path)
    _start_and_kill(tmp_path, store)
    done = run_cli("resume", "--session", "k", "--store", store, cwd=tmp_path)
    if done.returncode == 0:  # a store without leases
        assert "Output executor_id=report value=5" in done.stdout
        return
    assert done.returncode == 6, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "is being run elsewhere" in done.stderr
    assert "--wait SECONDS" in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["run", "missing.py:workflow", "--input", "1"], 2, "no such file: missing.py"),
        (["run", fixture("hello.py:nope"), "--input", "1"], 2, "has no attribute 'nope'"),
        (["run", fixture("hello.py:answer"), "--input", "1"], 2, "not a Workflow"),
        (["run", fixture("hello.py"), "--input", "{bad"], 2, "--input is not valid JSON"),
        (["run", fixture("hello.py"), "--input", "5"], 2, "has no handler for input of type int"),
        (["resume", "--session", "ghost"], 5, "no session 'ghost'"),
        (["respond", "--session", "ghost", "--answer", "a=1"], 5, "no session 'ghost'"),
        (["run", fixture("hello.py"), "--text", "x", "--store", "http://x"], 2, "bad store URL"),
        (["run", fixture("hello.py")], 2, "one of the arguments --input --text is required"),
    ],
    ids=[
        "missing-file",
        "bad-attr",
        "not-a-workflow",
        "bad-json",
        "wrong-type",
        "unknown-session",
        "unknown-session-respond",
        "bad-store",
        "usage",
    ],
)
def test_user_mistakes_print_one_line(
    tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    if args[0] in ("resume", "respond"):  # a store that exists, without that session
        assert run_cli("run", fixture("hello.py"), "--text", "x", cwd=tmp_path).returncode == 0
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ")
    assert needle in done.stderr


def test_unknown_session_of_a_store_that_does_not_exist(tmp_path: Path) -> None:
    done = run_cli("resume", "--session", "ghost", "--store", f"sqlite://{tmp_path}/none.db",
                   cwd=tmp_path)  # fmt: skip
    assert done.returncode == 5
    assert done.stderr.splitlines() == [
        f"error: no session 'ghost': there is no store at sqlite://{tmp_path}/none.db"
    ]
    assert not (tmp_path / "none.db").exists()  # looking did not create it


def test_a_failed_run_exits_3_and_the_session_then_refuses_new_input(tmp_path: Path) -> None:
    store = _store(tmp_path)
    failed = run_cli("run", fixture("hello.py"), "--text", "boom", "--session", "f",
                     "--store", store, cwd=tmp_path)  # fmt: skip
    assert failed.returncode == 3
    assert "ExecutorFailed executor_id=upper" in failed.stdout
    assert failed.stdout.splitlines()[-1] == "RunCompleted status=failed"
    error, hint = failed.stderr.splitlines()
    assert error.startswith("error: executor 'upper' raised ValueError: no shouting boom")
    assert hint.startswith(f"continue with: stepgraph resume --session f --store {store}")
    again = run_cli("run", fixture("hello.py"), "--text", "hi", "--session", "f",
                    "--store", store, cwd=tmp_path)  # fmt: skip
    assert again.returncode == 6
    assert len(again.stderr.splitlines()) == 1
    assert "stepgraph reset --session f" in again.stderr
    assert "(FAILED)" in again.stderr  # a failure, not a crash: said after reopening
    listed = run_cli("checkpoints", "list", "--session", "f", "--store", store, "--json",
                     cwd=tmp_path)  # fmt: skip
    head = json.loads(listed.stdout)[0]
    assert head["status"] == "failed"


def test_a_bad_store_url_fails_before_the_workflow_file_is_imported(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("print('IMPORTED')\nraise SystemExit(9)\n")
    done = run_cli("run", f"{app}:wf", "--text", "x", "--store", "http://x", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "bad store URL" in done.stderr
    assert "IMPORTED" not in done.stdout


def test_a_file_without_a_workflow_suggests_its_factory_and_the_hint_works(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        "import stepgraph as sg\n\n"
        "@sg.executor(id='echo')\n"
        "async def echo(text: str, ctx: sg.Context[None, str]) -> None:\n"
        "    await ctx.yield_output(text)\n\n"
        "def build() -> sg.Workflow[str]:\n"
        "    return sg.WorkflowBuilder[str](start=echo).build()\n"
    )
    done = run_cli("run", str(app), "--text", "x", "--store", "memory:", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"e.g. {app}:build" in done.stderr
    done = run_cli("run", f"{app}:build", "--text", "hi", "--store", "memory:", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Output executor_id=echo value=hi" in done.stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_anywhere_prints_the_handlers_traceback(tmp_path: Path, where: str) -> None:
    args = ["run", fixture("hello.py:workflow"), "--text", "boom", "--store", "memory:"]
    argv = ["--debug", *args] if where == "before" else [*args, "--debug"]
    done = run_cli(*argv, cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback (most recent call last)" in done.stderr
    assert 'raise ValueError("no shouting boom")' in done.stderr
    plain = run_cli(*args, cwd=tmp_path)
    assert "Traceback" not in plain.stderr  # without --debug: one line, no traceback


def test_a_closed_pipe_exits_zero_quietly(tmp_path: Path) -> None:
    big = "hi" * 50_000  # event lines larger than a pipe's buffer: the writer meets the close
    argv = command("run", fixture("hello.py:workflow"), "--text", big, "--store", "memory:")
    proc = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.readline()  # like `| head -1`: read one line, then close the pipe
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert b"Traceback" not in err
    assert b"BrokenPipe" not in err


def test_the_postgresql_answer_hint_works_as_printed(tmp_path: Path) -> None:
    """A PostgreSQL store keeps no index of session workflows: the hint names the workflow."""
    import shlex

    from tests.stores.pg_support import RUN, drop_schemas, require_dsn, store_url

    dsn = require_dsn()
    schema = f"{RUN}_hint"
    store = store_url(dsn, schema)
    try:
        waiting = run_cli("run", fixture("approve.py:workflow"), "--input", "900",
                          "--session", "exp", "--store", store, cwd=tmp_path)  # fmt: skip
        assert waiting.returncode == 4, waiting.stderr
        hint = next(x for x in waiting.stderr.splitlines() if x.startswith("answer with: "))
        argv = shlex.split(hint.removeprefix("answer with: "))
        assert argv[:2] == ["stepgraph", "respond"]
        assert argv[2].endswith("approve.py:workflow")
        pasted = [a.replace("<JSON>", "") for a in argv[1:]]
        pasted[-1] += '{"approved": true}'
        done = run_cli(*pasted, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "paid 900" in done.stdout
    finally:
        drop_schemas(dsn, schema)
