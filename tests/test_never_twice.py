"""Completed work never runs twice: activation records, ctx.step, idempotency keys."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import killed_after, store_of

import stepgraph as sg
from stepgraph.stores import MemoryCheckpointStore, SqliteCheckpointStore


class Mailer(sg.Executor):
    """Sends an e-mail (a side effect) and says so."""

    def __init__(self, id: str, sent: list[str], done: dict[str, asyncio.Event]) -> None:
        super().__init__(id=id)
        self.sent = sent
        self.done = done

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        self.sent.append(text)
        await ctx.yield_output(f"mailed {text}")
        ctx.state.set("mailed", text)
        self.done.setdefault("mail", asyncio.Event()).set()


class Flaky(sg.Executor):
    """Fails the first time, once the mailer has finished; then works."""

    def __init__(self, id: str, failures: list[int], done: dict[str, asyncio.Event]) -> None:
        super().__init__(id=id)
        self.failures = failures
        self.done = done

    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        if self.failures:
            self.failures.pop()
            await self.done.setdefault("mail", asyncio.Event()).wait()
            raise ConnectionError("model API said 429")
        await ctx.yield_output(f"flaky {text}")


def _two_branches(sent: list[str], failures: list[int], done: dict[str, Any]) -> sg.Workflow[str]:
    start = sg.executor(id="start")(_forward)
    return (
        sg.WorkflowBuilder[str](start=start)
        .add_fan_out(start, [Mailer("mail", sent, done), Flaky("flaky", failures, done)])
        .build()
    )


async def _forward(text: str, ctx: sg.Context[str]) -> None:
    await ctx.send(text)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_finished_branch_of_a_failed_superstep_does_not_run_again(
    kind: str, tmp_path: Path
) -> None:
    async def main() -> None:
        sent: list[str] = []
        done: dict[str, asyncio.Event] = {}
        wf = _two_branches(sent, [1], done)
        session = wf.session("s", store=store_of(kind, tmp_path))
        with pytest.raises(sg.ExecutorFailedError):
            await session.run("hello")
        assert sent == ["hello"]
        assert session.status is sg.RunStatus.FAILED
        assert "mailed" not in session.state  # the superstep was rolled back as a unit
        result = await session.resume()
        assert sent == ["hello"]  # the e-mail went out once
        assert result.outputs == ["mailed hello", "flaky hello"]
        assert session.state["mailed"] == "hello"  # its recorded state write committed
        assert result.status is sg.RunStatus.IDLE

    asyncio.run(main())


def test_without_a_store_a_failed_superstep_reruns_whole() -> None:
    """No store, nothing recorded: the documented at-least-once behaviour."""

    async def main() -> None:
        sent: list[str] = []
        wf = _two_branches(sent, [1], {})
        session = wf.session("s")
        with pytest.raises(sg.ExecutorFailedError):
            await session.run("hello")
        await session.resume()
        assert sent == ["hello", "hello"]

    asyncio.run(main())


def test_records_are_garbage_once_the_superstep_commits(tmp_path: Path) -> None:
    """After the resumed superstep commits, a later failure there re-runs everything."""

    async def main() -> None:
        sent: list[str] = []
        done: dict[str, asyncio.Event] = {}
        wf = _two_branches(sent, [1], done)
        store = MemoryCheckpointStore()
        session = wf.session("s", store=store)
        with pytest.raises(sg.ExecutorFailedError):
            await session.run("a")
        await session.resume()
        assert sent == ["a"]
        done.clear()
        await session.run("b")
        assert sent == ["a", "b"]

    asyncio.run(main())


def test_resuming_an_older_checkpoint_reruns_everything_after_it() -> None:
    calls: list[str] = []

    def counting(id: str, last: bool = False) -> sg.FunctionExecutor:
        async def handle(n: int, ctx: sg.Context[int, int]) -> None:
            calls.append(id)
            if last:
                await ctx.yield_output(n)
            else:
                await ctx.send(n + 1)

        return sg.executor(id=id)(handle)

    async def main() -> None:
        wf = (
            sg.WorkflowBuilder[int](start=counting("a"))
            .add_chain(["a", counting("b"), counting("c", last=True)])
            .build()
        )
        session = wf.session("s", store=MemoryCheckpointStore())
        await session.run(1)
        assert calls == ["a", "b", "c"]
        history = await session.history()
        after_a = next(i for i in history if i.superstep == 1)
        result = await session.resume(after_a)
        assert calls == ["a", "b", "c", "b", "c"]
        assert result.outputs == [3]

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["none", "memory", "sqlite"])
def test_a_retried_handler_does_not_repeat_a_finished_step(kind: str, tmp_path: Path) -> None:
    charged: list[int] = []
    attempts: list[int] = []

    async def charge(amount: int) -> str:
        charged.append(amount)
        return f"receipt-{amount}"

    @sg.executor(id="pay")
    async def pay(amount: int, ctx: sg.Context[None, str]) -> None:
        receipt = await ctx.step("charge", charge, amount)
        attempts.append(amount)
        if len(attempts) == 1:
            raise ConnectionError("the confirmation e-mail failed")
        await ctx.yield_output(receipt)

    async def main() -> None:
        wf = (
            sg.WorkflowBuilder[int](start=pay)
            .set_policy("pay", retry=sg.RetryPolicy(max_attempts=2, initial_delay=0))
            .build()
        )
        store = None if kind == "none" else store_of(kind, tmp_path)
        result = await wf.session("s", store=store).run(5)
        assert result.outputs == ["receipt-5"]
        assert charged == [5]
        assert len(attempts) == 2

    asyncio.run(main())


def test_a_step_that_raises_is_not_recorded_and_runs_again() -> None:
    tries: list[int] = []

    def lookup() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise TimeoutError("slow")
        return 42

    @sg.executor(id="ask")
    async def ask(_: int, ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(await ctx.step("lookup", lookup))

    async def main() -> None:
        wf = (
            sg.WorkflowBuilder[int](start=ask)
            .set_policy("ask", retry=sg.RetryPolicy(max_attempts=3, initial_delay=0))
            .build()
        )
        result = await wf.session("s", store=MemoryCheckpointStore()).run(0)
        assert result.outputs == [42]
        assert len(tries) == 2

    asyncio.run(main())


def test_a_step_name_used_twice_in_one_call_is_refused() -> None:
    @sg.executor(id="twice")
    async def twice(_: int, ctx: sg.Context[None, int]) -> None:
        await ctx.step("same", lambda: 1)
        await ctx.step("same", lambda: 2)

    async def main() -> None:
        wf = sg.WorkflowBuilder[int](start=twice).build()
        with pytest.raises(sg.ExecutorFailedError) as info:
            await wf.run(0)
        assert isinstance(info.value.__cause__, sg.WorkflowError)
        assert "own name" in str(info.value.__cause__)

    asyncio.run(main())


def test_steps_of_different_messages_may_share_a_name() -> None:
    """Names are unique per handler call: each message of an executor is its own call."""
    seen: list[int] = []

    @sg.executor(id="each")
    async def each(n: int, ctx: sg.Context[None, int]) -> None:
        await ctx.yield_output(await ctx.step("double", lambda: seen.append(n) or n * 2))

    async def main() -> None:
        start = sg.executor(id="start")(_fan)
        wf = sg.WorkflowBuilder[int](start=start).add_edge(start, each).build()
        result = await wf.session("s", store=MemoryCheckpointStore()).run(3)
        assert result.outputs == [0, 2, 4]
        assert seen == [0, 1, 2]

    asyncio.run(main())


async def _fan(n: int, ctx: sg.Context[int]) -> None:
    for i in range(n):
        await ctx.send(i)


def test_the_idempotency_key_is_stable_across_retries_and_resume(tmp_path: Path) -> None:
    keys: list[tuple[int, str]] = []
    failures = [1, 1]

    @sg.executor(id="call")
    async def call(n: int, ctx: sg.Context[None, int]) -> None:
        keys.append((n, ctx.idempotency_key))
        if n == 1 and failures:
            failures.pop()
            raise ConnectionError("flaky")
        await ctx.yield_output(n)

    async def main() -> None:
        start = sg.executor(id="start")(_fan)
        wf = (
            sg.WorkflowBuilder[int](start=start)
            .add_edge(start, call)
            .set_policy("call", retry=sg.RetryPolicy(max_attempts=2, initial_delay=0))
            .build()
        )
        session = wf.session("s", store=SqliteCheckpointStore(tmp_path / "k.db"))
        with pytest.raises(sg.ExecutorFailedError):
            await session.run(2)
        await session.resume()
        by_message: dict[int, set[str]] = {}
        for n, key in keys:
            by_message.setdefault(n, set()).add(key)
        assert len(by_message[1]) == 1  # two attempts, then a resume: one key
        assert by_message[0] != by_message[1]
        assert all(len(k) == 32 for k in by_message[1])

    asyncio.run(main())


def test_a_step_result_that_cannot_be_stored_fails_clearly() -> None:
    class Opaque:
        pass

    @sg.executor(id="odd")
    async def odd(_: int, ctx: sg.Context[None, int]) -> None:
        await ctx.step("make", Opaque)

    async def main() -> None:
        wf = sg.WorkflowBuilder[int](start=odd).build()
        with pytest.raises(sg.ExecutorFailedError) as info:
            await wf.run(0)
        assert isinstance(info.value.__cause__, sg.SerializationError)
        assert "step 'make'" in str(info.value.__cause__)

    asyncio.run(main())


def test_a_sigkill_while_a_slow_sibling_runs_does_not_repeat_the_finished_one(
    tmp_path: Path,
) -> None:
    """The finished branch's record survives the kill; a new process resumes without it."""
    import json
    import subprocess
    import sys
    import time

    child = Path(__file__).with_name("never_twice_child.py")
    db, effects, blocker = tmp_path / "runs.db", tmp_path / "effects", tmp_path / "block"
    blocker.touch()
    argv = [sys.executable, str(child), str(db), str(effects), str(blocker)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with killed_after(proc):
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"blocking\n"  # slow is blocked: mail runs or ran

        async def recorded() -> bool:
            store = SqliteCheckpointStore(db)
            try:
                infos = await store.list("mail")
                if not infos:
                    return False
                records = await store.load_records("mail", infos[0].id)
                return any(key.startswith("a:mail") for key in records)
            finally:
                await store.aclose()

        deadline = time.monotonic() + 30
        while not asyncio.run(recorded()):  # another process writes it: poll, bounded
            assert time.monotonic() < deadline, "the finished branch was never recorded"
            time.sleep(0.02)
    blocker.unlink()
    done = subprocess.run(argv, capture_output=True, timeout=60, check=True)
    outputs = json.loads(done.stdout.splitlines()[-1])
    assert outputs == ["mailed hello", "slow hello"]
    lines = [line.split()[0] for line in effects.read_text().splitlines()]
    assert lines.count("mail") == 1  # the e-mail went out once, across two processes
    assert lines.count("slow") == 2  # the unfinished branch ran again


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_reopened_session_says_failed_after_a_failure_and_interrupted_after_a_crash(
    kind: str, tmp_path: Path
) -> None:
    async def main() -> None:
        store = store_of(kind, tmp_path)
        wf = _two_branches([], [1], {})
        with pytest.raises(sg.ExecutorFailedError):
            await wf.session("s", store=store).run("x")
        again = wf.session("s", store=store)
        await again.load()
        assert again.status is sg.RunStatus.FAILED  # not INTERRUPTED: the failure is recorded
        result = await again.resume()
        assert result.status is sg.RunStatus.IDLE
        later = wf.session("s", store=store)
        await later.load()
        assert later.status is sg.RunStatus.IDLE  # the record went with the committed superstep

    asyncio.run(main())
