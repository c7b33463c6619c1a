"""The five orchestrations: who speaks when with what input, resume from every checkpoint, reset."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentUpdate,
    ChatMessage,
    FunctionCall,
    ScriptedChatClient,
    ToolSpec,
)
from stepgraph.orchestrations import (
    GroupChatState,
    Handoff,
    PlanReview,
    PlanReviewRequest,
    Progress,
    Review,
    ReviewRequest,
    UserInputRequest,
    concurrent,
    group_chat,
    handoff,
    magentic,
    sequential,
)

Answer = Callable[[sg.Request], Any]


def agent(
    name: str, reply: Callable[[Sequence[ChatMessage]], Any]
) -> tuple[Agent, ScriptedChatClient]:
    client = ScriptedChatClient(lambda messages, tools: reply(messages), name=name)
    return Agent(name, client), client


def texts(messages: Sequence[ChatMessage]) -> list[str]:
    return [m.text for m in messages if m.text]


async def drive(session: sg.Session[Any], run: sg.Run, answer: Answer | None) -> list[Any]:
    """Run, answering requests until the session is idle; all outputs in order."""
    return [v for _, v in await drive_log(session, run, answer)]


async def drive_log(
    session: sg.Session[Any], run: sg.Run, answer: Answer | None
) -> list[tuple[int, Any]]:
    """Like `drive`, with the superstep that committed each output (read from the events)."""
    log: list[tuple[int, Any]] = []

    def record(result: sg.RunResult) -> None:
        superstep = 0
        for event in result.events:
            if isinstance(event, sg.SuperstepStarted):
                superstep = event.superstep
            elif isinstance(event, sg.Output):
                log.append((superstep, event.value))

    result = await run
    record(result)
    while result.pending_requests:
        assert answer is not None, f"unexpected request {result.pending_requests[0]}"
        request = result.pending_requests[0]
        result = await session.respond({request.id: answer(request)})
        record(result)
    return log


def assert_resumable(wf: sg.Workflow[Any], task: Any, answer: Answer | None = None) -> list[Any]:
    """Resuming from every checkpoint reaches the same outputs as the uninterrupted run."""

    async def main() -> list[Any]:
        store = sg.MemoryCheckpointStore()
        first = wf.session("orig", store=store)
        log = await drive_log(first, first.run(task), answer)
        outputs = [v for _, v in log]
        history = list(reversed(await first.history()))
        assert len(history) >= 3
        for info in history:
            copy = sg.MemoryCheckpointStore()
            await copy.save(await store.load(info.id))
            session = wf.session(
                "orig", store=copy
            )  # fresh objects, state only from the checkpoint
            done = [v for k, v in log if k <= info.superstep]
            rest = await drive(session, session.resume(info.id), answer)
            assert done + rest == outputs, f"resumed from superstep {info.superstep}"
        return outputs

    return asyncio.run(main())


# --------------------------------------------------------------------------- sequential


def test_sequential_each_sees_the_conversation_so_far() -> None:
    writer, wc = agent("writer", lambda m: f"draft about {m[-1].text}")
    editor, ec = agent("editor", lambda m: f"edited: {m[-1].text}")
    wf = sequential([writer, editor])
    (conversation,) = asyncio.run(wf.run("tides")).outputs
    assert texts(conversation) == ["tides", "draft about tides", "edited: draft about tides"]
    assert [texts(r.messages) for r in wc.requests] == [["tides"]]
    assert [texts(r.messages) for r in ec.requests] == [["tides", "draft about tides"]]
    assert conversation[1].author == "writer"


def test_sequential_last_reply_only_and_review_loop() -> None:
    writer, wc = agent("writer", lambda m: f"v{sum(1 for x in m if x.author == 'reviewer') + 1}")
    editor, ec = agent("editor", lambda m: f"final({m[-1].text})")
    wf = sequential([writer, editor], context="last", review_after=["writer"])
    reviews = iter([Review(False, "shorter"), Review(True)])

    def answer(request: sg.Request) -> Any:
        assert isinstance(request.payload, ReviewRequest)
        assert request.payload.participant == "writer"
        return next(reviews)

    outputs = assert_resumable(
        wf,
        "topic",
        lambda r: (
            Review(True) if r.payload.conversation[-1].text == "v2" else Review(False, "shorter")
        ),
    )
    assert texts(outputs[0])[-1] == "final(v2)"
    s = wf.session()
    out = asyncio.run(drive(s, s.run("topic"), answer))
    assert texts(out[0]) == ["topic", "v1", "shorter", "v2", "final(v2)"]
    assert [texts(r.messages) for r in ec.requests][-1] == ["v2"]  # "last": only the previous reply
    assert texts(wc.requests[-1].messages) == ["shorter"]


# --------------------------------------------------------------------------- concurrent


def test_concurrent_fans_out_and_aggregates_in_participant_order() -> None:
    a, ac = agent("optimist", lambda m: f"yes to {m[-1].text}")
    b, bc = agent("pessimist", lambda m: f"no to {m[-1].text}")
    wf = concurrent([a, b])
    outputs = assert_resumable(wf, "rain")
    assert texts(outputs[0]) == ["rain", "yes to rain", "no to rain"]
    assert texts(ac.requests[0].messages) == texts(bc.requests[0].messages) == ["rain"]

    custom = concurrent([a, b], aggregator=lambda replies: " | ".join(r.text for r in replies))
    assert asyncio.run(custom.run("sun")).outputs == ["yes to sun | no to sun"]


def test_concurrent_review_before_aggregation() -> None:
    a, ac = agent("a", lambda m: "A!" if any(x.text == "louder" for x in m) else "a")
    b, _ = agent("b", lambda m: "B!" if any(x.text == "louder" for x in m) else "b")
    wf = concurrent([a, b], review=True)

    def answer(request: sg.Request) -> Review:
        replies = [m.text for m in request.payload.conversation]
        return Review(True) if "A!" in replies else Review(False, "louder")

    outputs = assert_resumable(wf, "go", answer)
    assert texts(outputs[0])[-2:] == ["A!", "B!"]
    assert texts(ac.requests[-1].messages) == ["go", "louder"]


class Pacing:
    """What the agents of one test share: who is answering, how many at once at most."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.finished: list[str] = []


class PacedClient(ScriptedChatClient):
    """Streams its reply after `turns` turns of the event loop, counting agents in flight."""

    def __init__(self, name: str, turns: int, pacing: Pacing) -> None:
        super().__init__(lambda m, t: f"{name} on {m[-1].text}", name=name)
        self.turns = turns
        self.pacing = pacing

    async def get_streaming_response(self, messages: Any, **kw: Any) -> Any:
        p = self.pacing
        p.in_flight += 1
        p.peak = max(p.peak, p.in_flight)
        for _ in range(self.turns):
            await asyncio.sleep(0)
        async for update in super().get_streaming_response(messages, **kw):
            yield update
        p.in_flight -= 1
        p.finished.append(self.name or "")


@pytest.mark.parametrize(("limit", "peak"), [(None, 3), (1, 1)])
def test_concurrent_runs_its_agents_as_items_of_a_map(limit: int | None, peak: int) -> None:
    pacing = Pacing()
    agents = [Agent(n, PacedClient(n, t, pacing)) for n, t in [("a", 6), ("b", 3), ("c", 0)]]
    wf = concurrent(agents, max_concurrency=limit)
    result = asyncio.run(wf.run("q"))
    (conversation,) = result.outputs
    assert texts(conversation) == ["q", "a on q", "b on q", "c on q"]  # participant order
    assert pacing.peak == peak
    if limit is None:
        assert pacing.finished == ["c", "b", "a"]  # whatever order they finish in
    items = [e.item for e in result.events if isinstance(e, sg.ExecutorInvoked)]
    assert [e.executor_id for e in result.events if isinstance(e, sg.ExecutorInvoked)] == [
        "input",
        "spread",
        "participants",
        "participants",
        "participants",
        "aggregate",
    ]
    assert items == [None, None, 0, 1, 2, None]
    updates = {(e.executor_id, e.agent) for e in result.events if isinstance(e, AgentUpdate)}
    assert updates == {("a", "a"), ("b", "b"), ("c", "c")}  # per agent, as before


def test_concurrent_with_an_executor_participant_fans_out_to_it() -> None:
    a, _ = agent("a", lambda m: "from a")

    @sg.executor(id="echo")
    async def echo(conversation: list[ChatMessage], ctx: sg.Context[list[ChatMessage]]) -> None:
        await ctx.send([*conversation, ChatMessage.assistant("echo", "echo")])

    result = asyncio.run(concurrent([a, echo]).run("hi"))
    assert texts(result.outputs[0]) == ["hi", "from a", "echo"]
    invoked = [e.executor_id for e in result.events if isinstance(e, sg.ExecutorInvoked)]
    assert invoked == ["input", "a", "echo", "aggregate"]


def test_concurrent_participants_need_unique_names() -> None:
    a, _ = agent("a", lambda m: "x")
    with pytest.raises(ValueError, match="unique names"):
        concurrent([a, a])


# --------------------------------------------------------------------------- handoff


def triage_agents() -> tuple[list[Agent], dict[str, ScriptedChatClient]]:
    def triage(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> Any:
        if "refund" in messages[-1].text:
            return FunctionCall("", "handoff_to_billing", {})
        return "How can I help?"

    def billing(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> Any:
        users = [m.text for m in messages if m.role == "user"]
        return f"billing handled {users[-1]}" if len(users) > 1 else "Which order?"

    clients = {"triage": ScriptedChatClient(triage), "billing": ScriptedChatClient(billing)}
    return [Agent(n, c) for n, c in clients.items()], clients


def test_handoff_interactive_asks_the_user_when_no_handoff() -> None:
    agents, clients = triage_agents()
    wf = handoff(agents, mode="interactive", termination=lambda m: "handled" in m[-1].text)

    def answer(request: sg.Request) -> str:
        assert isinstance(request.payload, UserInputRequest)
        return "order 7"

    outputs = assert_resumable(wf, "I want a refund", answer)
    conversation = outputs[0]
    assert conversation[-1].text == "billing handled order 7"
    assert clients["triage"].requests[0].tools == ("handoff_to_billing",)
    assert "handoff_to_triage" in clients["billing"].requests[0].tools

    async def events() -> list[sg.Event]:
        s = wf.session()
        result = await s.run("I want a refund")
        return result.events

    handoffs = [e for e in asyncio.run(events()) if isinstance(e, Handoff)]
    assert handoffs == [Handoff("triage", "billing")]


def test_handoff_autonomous_continues_up_to_the_turn_limit() -> None:
    agents, clients = triage_agents()
    wf = handoff(agents, mode="autonomous", max_turns=4)
    (conversation,) = asyncio.run(wf.run("refund please")).outputs
    speakers = [m.author for m in conversation if m.role == "assistant" and m.text]
    assert speakers == ["billing", "billing", "billing"]  # after the handoff, billing goes on alone
    assert len(clients["triage"].requests) == 1


def test_handoff_topology_limits_tools() -> None:
    agents, clients = triage_agents()
    wf = handoff(
        agents, topology={"triage": ["billing"], "billing": []}, mode="autonomous", max_turns=3
    )
    asyncio.run(wf.run("refund"))
    assert clients["billing"].requests[0].tools == ()


# --------------------------------------------------------------------------- group chat


def test_group_chat_with_a_selection_function() -> None:
    a, ac = agent("alice", lambda m: f"alice after {len(m)}")
    b, _bc = agent("bob", lambda m: f"bob after {len(m)}")

    def pick(state: GroupChatState) -> str | None:
        return ["alice", "bob", "alice"][state.round] if state.round < 3 else None

    wf = group_chat([a, b], manager=pick)
    outputs = assert_resumable(wf, "plan a trip")
    assert texts(outputs[0]) == ["plan a trip", "alice after 1", "bob after 2", "alice after 3"]
    assert [len(r.messages) for r in ac.requests[:2]] == [1, 3]

    async def progress() -> list[Progress]:
        result = await wf.run("x")
        return [e for e in result.events if isinstance(e, Progress)]

    assert [(p.round, p.speaker) for p in asyncio.run(progress())] == [
        (1, "alice"),
        (2, "bob"),
        (3, "alice"),
    ]


def test_group_chat_with_a_manager_agent_round_limit_and_review() -> None:
    a, _ = agent("alice", lambda m: "idea")
    b, _ = agent("bob", lambda m: "critique")
    manager_client = ScriptedChatClient(
        lambda m, t: json.dumps({"next": "bob" if m[-1].author == "alice" else "alice"})
    )
    wf = group_chat([a, b], manager=Agent("boss", manager_client), max_rounds=3, review=True)
    outputs = assert_resumable(wf, "brainstorm", lambda r: Review(True))
    assert texts(outputs[0]) == ["brainstorm", "idea", "critique", "idea"]
    request = manager_client.requests[0]
    assert request.options is not None
    assert request.options.response_format is not None
    assert "alice, bob" in request.messages[0].text


# --------------------------------------------------------------------------- magentic


def ledger(done: bool, speaker: str = "coder", progress: bool = True, loop: bool = False) -> str:
    return json.dumps(
        {
            "is_request_satisfied": done,
            "is_in_loop": loop,
            "is_progress_being_made": progress,
            "next_speaker": speaker,
            "instruction": f"{speaker}: do the next step",
        }
    )


def magentic_team(
    manager_reply: Callable[[Sequence[ChatMessage]], str],
) -> tuple[sg.Workflow[Any], ScriptedChatClient, ScriptedChatClient]:
    coder_client = ScriptedChatClient(
        lambda m, t: f"code #{sum(1 for x in m if x.author == 'coder') + 1}", name="coder"
    )
    manager_client = ScriptedChatClient(lambda m, t: manager_reply(m))
    wf = magentic(
        [Agent("coder", coder_client)],
        manager=Agent("manager", manager_client),
        max_rounds=5,
        max_stalls=1,
        max_resets=1,
    )
    return wf, manager_client, coder_client


def manager_script(
    stall_after: int | None = None, done_after: int = 2
) -> Callable[[Sequence[ChatMessage]], str]:
    def reply(messages: Sequence[ChatMessage]) -> str:
        system = messages[0].text
        if system.startswith("List the facts"):
            return "facts: none"
        if system.startswith("Write a short bullet plan"):
            return "plan: write code"
        if system.startswith("Give the final answer"):
            return f"final after {sum(1 for m in messages if m.author == 'coder')} coder turns"
        turns = sum(1 for m in messages if m.author == "coder")
        if stall_after is not None and turns >= stall_after:
            return ledger(False, progress=False, loop=True)
        return ledger(turns >= done_after)

    return reply


def test_magentic_plans_steers_and_answers() -> None:
    wf, _manager, coder = magentic_team(manager_script())
    outputs = assert_resumable(wf, "write a sorter")
    assert outputs[-1].text == "final after 2 coder turns"
    first = coder.requests[0].messages
    assert [m.text for m in first] == ["coder: do the next step"]  # only the instruction
    assert first[-1].author == "manager"
    second = coder.requests[1].messages
    assert [m.author for m in second] == ["coder", "manager"]  # then the conversation so far


def test_magentic_stall_replan_and_limit() -> None:
    wf, manager, _ = magentic_team(manager_script(stall_after=1))

    async def main() -> tuple[list[Any], list[Progress]]:
        result = await wf.run("endless task")
        return result.outputs, [e for e in result.events if isinstance(e, Progress)]

    outputs, progress = asyncio.run(main())
    details = [p.detail for p in progress if p.speaker == "manager"]
    assert "stalled: re-planning" in details
    assert details[-1] == "finished: stalled too often"
    plans = [r for r in manager.requests if r.messages[0].text.startswith("List the facts")]
    assert len(plans) == 2  # the first plan, then one re-plan before giving up
    assert "We are stuck" in plans[1].messages[-1].text
    assert outputs[-1].author == "manager"


def test_magentic_round_limit() -> None:
    wf, _, coder = magentic_team(manager_script(done_after=99))
    (answer,) = asyncio.run(wf.run("long task")).outputs
    assert answer.text == "final after 5 coder turns"
    assert len(coder.requests) == 5


def test_magentic_plan_review() -> None:
    manager_client = ScriptedChatClient(lambda m, t: manager_script()(m))
    coder = Agent("coder", ScriptedChatClient(lambda m, t: "code"))
    wf = magentic([coder], manager=Agent("manager", manager_client), plan_review=True)
    reviews = iter([PlanReview(False, "add tests"), PlanReview(True)])

    def answer(request: sg.Request) -> PlanReview:
        assert isinstance(request.payload, PlanReviewRequest)
        return next(reviews)

    s = wf.session()
    outputs = asyncio.run(drive(s, s.run("task"), answer))
    assert outputs[-1].author == "manager"
    plan_calls = [
        r for r in manager_client.requests if r.messages[0].text.startswith("Write a short")
    ]
    assert "Reviewer feedback: add tests" in plan_calls[1].messages[-1].text


# --------------------------------------------------------------------------- reset leaves no trace


@pytest.mark.parametrize(
    "pattern", ["sequential", "concurrent", "handoff", "group_chat", "magentic"]
)
def test_reset_between_unrelated_tasks_leaves_no_trace(pattern: str) -> None:
    clients: list[ScriptedChatClient] = []

    def make(name: str) -> Agent:
        client = ScriptedChatClient(lambda m, t: f"{name} ok", name=name)
        clients.append(client)
        return Agent(name, client)

    if pattern == "sequential":
        wf = sequential([make("a"), make("b")])
    elif pattern == "concurrent":
        wf = concurrent([make("a"), make("b")])
    elif pattern == "handoff":
        wf = handoff([make("a"), make("b")], mode="autonomous", max_turns=2)
    elif pattern == "group_chat":
        wf = group_chat([make("a"), make("b")], manager=lambda s: "a" if s.round < 2 else None)
    else:
        manager = ScriptedChatClient(lambda m, t: manager_script(done_after=1)(m))
        clients.append(manager)
        coder = Agent("coder", ScriptedChatClient(lambda m, t: "code", name="coder"))
        wf = magentic([coder], manager=Agent("manager", manager))

    async def main() -> None:
        s = wf.session()
        await s.run("SECRET-FIRST-TASK")
        await s.reset()
        for c in clients:
            c.requests.clear()
        await s.run("second task")
        for c in clients:
            for request in c.requests:
                assert all("SECRET" not in m.text for m in request.messages), (pattern, request)

    asyncio.run(main())
