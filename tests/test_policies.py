"""Executor policies (retry, timeout, cache), run timeouts, independent branches, migrations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import stepgraph as sg


class SleepyClock:
    """A manual clock whose sleep jumps time instead of waiting."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class Flaky(sg.Executor):
    """Fails the first `failures` attempts, writing state and sending before it fails."""

    def __init__(self, id: str, failures: int) -> None:
        super().__init__(id=id)
        self.failures = failures
        self.attempts = 0

    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[int]) -> None:
        self.attempts += 1
        ctx.state.set(f"attempt-{self.attempts}", True)
        await ctx.send(n * 100 + self.attempts)
        if self.attempts <= self.failures:
            raise ConnectionError(f"flaky attempt {self.attempts}")

    async def snapshot(self) -> int:
        return self.attempts

    async def restore(self, data: int) -> None:
        self.attempts = data  # pragma: no cover - attempts are counted on purpose (see below)


@sg.executor(id="sink")
async def sink(n: int, ctx: sg.Context[None, int]) -> None:
    await ctx.yield_output(n)


def flaky_workflow(failures: int, attempts: int, **retry: Any) -> sg.Workflow[int]:
    flaky = Flaky("flaky", failures)
    policy = sg.RetryPolicy(max_attempts=attempts, initial_delay=1.0, backoff=2.0, **retry)
    return (
        sg.WorkflowBuilder[int](start=flaky)
        .add_edge(flaky, sink)
        .set_policy(flaky, retry=policy)
        .build()
    )


class Counting(Flaky):
    async def restore(self, data: int) -> None:
        pass  # keep counting attempts across the retry rollback, to observe them


def test_retry_twice_then_succeed_discards_the_failed_attempts() -> None:
    flaky = Counting("flaky", failures=2)
    wf = (
        sg.WorkflowBuilder[int](start=flaky)
        .add_edge(flaky, sink)
        .set_policy(flaky, retry=sg.RetryPolicy(max_attempts=3, initial_delay=1.0, backoff=2.0))
        .build()
    )
    clock = SleepyClock()

    async def main() -> sg.RunResult:
        return await wf.session(clock=clock).run(7)

    result = asyncio.run(main())
    assert result.outputs == [703]  # only the third attempt's send was delivered
    retries = [e for e in result.events if isinstance(e, sg.ExecutorRetrying)]
    assert [(e.attempt, e.delay) for e in retries] == [(1, 1.0), (2, 2.0)]
    assert all(isinstance(e.error, ConnectionError) for e in retries)
    assert clock.slept == [1.0, 2.0]  # the delays were slept on the injected clock


def test_retry_state_writes_of_failed_attempts_are_absent() -> None:
    flaky = Counting("flaky", failures=2)
    wf = (
        sg.WorkflowBuilder[int](start=flaky)
        .add_edge(flaky, sink)
        .set_policy(flaky, retry=sg.RetryPolicy(max_attempts=3))
        .build()
    )

    async def main() -> dict[str, Any]:
        s = wf.session(clock=SleepyClock())
        await s.run(1)
        return dict(s.state)

    assert asyncio.run(main()) == {"attempt-3": True}


def test_attempts_run_out_and_the_superstep_fails() -> None:
    flaky = Counting("flaky", failures=5)
    wf = (
        sg.WorkflowBuilder[int](start=flaky)
        .add_edge(flaky, sink)
        .build(retry=sg.RetryPolicy(max_attempts=2))  # the workflow default
    )

    async def main() -> sg.Session[int]:
        s = wf.session(clock=SleepyClock())
        with pytest.raises(sg.ExecutorFailedError) as info:
            await s.run(1)
        assert isinstance(info.value.__cause__, ConnectionError)
        return s

    s = asyncio.run(main())
    assert s.status is sg.RunStatus.FAILED
    assert dict(s.state) == {}


def test_errors_outside_retry_on_fail_at_once() -> None:
    flaky = Counting("flaky", failures=1)
    policy = sg.RetryPolicy(max_attempts=5, retry_on=(TimeoutError,))
    wf = (
        sg.WorkflowBuilder[int](start=flaky)
        .add_edge(flaky, sink)
        .set_policy(flaky, retry=policy)
        .build()
    )
    with pytest.raises(sg.ExecutorFailedError):
        asyncio.run(wf.run(1))
    assert flaky.attempts == 0  # the prototype never runs: sessions use fresh copies


def test_a_hanging_handler_is_stopped_by_its_timeout() -> None:
    cancelled = asyncio.Event()

    @sg.executor(id="hang")
    async def hang(n: int, ctx: sg.Context[None, int]) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    wf = sg.WorkflowBuilder[int](start=hang).set_policy(hang, timeout=0.05).build()

    async def main() -> None:
        with pytest.raises(sg.ExecutorFailedError) as info:
            await wf.run(1)
        assert isinstance(info.value.__cause__, sg.ExecutorTimeoutError)
        assert isinstance(info.value.__cause__, TimeoutError)
        assert cancelled.is_set()

    asyncio.run(main())


def test_timeout_then_retry_succeeds() -> None:
    calls: list[int] = []

    @sg.executor(id="slow_once")
    async def slow_once(n: int, ctx: sg.Context[None, int]) -> None:
        calls.append(n)
        if len(calls) == 1:
            await asyncio.Event().wait()
        await ctx.yield_output(n)

    policy = sg.RetryPolicy(max_attempts=2, retry_on=(sg.ExecutorTimeoutError,))
    wf = (
        sg.WorkflowBuilder[int](start=slow_once)
        .set_policy(slow_once, timeout=0.05, retry=policy)
        .build()
    )
    assert asyncio.run(wf.run(4)).outputs == [4]
    assert calls == [4, 4]


def test_run_timeout_ends_failed_at_the_last_committed_superstep() -> None:
    release = asyncio.Event()

    @sg.executor(id="first")
    async def first(n: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("first", n)
        await ctx.send(n)

    @sg.executor(id="stuck")
    async def stuck(n: int, ctx: sg.Context[None, int]) -> None:
        ctx.state.set("stuck", n)
        await release.wait()
        await ctx.yield_output(n)

    wf = sg.WorkflowBuilder[int](start=first).add_edge(first, stuck).build(run_timeout=0.05)

    async def main() -> None:
        s = wf.session()
        with pytest.raises(sg.RunTimeoutError):
            await s.run(3)
        assert s.status is sg.RunStatus.FAILED
        assert s.superstep == 1
        assert dict(s.state) == {"first": 3}
        release.set()
        assert (await s.resume(timeout=5)).outputs == [3]

    asyncio.run(main())


@dataclass(frozen=True)
class Query:
    text: str


class Expensive(sg.Executor):
    """Counts real invocations; sends, outputs and writes state."""

    def __init__(self, id: str, calls: list[str]) -> None:
        super().__init__(id=id)
        self.calls = calls

    @sg.handler
    async def on_query(self, q: Query, ctx: sg.Context[str, str]) -> None:
        self.calls.append(q.text)
        ctx.state.set("last", q.text.upper())
        await ctx.yield_output(f"answer to {q.text}")
        await ctx.send(q.text[::-1])


@sg.executor(id="echo")
async def echo(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"echo {text}")


def cached_workflow(calls: list[str], ttl: float | None = None) -> sg.Workflow[Query]:
    ex = Expensive("expensive", calls)
    return (
        sg.WorkflowBuilder[Query](start=ex)
        .add_edge(ex, echo)
        .set_policy(ex, cache=sg.CachePolicy(ttl=ttl))
        .build()
    )


def test_cached_handler_is_not_rerun_within_a_session() -> None:
    calls: list[str] = []
    wf = cached_workflow(calls)

    async def main() -> None:
        s = wf.session()
        first = await s.run(Query("tide"))
        await s.reset()
        again = await s.run(Query("tide"))
        assert first.outputs == again.outputs == ["answer to tide", "echo edit"]
        assert dict(s.state) == {"last": "TIDE"}  # the state write was replayed too
        await s.run(Query("moon"))

    asyncio.run(main())
    assert calls == ["tide", "moon"]


def test_cache_shared_across_sessions_in_sqlite(tmp_path: Path) -> None:
    calls: list[str] = []

    async def main() -> None:
        cache = sg.SqliteCache(tmp_path / "cache.db")
        a = cached_workflow(calls).session("a", cache=cache)
        assert (await a.run(Query("sun"))).outputs == ["answer to sun", "echo nus"]
        await cache.aclose()
        cache2 = sg.SqliteCache(tmp_path / "cache.db")  # another process would see the same
        b = cached_workflow(calls).session("b", cache=cache2)
        assert (await b.run(Query("sun"))).outputs == ["answer to sun", "echo nus"]
        await cache2.aclose()

    asyncio.run(main())
    assert calls == ["sun"]


def test_cache_entries_expire_on_the_session_clock() -> None:
    calls: list[str] = []
    clock = SleepyClock()

    async def main() -> None:
        cache = sg.MemoryCache()
        wf = cached_workflow(calls, ttl=60)
        await wf.session(clock=clock, cache=cache).run(Query("x"))
        clock.now += timedelta(seconds=30)
        await wf.session(clock=clock, cache=cache).run(Query("x"))
        clock.now += timedelta(seconds=31)
        await wf.session(clock=clock, cache=cache).run(Query("x"))

    asyncio.run(main())
    assert calls == ["x", "x"]


def test_independent_branch_moves_on_inside_a_sub_workflow() -> None:
    """A fast branch grouped as a sub-workflow runs its supersteps without waiting for a slow one."""

    def fast_chain(n: int) -> list[sg.FunctionExecutor]:
        steps = []
        for i in range(n):

            async def step(v: int, ctx: sg.Context[int]) -> None:
                await ctx.send(v + 1)

            steps.append(sg.executor(id=f"fast{i}")(step))
        return steps

    def slow_chain(n: int) -> list[sg.FunctionExecutor]:
        steps = []
        for i in range(n):

            async def step(v: int, ctx: sg.Context[int, int]) -> None:
                if v >= 100 + n - 1:
                    await ctx.yield_output(("slow", v))
                else:
                    await ctx.send(v + 1)

            steps.append(sg.executor(id=f"slow{i}")(step))
        return steps

    @sg.executor(id="split")
    async def split(v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(v)

    @sg.executor(id="split_slow")
    async def split_slow(v: int, ctx: sg.Context[int]) -> None:
        await ctx.send(100)

    @sg.executor(id="fast_done")
    async def fast_done(v: int, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(("fast", v, ctx.superstep))

    def build(grouped: bool) -> sg.Workflow[int]:
        fast = fast_chain(10)
        slow = slow_chain(10)
        b = sg.WorkflowBuilder[int](start=split).add_edge(split, split_slow).add_chain(slow)
        b.add_edge(split_slow, slow[0])
        if grouped:

            @sg.executor(id="inner_out")
            async def inner_out(v: int, ctx: sg.Context[None, int]) -> None:
                await ctx.yield_output(v)

            inner = (
                sg.WorkflowBuilder[int](start=fast[0])
                .add_chain([*fast, inner_out])
                .build(name="fast")
            )
            sub = sg.SubWorkflow(inner, id="fast-branch")
            b.add_edge(split, sub).add_edge(sub, fast_done)
        else:
            b.add_edge(split, fast[0]).add_chain(fast).add_edge(fast[-1], fast_done)
        return b.build(max_supersteps=50)

    def fast_superstep(grouped: bool) -> int:
        outputs = asyncio.run(build(grouped).run(0)).outputs
        (fast,) = [o for o in outputs if o[0] == "fast"]
        assert fast[1] == 10
        return fast[2]

    flat, grouped = fast_superstep(False), fast_superstep(True)
    assert (flat, grouped) == (12, 3)  # barrier-bound: one superstep per step, or all in one


# --------------------------------------------------------------------------- migrations


class AskV1(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        ctx.state.set("topic", text)
        await ctx.request(text, response_type=bool)

    @sg.response_handler
    async def on_answer(self, q: str, ok: bool, ctx: sg.Context[None, str]) -> None:
        await ctx.yield_output(f"v1 {q} {ok}")


class AskV2(sg.Executor):
    @sg.handler
    async def on_text(self, text: str, ctx: sg.Context[None, str]) -> None:
        ctx.state.set("subject", text)
        await ctx.request(text, response_type=bool)

    @sg.response_handler
    async def on_answer(self, q: str, ok: bool, ctx: sg.Context[str, str]) -> None:
        await ctx.send(f"{ctx.state.get('subject')} {ok}")


@sg.executor(id="stamp")
async def stamp(text: str, ctx: sg.Context[None, str]) -> None:
    await ctx.yield_output(f"v2 {text}")


def v1() -> sg.WorkflowBuilder[str]:
    return sg.WorkflowBuilder[str](start=AskV1(id="ask"))


def v2_builder() -> sg.WorkflowBuilder[str]:
    return sg.WorkflowBuilder[str](start=AskV2(id="asker")).add_edge("asker", stamp)


def from_v1(data: sg.MigrationData) -> sg.MigrationData:
    assert data.version == "1"
    data.state["subject"] = data.state.pop("topic")
    data.pending = [sg.Request(r.id, "asker", r.payload, r.response_type) for r in data.pending]
    return data


def test_migrations_carry_paused_sessions_across_two_versions() -> None:
    async def main() -> None:
        store = sg.MemoryCheckpointStore()
        await v1().build(version=1).session("s1", store=store).run("alpha")
        # version 2: renamed executor and state key, a new edge
        wf2 = v2_builder().migrate(1, from_v1).build(version=2)
        s1 = wf2.session("s1", store=store)
        await s1.load()
        (req,) = s1.pending_requests
        await wf2.session("s2", store=store).run("beta")  # a session paused under v2

        # version 3: a migration from 2 only
        def from_v2(data: sg.MigrationData) -> sg.MigrationData:
            data.state["subject"] = str(data.state["subject"]).upper()
            return data

        @sg.executor(id="stamp3")
        async def stamp3(text: str, ctx: sg.Context[None, str]) -> None:
            await ctx.yield_output(f"v3 {text}")

        wf3 = (
            sg.WorkflowBuilder[str](start=AskV2(id="asker"))
            .add_edge("asker", stamp3)
            .migrate(2, from_v2)
            .build(version=3)
        )
        # the v1 session, migrated to v2, answers and finishes there
        result = await s1.respond({req.id: True})
        assert result.outputs == ["v2 alpha True"]
        # the v2 session moves to v3 and finishes there
        s2 = wf3.session("s2", store=store)
        await s2.load()
        (req2,) = s2.pending_requests
        assert (await s2.respond({req2.id: False})).outputs == ["v3 BETA False"]
        # a v1 session cannot jump to v3: no migration from 1
        await v1().build(version=1).session("s3", store=store).run("gamma")
        with pytest.raises(sg.GraphMismatchError) as info:
            await wf3.session("s3", store=store).load()
        msg = str(info.value)
        assert "executor 'ask' was removed" in msg
        assert "executor 'asker' was added" in msg
        assert "migrate('1', fn)" in msg

    asyncio.run(main())


def test_no_policy_means_no_policy_path() -> None:
    wf = sg.WorkflowBuilder[int](start=sink).build()
    assert not wf.blueprint.any_policy
    assert asyncio.run(wf.run(5)).outputs == [5]
