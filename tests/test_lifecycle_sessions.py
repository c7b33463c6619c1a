"""Black-box tests of ARCHITECTURE.md sections 1-3: workflows, sessions and the `Run` object.

A Workflow is an immutable blueprint usable from any number of sessions, event
loops and threads; each session runs its own executor copies made by `fresh()`;
a `Run` is a coroutine (asyncio.run, gather, create_task) and an async iterable.
"""

import asyncio
import collections.abc
import dataclasses
import threading
from typing import Any

import stepgraph as sg

SAFETY_S = 5.0


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), SAFETY_S)


@dataclasses.dataclass(frozen=True)
class Note(sg.Event):
    text: str


class Tally(sg.Executor):
    """Keeps per-instance memory; yields (label, messages seen so far, instance id)."""

    def __init__(self, id: str, label: str) -> None:
        super().__init__(id=id)
        self.label = label
        self.seen: list[int] = []

    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[None, Any]) -> None:
        self.seen.append(n)
        await ctx.yield_output((self.label, tuple(self.seen), id(self)))


def tally_workflow() -> tuple[sg.Workflow, Tally]:
    prototype = Tally("tally", "lbl")
    return sg.WorkflowBuilder(start=prototype).build(name="tally"), prototype


# --------------------------------------------------------------------------- Run protocols


def test_run_is_a_coroutine_for_asyncio_run_gather_and_create_task() -> None:
    wf, _ = tally_workflow()
    run = wf.run(1)
    assert isinstance(run, collections.abc.Coroutine)
    assert asyncio.run(run).outputs[0][:2] == ("lbl", (1,))

    async def main() -> list[Any]:
        one, two = wf.session("one"), wf.session("two")
        gathered = await asyncio.gather(one.run(2), two.run(3), wf.run(4))
        task = asyncio.create_task(one.run(5))
        return [*gathered, await task]

    results = asyncio.run(main())
    assert [r.outputs[0][:2] for r in results] == [
        ("lbl", (2,)),
        ("lbl", (3,)),
        ("lbl", (4,)),
        ("lbl", (2, 5)),
    ]
    assert [r.session_id for r in results[:2]] == ["one", "two"]
    assert all(r.status is sg.RunStatus.IDLE for r in results)


def test_async_with_run_streams_and_releases_the_guard() -> None:
    wf, _ = tally_workflow()

    async def main() -> tuple[list[Any], Any]:
        session = wf.session()
        async with session.run(1) as run:
            events = [event async for event in run]
        return events, await session.run(2)

    events, after = asyncio.run(main())
    assert isinstance(events[0], sg.RunStarted)
    assert isinstance(events[-1], sg.RunCompleted)
    assert events[-1].status is sg.RunStatus.IDLE
    assert [e.value[:2] for e in events if isinstance(e, sg.Output)] == [("lbl", (1,))]
    assert after.outputs[0][:2] == ("lbl", (1, 2))


def test_workflow_stream_is_a_one_shot_session() -> None:
    wf, _ = tally_workflow()

    async def main() -> list[list[Any]]:
        runs = []
        for n in (1, 2):
            runs.append([e.value[:2] async for e in wf.stream(n) if isinstance(e, sg.Output)])
        return runs

    assert asyncio.run(main()) == [[("lbl", (1,))], [("lbl", (2,))]]


def test_session_ids() -> None:
    wf, _ = tally_workflow()
    assert wf.name == "tally"
    named = wf.session("conv-42")
    assert named.id == "conv-42"
    generated, other = wf.session(), wf.session()
    assert isinstance(generated.id, str)
    assert generated.id
    assert generated.id != other.id
    assert asyncio.run(named.run(1)).session_id == "conv-42"
    assert named.status is sg.RunStatus.IDLE


# --------------------------------------------------------------------------- event loops


class Joiner(sg.Executor):
    @sg.handler
    async def on_list(self, items: list[int], ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output((ctx.superstep, sum(items)))


def fan_workflow() -> sg.Workflow:
    """Fan-out, concurrency and fan-in: everything a loop-bound lock or queue would break."""

    @sg.executor(id="s")
    async def s(n: int, ctx: sg.Context[int]) -> None:
        ctx.state.set("runs", ctx.state.get("runs", 0) + 1)
        await ctx.send(n)

    def branch(name: str, factor: int) -> sg.Executor:
        @sg.executor(id=name)
        async def handle(n: int, ctx: sg.Context[int]) -> None:
            await asyncio.sleep(0)
            await ctx.send(n * factor)

        return handle

    one, ten = branch("one", 1), branch("ten", 10)
    return (
        sg.WorkflowBuilder(start=s)
        .add_fan_out(s, [one, ten])
        .add_fan_in([one, ten], Joiner("join"))
        .build()
    )


def test_workflow_and_session_work_across_successive_asyncio_run_calls() -> None:
    wf = fan_workflow()
    session = wf.session("loops")
    results = [asyncio.run(session.run(n)) for n in (1, 2, 3)]
    assert [list(r.outputs) for r in results] == [[(3, 11)], [(6, 22)], [(9, 33)]]
    assert session.state.get("runs") == 3
    assert [list(asyncio.run(wf.run(n)).outputs) for n in (1, 2)] == [[(3, 11)], [(3, 22)]]

    # A stream created in one loop run, consumed in the next.
    async def consume(run: Any) -> list[Any]:
        return [e.value for e in [ev async for ev in run] if isinstance(e, sg.Output)]

    pending = session.run(4)
    assert asyncio.run(consume(pending)) == [(12, 44)]


def test_one_workflow_runs_in_several_threads_each_with_its_own_loop() -> None:
    wf = fan_workflow()
    barrier = threading.Barrier(2, timeout=SAFETY_S)
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        async def main() -> Any:
            session = wf.session(f"thread-{n}")
            first = await session.run(n)
            barrier.wait()  # both loops are alive, each mid-way through its session
            second = await session.run(n)
            return [list(first.outputs), list(second.outputs)]

        try:
            results[n] = asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SAFETY_S * 2)
    assert errors == []
    assert results == {1: [[(3, 11)], [(6, 11)]], 2: [[(3, 22)], [(6, 22)]]}


# --------------------------------------------------------------------------- fresh executors


def test_each_session_gets_its_own_executor_instances() -> None:
    wf, prototype = tally_workflow()

    async def main() -> list[Any]:
        one, two = wf.session("one"), wf.session("two")
        return [
            (await one.run(1)).outputs[0],
            (await one.run(2)).outputs[0],
            (await two.run(9)).outputs[0],
            (await wf.run(7)).outputs[0],
        ]

    first, second, other, oneshot = asyncio.run(main())
    assert first[:2] == ("lbl", (1,))
    assert second[:2] == ("lbl", (1, 2))
    assert other[:2] == ("lbl", (9,))
    assert oneshot[:2] == ("lbl", (7,))
    assert first[2] == second[2]  # one session keeps its instance across runs
    assert len({first[2], other[2], oneshot[2], id(prototype)}) == 4
    assert prototype.seen == []  # the prototype is never run


class Custom(sg.Executor):
    """Keeps the list it is given, so it overrides fresh() to hand each copy its own."""

    def __init__(self, id: str, start: list[int]) -> None:
        super().__init__(id=id)
        self.items = start

    def fresh(self) -> "Custom":
        return Custom(self.id, list(self.items))

    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[None, Any]) -> None:
        self.items.append(n)
        await ctx.yield_output(list(self.items))


def test_overridden_fresh_is_used_for_every_session() -> None:
    shared = [0]
    wf = sg.WorkflowBuilder(start=Custom("custom", shared)).build()

    async def main() -> list[Any]:
        one, two = wf.session(), wf.session()
        return [
            (await one.run(1)).outputs,
            (await two.run(2)).outputs,
            (await one.run(3)).outputs,
        ]

    assert asyncio.run(main()) == [[[0, 1]], [[0, 2]], [[0, 1, 3]]]
    assert shared == [0]


class Appender(sg.Executor):
    """Keeps the list it is given: the default fresh() passes that same object again."""

    def __init__(self, id: str, log: list[int]) -> None:
        super().__init__(id=id)
        self.log = log

    @sg.handler
    async def on_int(self, n: int, ctx: sg.Context[None, Any]) -> None:
        self.log.append(n)
        await ctx.yield_output(n)


def test_default_fresh_passes_the_same_argument_objects_again() -> None:
    log: list[int] = []
    wf = sg.WorkflowBuilder(start=Appender("appender", log)).build()

    async def main() -> None:
        await wf.session().run(1)
        await wf.session().run(2)

    asyncio.run(main())
    assert log == [1, 2]


def test_two_sessions_of_one_workflow_run_concurrently_without_sharing() -> None:
    async def main() -> list[Any]:
        arrived: list[str] = []
        both = asyncio.Event()

        class Meet(sg.Executor):
            def __init__(self, id: str) -> None:
                super().__init__(id=id)
                self.count = 0

            @sg.handler
            async def on_int(self, n: int, ctx: sg.Context[None, Any]) -> None:
                self.count += n
                ctx.state.set("mine", ctx.session_id)
                arrived.append(ctx.session_id)
                if len(arrived) == 2:
                    both.set()
                await wait(both)  # both sessions are mid-superstep at once
                await ctx.yield_output((ctx.session_id, self.count, ctx.state.get("mine")))

        wf = sg.WorkflowBuilder(start=Meet("meet")).build()
        one, two = wf.session("one"), wf.session("two")
        results = await asyncio.gather(one.run(1), two.run(10))
        return [
            *[list(r.outputs) for r in results],
            one.state.get("mine"),
            two.state.get("mine"),
        ]

    assert asyncio.run(main()) == [[("one", 1, "one")], [("two", 10, "two")], "one", "two"]


# --------------------------------------------------------------------------- sync executors


def test_sync_executor_runs_in_a_worker_thread_and_uses_ctx_with_plain_calls() -> None:
    loop_threads: list[int] = []
    sync_threads: list[int] = []
    released = threading.Event()

    @sg.executor(id="start")
    async def start(n: int, ctx: sg.Context[int]) -> None:
        loop_threads.append(threading.get_ident())
        await ctx.send(n)

    @sg.executor(id="sync_step")
    def sync_step(n: int, ctx: sg.Context[int, str]) -> None:
        sync_threads.append(threading.get_ident())
        # Blocks its thread until an async sibling in the same superstep runs: this
        # can only finish if the function does not run on the event loop's thread.
        assert released.wait(SAFETY_S)
        ctx.state.set("from_sync", n)
        ctx.emit(Note(f"note{n}"))
        ctx.yield_output(f"sync{n}")
        ctx.send(n + 1)

    @sg.executor(id="sibling")
    async def sibling(n: int, ctx: sg.Context[None]) -> None:
        await asyncio.sleep(0)
        released.set()

    @sg.executor(id="after")
    async def after(n: int, ctx: sg.Context[None, Any]) -> None:
        await ctx.yield_output(("after", n, ctx.state.get("from_sync")))

    wf = (
        sg.WorkflowBuilder(start=start)
        .add_fan_out(start, [sync_step, sibling])
        .add_edge(sync_step, after)
        .build()
    )
    result = asyncio.run(wf.run(1))
    assert result.outputs == ["sync1", ("after", 2, 1)]
    assert [e.text for e in result.events if isinstance(e, Note)] == ["note1"]
    assert sync_threads
    assert sync_threads[0] != loop_threads[0]
