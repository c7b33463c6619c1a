"""Black-box tests of ARCHITECTURE.md section 4, rule 3 (shared state) and `session.state`.

Reads see the state committed at the end of the previous superstep plus the
executor's own writes; writes commit at the barrier, executor by executor in
declaration order, so a later writer of a key wins whatever the timing.
"""

import asyncio
from typing import Any

import pytest

import stepgraph as sg

SAFETY_S = 5.0


async def wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), SAFETY_S)


def test_reads_see_committed_state_plus_own_writes_never_siblings_pending_writes() -> None:
    obs: dict[str, Any] = {}

    async def main() -> sg.Session:
        a_wrote, b_wrote = asyncio.Event(), asyncio.Event()

        @sg.executor(id="s")
        async def s(n: int, ctx: sg.Context[int]) -> None:
            obs["s_before"] = ("k" in ctx.state, ctx.state.get("k"), ctx.state.get("k", "dflt"))
            ctx.state.set("k", "s")
            ctx.state.set("base", 1)
            obs["s_own"] = (ctx.state.get("k"), "k" in ctx.state)
            await ctx.send(n)

        @sg.executor(id="a")
        async def a(n: int, ctx: sg.Context[int]) -> None:
            obs["a_start"] = (ctx.state.get("k"), ctx.state.get("base"))
            ctx.state.set("k", "a")
            ctx.state.set("a_only", 1)
            ctx.state.delete("base")
            a_wrote.set()
            await wait(b_wrote)
            obs["a_after_b_wrote"] = (
                ctx.state.get("k"),
                "a_only" in ctx.state,
                "b_only" in ctx.state,
                "base" in ctx.state,
            )
            await ctx.send(n)

        @sg.executor(id="b")
        async def b(n: int, ctx: sg.Context[int]) -> None:
            await wait(a_wrote)
            obs["b_after_a_wrote"] = (
                ctx.state.get("k"),
                "a_only" in ctx.state,
                "base" in ctx.state,
            )
            ctx.state.set("k", "b")
            ctx.state.set("b_only", 2)
            obs["b_own"] = ctx.state.get("k")
            b_wrote.set()
            await ctx.send(n)

        @sg.executor(id="c")
        async def c(n: int, ctx: sg.Context[None]) -> None:
            obs.setdefault(
                "c",
                (
                    ctx.state.get("k"),
                    ctx.state.get("a_only"),
                    ctx.state.get("b_only"),
                    "base" in ctx.state,
                ),
            )

        wf = (
            sg.WorkflowBuilder(start=s).add_fan_out(s, [a, b]).add_edge(a, c).add_edge(b, c).build()
        )
        session = wf.session()
        await session.run(0)
        return session

    session = asyncio.run(main())
    assert obs["s_before"] == (False, None, "dflt")
    assert obs["s_own"] == ("s", True)
    assert obs["a_start"] == ("s", 1)
    assert obs["b_after_a_wrote"] == ("s", False, True)  # not a's pending writes
    assert obs["b_own"] == "b"
    assert obs["a_after_b_wrote"] == ("a", True, False, False)  # own writes, not b's
    assert obs["c"] == ("b", 1, 2, False)  # committed in declaration order: b wins
    assert session.state.get("k") == "b"
    assert "base" not in session.state


@pytest.mark.parametrize("last_in_time", ["x", "y"])
def test_later_writer_in_declaration_order_wins_at_the_barrier(last_in_time: str) -> None:
    async def main() -> sg.Session:
        wrote = {"x": asyncio.Event(), "y": asyncio.Event()}

        def writer(name: str, other: str) -> sg.Executor:
            @sg.executor(id=name)
            async def write(n: int, ctx: sg.Context[None]) -> None:
                if name == last_in_time:
                    await wait(wrote[other])
                ctx.state.set("k", name)
                if name == "x":
                    ctx.state.set("set_then_deleted", "x")
                    ctx.state.delete("deleted_then_set")
                else:
                    ctx.state.delete("set_then_deleted")
                    ctx.state.set("deleted_then_set", "y")
                wrote[name].set()

            return write

        @sg.executor(id="s")
        async def s(n: int, ctx: sg.Context[int]) -> None:
            ctx.state.set("set_then_deleted", "s")
            ctx.state.set("deleted_then_set", "s")
            await ctx.send(n)

        x, y = writer("x", "y"), writer("y", "x")
        # Edge order is y first; declaration order is x first (seen in the fan-out).
        wf = sg.WorkflowBuilder(start=s).add_fan_out(s, [x, y]).build()
        session = wf.session()
        await session.run(0)
        return session

    state = asyncio.run(main()).state
    assert state.get("k") == "y"
    assert "set_then_deleted" not in state
    assert state.get("deleted_then_set") == "y"


def test_values_are_shared_not_copied() -> None:
    payload = {"items": [1, 2, 3]}
    seen: dict[str, Any] = {}

    @sg.executor(id="a")
    async def a(n: int, ctx: sg.Context[dict[str, Any], dict[str, Any]]) -> None:
        ctx.state.set("payload", payload)
        await ctx.send(payload)
        await ctx.yield_output(payload)

    @sg.executor(id="b")
    async def b(message: dict[str, Any], ctx: sg.Context[None]) -> None:
        seen["message"] = message
        seen["state"] = ctx.state.get("payload")

    wf = sg.WorkflowBuilder(start=a).add_edge(a, b).build()
    session = wf.session()
    result = asyncio.run(session.run(0))
    assert result.outputs[0] is payload
    assert seen["message"] is payload
    assert seen["state"] is payload


def test_session_state_is_a_read_only_view_of_committed_state_only() -> None:
    obs: dict[str, Any] = {}

    async def main() -> sg.Session:
        entered, gate = asyncio.Event(), asyncio.Event()

        @sg.executor(id="s")
        async def s(n: int, ctx: sg.Context[int]) -> None:
            ctx.state.set("first", n)
            await ctx.send(n)

        @sg.executor(id="blocker")
        async def blocker(n: int, ctx: sg.Context[None]) -> None:
            ctx.state.set("second", n)
            entered.set()
            await wait(gate)

        wf = sg.WorkflowBuilder(start=s).add_edge(s, blocker).build()
        session = wf.session()
        task = asyncio.create_task(session.run(7))
        await wait(entered)
        obs["during"] = (session.state.get("first"), "second" in session.state)
        obs["status_during"] = session.status
        gate.set()
        await task
        return session

    session = asyncio.run(main())
    assert obs["during"] == (7, False)
    assert obs["status_during"] is sg.RunStatus.RUNNING
    assert session.state.get("first") == 7
    assert session.state.get("second") == 7
    with pytest.raises(TypeError):
        session.state["first"] = 8  # type: ignore[index]
    assert session.state.get("first") == 7


def test_two_sessions_never_share_state() -> None:
    @sg.executor(id="count")
    async def count(n: int, ctx: sg.Context[None, int]) -> None:
        total = ctx.state.get("total", 0) + n
        ctx.state.set("total", total)
        await ctx.yield_output(total)

    wf = sg.WorkflowBuilder(start=count).build()

    async def main() -> list[list[Any]]:
        one, two = wf.session("one"), wf.session("two")
        results = [await one.run(1), await two.run(10), await one.run(2), await two.run(20)]
        return [list(r.outputs) for r in results]

    assert asyncio.run(main()) == [[1], [10], [3], [30]]
    # One-shot runs of the workflow start from empty state every time.
    assert asyncio.run(wf.run(5)).outputs == [5]
    assert asyncio.run(wf.run(5)).outputs == [5]
