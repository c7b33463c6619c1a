"""Agents journal their model and tool calls: a resumed turn repeats neither."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import store_of

import stepgraph as sg
from stepgraph.agents import (
    Agent,
    AgentExecutor,
    AgentResponse,
    AgentUpdate,
    ApprovalRequest,
    ApprovalResponse,
    ChatMessage,
    FunctionCall,
    FunctionResult,
    ScriptedChatClient,
    ScriptedRequest,
    tool,
    tool_idempotency_key,
)
from stepgraph.stores import MemoryCheckpointStore


def _prompts(requests: list[ScriptedRequest]) -> list[tuple[str, ...]]:
    """Each request the model got, as the texts and calls it was shown."""
    return [
        tuple(f"{m.role}:{m.text}{[c.name for c in m.function_calls]}" for m in r.messages)
        for r in requests
    ]


def assert_only_the_failed_call_was_asked_again(requests: list[ScriptedRequest]) -> None:
    """The requests were: one that was answered, one that failed, the same one again."""
    first, failed, again = _prompts(requests)
    assert failed == again
    assert first != failed


class Weather:
    """A tool with a side effect to count, and the agent using it."""

    def __init__(self, script: list[Any], *, stream: bool = True) -> None:
        self.looked: list[str] = []
        self.client = ScriptedChatClient(script)

        def lookup(city: str) -> str:
            """Look the weather up (a paid API call)."""
            self.looked.append(city)
            return f"sunny in {city}"

        self.agent = Agent("weather", self.client, tools=[tool(lookup)])
        self.stream = stream

    def workflow(self) -> sg.Workflow[str]:
        """A new workflow object each time (as a new process would build)."""
        start = AgentExecutor(self.agent, stream=self.stream)
        return sg.WorkflowBuilder[str](start=start).build(name="weather")


# The turn: a tool call, then a model call that hits a rate limit once.
TURN = [
    FunctionCall("", "lookup", {"city": "Oslo"}),
    ConnectionError("429 Too Many Requests"),
    "It is sunny in Oslo.",
]


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_resumed_turn_repeats_no_model_call_and_no_tool_call(
    kind: str, stream: bool, tmp_path: Path
) -> None:
    weather = Weather(list(TURN), stream=stream)

    async def main() -> None:
        session = weather.workflow().session("s", store=store_of(kind, tmp_path))
        with pytest.raises(sg.ExecutorFailedError):
            await session.run("Weather in Oslo?")
        assert weather.looked == ["Oslo"]
        result = await session.resume()
        assert weather.looked == ["Oslo"]  # the tool ran once
        (response,) = result.outputs
        assert isinstance(response, AgentResponse)
        assert response.text == "It is sunny in Oslo."
        # The first model call was asked once; only the failed one was asked again.
        assert_only_the_failed_call_was_asked_again(weather.client.requests)
        if stream:  # the replayed call streamed nothing; the new one streamed its words
            updates = [e for e in result.events if isinstance(e, AgentUpdate)]
            assert "".join(u.text for u in updates) == "It is sunny in Oslo."
            assert all(not u.function_calls for u in updates)
        assert [m.role for m in response.messages] == ["assistant", "tool", "assistant"]
        assert response.messages[1].contents[0] == FunctionResult("call_1_0", "sunny in Oslo")

    asyncio.run(main())


class RecordingStore(MemoryCheckpointStore):
    """A store that also keeps activation records (the `RecordStore` protocol).

    Sessions opened on it in turn stand for processes restarted over one durable store.
    """

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[tuple[str, str], dict[str, bytes]] = {}

    async def save_record(self, session_id: str, base_id: str, key: str, data: bytes) -> None:
        self.records.setdefault((session_id, base_id), {})[key] = data

    async def load_records(self, session_id: str, base_id: str) -> dict[str, bytes]:
        return dict(self.records.get((session_id, base_id), {}))

    async def delete_records(self, session_id: str, base_id: str | None = None) -> None:
        for key in [k for k in self.records if k[0] == session_id]:
            if base_id is None or key[1] == base_id:
                del self.records[key]


def test_a_restart_resumes_the_turn_without_repeating_calls() -> None:
    """New workflow and session objects (a new process) find the recorded calls in the store."""
    weather = Weather(list(TURN))
    store = RecordingStore()

    async def main() -> None:
        with pytest.raises(sg.ExecutorFailedError):
            await weather.workflow().session("s", store=store).run("Weather in Oslo?")
        assert store.records  # the model call and the tool call, recorded
        result = await weather.workflow().session("s", store=store).resume()
        assert result.outputs[0].text == "It is sunny in Oslo."
        assert not store.records  # garbage once the superstep committed

    asyncio.run(main())
    assert weather.looked == ["Oslo"]
    assert_only_the_failed_call_was_asked_again(weather.client.requests)


def test_a_retry_policy_retries_the_failed_model_call_only() -> None:
    weather = Weather(list(TURN))

    async def main() -> None:
        wf = (
            sg.WorkflowBuilder[str](start=AgentExecutor(weather.agent))
            .set_policy("weather", retry=sg.RetryPolicy(max_attempts=2, initial_delay=0))
            .build()
        )
        result = await wf.run("Weather in Oslo?")  # no store: steps are kept in memory
        assert result.outputs[0].text == "It is sunny in Oslo."
        assert weather.looked == ["Oslo"]
        assert_only_the_failed_call_was_asked_again(weather.client.requests)

    asyncio.run(main())


class Ledger:
    """Payments actually made, through a tool a person must approve."""

    def __init__(self, script: list[Any]) -> None:
        self.paid: list[int] = []
        self.client = ScriptedChatClient(script)

        @tool(approval_required=True)
        def pay(amount: int) -> str:
            """Pay an amount."""
            self.paid.append(amount)
            return f"paid {amount}"

        self.agent = Agent("clerk", self.client, tools=[pay])

    def workflow(self) -> sg.Workflow[str]:
        return sg.WorkflowBuilder[str](start=AgentExecutor(self.agent)).build(name="payments")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_approved_tool_runs_once_when_its_superstep_fails_after_it(
    kind: str, tmp_path: Path
) -> None:
    ledger = Ledger(
        [FunctionCall("call-pay", "pay", {"amount": 40}), TimeoutError("model timed out"), "Paid."]
    )

    async def main() -> None:
        session = ledger.workflow().session("desk", store=store_of(kind, tmp_path))
        (request,) = (await session.run("pay the invoice")).pending_requests
        assert isinstance(request.payload, ApprovalRequest)
        with pytest.raises(sg.ExecutorFailedError):
            await session.respond({request.id: ApprovalResponse(True)})
        assert ledger.paid == [40]
        result = await session.resume()
        assert ledger.paid == [40]  # approved once, paid once
        assert result.outputs[0].text == "Paid."
        # The call was asked for once; the model call that timed out, again.
        assert_only_the_failed_call_was_asked_again(ledger.client.requests)

    asyncio.run(main())


def test_an_approved_tool_runs_once_across_a_restart() -> None:
    ledger = Ledger(
        [FunctionCall("call-pay", "pay", {"amount": 40}), TimeoutError("model timed out"), "Paid."]
    )
    store = RecordingStore()

    def session() -> sg.Session[str]:
        return ledger.workflow().session("desk", store=store)  # new objects each time

    async def main() -> None:
        (request,) = (await session().run("pay")).pending_requests
        with pytest.raises(sg.ExecutorFailedError):
            await session().respond({request.id: ApprovalResponse(True)})
        result = await session().resume()
        assert result.outputs[0].text == "Paid."

    asyncio.run(main())
    assert ledger.paid == [40]
    assert_only_the_failed_call_was_asked_again(ledger.client.requests)


@dataclass(frozen=True)
class Forecast:
    city: str
    sky: str


def test_a_tool_result_that_cannot_be_recorded_fails_naming_the_tool() -> None:
    def forecast(city: str) -> Forecast:
        """The forecast."""
        return Forecast(city, "clear")

    def workflow(*extra: type) -> sg.Workflow[str]:
        client = ScriptedChatClient([FunctionCall("", "forecast", {"city": "Oslo"}), "Clear."])
        agent = Agent("weather", client, tools=[tool(forecast)])
        return sg.WorkflowBuilder[str](start=AgentExecutor(agent)).register_types(*extra).build()

    async def main() -> None:
        with pytest.raises(sg.ExecutorFailedError) as info:
            await workflow().run("Oslo?")
        cause = info.value.__cause__
        assert isinstance(cause, sg.SerializationError)
        assert "tool 'forecast' of agent 'weather'" in str(cause)
        assert "register_types" in str(cause)
        result = await workflow(Forecast).run("Oslo?")
        assert result.outputs[0].text == "Clear."

    asyncio.run(main())


def test_an_agent_run_without_step_calls_everything_again() -> None:
    """Outside a workflow (no `step`), `Agent.run` is a plain call, as before."""
    weather = Weather([FunctionCall("", "lookup", {"city": "Oslo"}), "Sunny."] * 2)
    agent = weather.agent

    async def main() -> None:
        for _ in range(2):
            assert (await agent.run("Weather?")).text == "Sunny."

    asyncio.run(main())
    assert weather.looked == ["Oslo", "Oslo"]


def test_two_agents_in_one_handler_call_have_their_own_step_names() -> None:
    first = ScriptedChatClient(["one"])
    second = ScriptedChatClient(["two"])
    tries: list[int] = []

    @sg.executor(id="both")
    async def both(text: str, ctx: sg.Context[None, str]) -> None:
        a = await Agent("a", first).run(text, step=ctx.step)
        b = await Agent("b", second).run(text, step=ctx.step)
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("after both answered")
        await ctx.yield_output(f"{a.text} {b.text}")

    async def main() -> None:
        wf = (
            sg.WorkflowBuilder[str](start=both)
            .register_types(ChatMessage)
            .set_policy("both", retry=sg.RetryPolicy(max_attempts=2, initial_delay=0))
            .build()
        )
        assert (await wf.run("go")).outputs == ["one two"]
        assert (len(first.requests), len(second.requests)) == (1, 1)

    asyncio.run(main())


def test_a_tool_call_has_an_idempotency_key_stable_when_it_runs_again() -> None:
    """A call that ran but was not recorded runs again with the same key; others differ."""
    keys: list[tuple[str, str | None]] = []

    def charge(amount: int) -> Any:
        """Charge a card (the payment API deduplicates on the key)."""
        keys.append((f"charge {amount}", tool_idempotency_key()))
        first = len(keys) == 1
        return Forecast("not", "recordable") if first else f"charged {amount}"

    def calls(*amounts: int) -> list[FunctionCall]:
        return [FunctionCall("", "charge", {"amount": a}) for a in amounts]

    def workflow() -> sg.Workflow[str]:
        client = ScriptedChatClient([calls(5, 7), "Done."])
        start = AgentExecutor(Agent("till", client, tools=[tool(charge)]))
        retry = sg.RetryPolicy(max_attempts=2, initial_delay=0)
        return sg.WorkflowBuilder[str](start=start).set_policy("till", retry=retry).build()

    async def main() -> None:
        # The first result cannot be recorded (as if the process died before its record was
        # written): the retry calls the tool again, with the same key.
        assert (await workflow().session("a").run("pay")).outputs[0].text == "Done."
        (_, first), (_, again), (_, other) = keys
        assert first is not None
        assert len(first) == 32
        assert first == again
        assert other not in (None, first)  # another call of the same turn
        keys.clear()
        await workflow().session("b").run("pay")  # another session: other keys
        assert first not in {k for _, k in keys}

    asyncio.run(main())
    keys.clear()
    plain = Agent("x", ScriptedChatClient([calls(1), "ok"]), tools=[tool(charge)])
    assert asyncio.run(plain.run("go")).text == "ok"
    assert keys == [("charge 1", None)]  # outside a workflow there is no stable key
