"""Responses API scenarios with the official `openai` client, in process and over a socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from tests.hosting import apps
from tests.hosting.conftest import Target
from tests.hosting.support import in_process, wait_until


def answer(call_id: str, output: str) -> list[dict[str, str]]:
    return [{"type": "function_call_output", "call_id": call_id, "output": output}]


def test_conversation_of_several_turns(target: Target) -> None:
    async def main() -> None:
        async with target.open() as c:
            r1 = await c.responses.create(model="chat", input="alpha")
            r2 = await c.responses.create(model="chat", input="beta", previous_response_id=r1.id)
            r3 = await c.responses.create(
                model="chat",
                input=[{"role": "user", "content": [{"type": "input_text", "text": "gamma"}]}],
                previous_response_id=r2.id,
            )
            assert [r.output_text for r in (r1, r2, r3)] == [
                "turn 1: alpha",
                "turn 2: beta",
                "turn 3: gamma",
            ]
            assert r2.previous_response_id == r1.id
            assert (await c.responses.retrieve(r2.id)).output_text == "turn 2: beta"
            # branch from an older response, then continue the original line
            b2 = await c.responses.create(model="chat", input="beta2", previous_response_id=r1.id)
            assert b2.output_text == "turn 2: beta2"
            r4 = await c.responses.create(model="chat", input="delta", previous_response_id=r3.id)
            assert r4.output_text == "turn 4: delta"

            conv = await c.conversations.create(metadata={"topic": "t"})
            outs = []
            for text in ("one", "two", "three"):
                r = await c.responses.create(model="chat", input=text, conversation=conv.id)
                assert r.conversation is not None
                assert r.conversation.id == conv.id
                outs.append(r.output_text)
            assert outs == ["turn 1: one", "turn 2: two", "turn 3: three"]
            items = await c.conversations.items.list(conv.id, order="asc")
            texts = [i.content[0].text for i in items.data if i.type == "message"]  # type: ignore[union-attr]
            assert texts == ["one", "turn 1: one", "two", "turn 2: two", "three", "turn 3: three"]
            assert (await c.conversations.retrieve(conv.id)).metadata == {"topic": "t"}

    asyncio.run(main())


def test_request_answered_with_function_call_output(target: Target) -> None:
    async def main() -> None:
        async with target.open() as c:
            r1 = await c.responses.create(model="chat", input="approve deploy")
            assert r1.status == "completed"
            (call,) = r1.output
            assert call.type == "function_call"
            assert call.name == "workflow_request"
            assert json.loads(call.arguments) == {"text": "deploy"}
            r2 = await c.responses.create(
                model="chat",
                input=answer(call.call_id, '{"approved": true, "note": " (ok)"}'),
                previous_response_id=r1.id,
            )
            assert r2.output_text == "deploy: approved (ok)"
            # an enum answer, converted to the declared type
            r3 = await c.responses.create(
                model="chat", input="pick level", previous_response_id=r2.id
            )
            r4 = await c.responses.create(
                model="chat", input=answer(r3.output[0].call_id, "high"), previous_response_id=r3.id
            )
            assert r4.output_text == "level: high"
            # two requests answered in one turn
            r5 = await c.responses.create(model="chat", input="twice q", previous_response_id=r4.id)
            c1, c2 = (o.call_id for o in r5.output)  # type: ignore[union-attr]
            r6 = await c.responses.create(
                model="chat",
                input=answer(c1, '{"approved": false}') + answer(c2, '{"approved": true}'),
                previous_response_id=r5.id,
            )
            assert sorted(o.content[0].text for o in r6.output) == [  # type: ignore[union-attr]
                "q-1: refused",
                "q-2: approved",
            ]
            # an answer that does not fit: 4xx naming the expected type, nothing changes
            r7 = await c.responses.create(
                model="chat", input="approve x", previous_response_id=r6.id
            )
            with pytest.raises(openai.BadRequestError) as bad:
                await c.responses.create(
                    model="chat",
                    input=answer(r7.output[0].call_id, '{"note": "no verdict"}'),
                    previous_response_id=r7.id,
                )
            assert "Verdict" in str(bad.value)
            with pytest.raises(openai.BadRequestError, match="no pending request"):
                await c.responses.create(
                    model="chat", input=answer("nope", "1"), previous_response_id=r7.id
                )
            ok = await c.responses.create(
                model="chat",
                input=answer(r7.output[0].call_id, '{"approved": true}'),
                previous_response_id=r7.id,
            )
            assert ok.output_text == "x: approved"

    asyncio.run(main())


def test_streamed_reply_through_the_stream_helper(target: Target) -> None:
    async def main() -> None:
        async with target.open() as c:
            async with c.responses.stream(model="chat", input="hello") as stream:
                kinds = [e.type async for e in stream]
                final = await stream.get_final_response()
            assert final.output_text == "turn 1: hello"
            assert kinds[:2] == ["response.created", "response.in_progress"]
            assert kinds[-1] == "response.completed"
            for needed in (
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
            ):
                assert needed in kinds
            # a streamed request, raw: sequence numbers grow, items come before their deltas
            events = [
                e
                async for e in await c.responses.create(
                    model="chat", input="approve ship", previous_response_id=final.id, stream=True
                )
            ]
            seqs = [e.sequence_number for e in events]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == len(seqs)
            types = [e.type for e in events]
            assert types.index("response.output_item.added") < types.index(
                "response.function_call_arguments.delta"
            )
            done = events[-1]
            assert done.type == "response.completed"
            call = done.response.output[0]
            assert call.type == "function_call"
            # stepgraph's own events on request, still accepted by the helper
            async with c.responses.stream(
                model="chat",
                input=answer(call.call_id, '{"approved": true}'),
                previous_response_id=done.response.id,
                extra_body={"stepgraph_events": True},
            ) as stream:
                kinds = [e.type async for e in stream]
                final = await stream.get_final_response()
            assert final.output_text == "ship: approved"
            assert "stepgraph.event" in kinds

    asyncio.run(main())


def test_fresh_request_after_a_pending_one_is_clean(target: Target) -> None:
    async def main() -> None:
        async with target.open() as c:
            pending = await c.responses.create(model="chat", input="approve a")
            assert pending.output[0].type == "function_call"
            fresh = await c.responses.create(model="chat", input="hello")
            assert fresh.output_text == "turn 1: hello"
            assert [o.type for o in fresh.output] == ["message"]
            again = await c.responses.create(model="chat", input="hello")
            assert again.output_text == "turn 1: hello"
            done = await c.responses.create(
                model="chat",
                input=answer(pending.output[0].call_id, '{"approved": true}'),
                previous_response_id=pending.id,
            )
            assert done.output_text == "a: approved"

    asyncio.run(main())


def test_two_conversations_in_parallel(target: Target) -> None:
    async def main() -> None:
        async with target.open() as c:
            a = await c.conversations.create()
            b = await c.conversations.create()
            ta = asyncio.ensure_future(
                c.responses.create(model="chat", input="sleep 1 a", conversation=a.id)
            )
            tb = asyncio.ensure_future(
                c.responses.create(model="chat", input="sleep 1 b", conversation=b.id)
            )

            async def both_busy() -> bool:
                return await target.busy(a.id) and await target.busy(b.id)

            await wait_until(both_busy, "both conversations running at once")
            ra, rb = await ta, await tb
            assert (ra.output_text, rb.output_text) == ("turn 1: a", "turn 1: b")

    asyncio.run(main())


def test_busy_conversation_gets_409_without_retry(target: Target) -> None:
    async def main() -> None:
        async with target.open() as c:
            conv = await c.conversations.create()
            first = asyncio.ensure_future(
                c.responses.create(model="chat", input="sleep 1 slow", conversation=conv.id)
            )
            await wait_until(lambda: target.busy(conv.id), "the first request running")
            with pytest.raises(openai.ConflictError) as busy:
                await c.with_options(max_retries=2).responses.create(
                    model="chat", input="second", conversation=conv.id
                )
            assert busy.value.response.headers["x-should-retry"] == "false"
            assert busy.value.code == "conversation_busy"
            assert (await first).output_text == "turn 1: slow"
            after = await c.responses.create(model="chat", input="third", conversation=conv.id)
            assert after.output_text == "turn 2: third"

    asyncio.run(main())


def test_failed_turn_and_structured_output(target: Target) -> None:
    async def main() -> None:
        async with target.open() as c:
            r1 = await c.responses.create(model="chat", input="first")
            bad = await c.responses.create(model="chat", input="boom", previous_response_id=r1.id)
            assert bad.status == "failed"
            assert bad.error is not None
            assert "boom requested" in bad.error.message
            assert "Traceback" not in bad.error.message
            # continuing from the failed response starts from before it
            r2 = await c.responses.create(model="chat", input="next", previous_response_id=bad.id)
            assert r2.output_text == "turn 2: next"
            js = await c.responses.create(model="chat", input="json hello world")
            assert json.loads(js.output_text) == {"text": "hello world", "words": 2}

    asyncio.run(main())


def test_unknown_ids_and_both_ids(target: Target) -> None:
    async def main() -> None:
        async with target.open() as c:
            r1 = await c.responses.create(model="chat", input="x")
            with pytest.raises(openai.NotFoundError):
                await c.responses.create(model="chat", input="y", previous_response_id="resp_0")
            with pytest.raises(openai.NotFoundError):
                await c.responses.create(model="chat", input="y", conversation="conv_0")
            with pytest.raises(openai.NotFoundError):
                await c.responses.retrieve("resp_0")
            with pytest.raises(openai.BadRequestError, match="cannot be used together"):
                await c.responses.create(
                    model="chat", input="y", previous_response_id=r1.id, conversation="conv_0"
                )

    asyncio.run(main())


def test_a_repeated_answer_gets_the_first_response_and_runs_nothing() -> None:
    """A client retrying its `function_call_output` (plain or streamed) gets the response
    the first answer made, and the handler ran once; in a conversation, another output
    for an answered call is a 409; from a `previous_response_id` it is a branch."""

    async def main() -> None:
        async with in_process(apps.chat) as (app, c):
            host = app.state.host

            def answered(session_id: str) -> int:
                return sum(r.kind == "respond" for r in host.runs_of(session_id))

            ask = await c.responses.create(model="chat", input="approve deploy")
            sid = ask.model_extra["stepgraph"]["session_id"]  # type: ignore[index]
            yes = answer(ask.output[0].call_id, '{"approved": true}')  # type: ignore[union-attr]
            first = await c.responses.create(model="chat", input=yes, previous_response_id=ask.id)
            again = await c.responses.create(model="chat", input=yes, previous_response_id=ask.id)
            assert again.id == first.id
            assert again.output_text == first.output_text == "deploy: approved"
            async with c.responses.stream(
                model="chat", input=yes, previous_response_id=ask.id
            ) as stream:
                kinds = [e.type async for e in stream]
                streamed = await stream.get_final_response()
            assert streamed.id == first.id
            assert streamed.output_text == "deploy: approved"
            assert kinds[0] == "response.created"
            assert "response.output_text.delta" in kinds
            assert answered(sid) == 1
            # another output from the same response: a branch, as from any older response
            no = answer(ask.output[0].call_id, '{"approved": false}')  # type: ignore[union-attr]
            other = await c.responses.create(model="chat", input=no, previous_response_id=ask.id)
            assert other.id != first.id
            assert other.output_text == "deploy: refused"
            assert answered(sid) == 2

            conv = await c.conversations.create()
            ask = await c.responses.create(model="chat", input="approve ship", conversation=conv.id)
            yes = answer(ask.output[0].call_id, '{"approved": true}')  # type: ignore[union-attr]
            first = await c.responses.create(model="chat", input=yes, conversation=conv.id)
            again = await c.responses.create(model="chat", input=yes, conversation=conv.id)
            assert again.id == first.id
            assert answered(conv.id) == 1
            no = answer(ask.output[0].call_id, '{"approved": false}')  # type: ignore[union-attr]
            with pytest.raises(openai.ConflictError) as refused:
                await c.responses.create(model="chat", input=no, conversation=conv.id)
            assert refused.value.code == "call_already_answered"
            assert first.id in refused.value.message
            items = await c.conversations.items.list(conv.id, order="asc")
            assert len(items.data) == 4  # ask, its call, the answer, its reply: once each

    asyncio.run(main())


def test_a_streamed_turn_frees_its_conversation_before_response_completed() -> None:
    """A client may send its next turn the moment it reads `response.completed`: by then
    the session is released (else that next turn would race the release and get a 409).

    Driven through raw ASGI so the check runs exactly when the server sends the frame.
    """

    async def main() -> None:
        async with in_process(apps.chat) as (app, _):
            host = app.state.host
            body = json.dumps({"model": "chat", "input": "hello", "stream": True}).encode()
            seen: list[tuple[str, bool]] = []
            sessions: set[str] = set()

            sent = [False]
            ended = asyncio.Event()  # the response's last body message went out

            async def receive() -> dict[str, Any]:
                if not sent[0]:
                    sent[0] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await ended.wait()  # then the client hangs up
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] != "http.response.body":
                    return
                if not message.get("more_body", False):
                    ended.set()
                for line in message.get("body", b"").decode().splitlines():
                    if line.startswith("event: "):
                        kind = line[len("event: ") :]
                        held = host._guard.held()  # pyright: ignore[reportPrivateUsage]
                        sessions.update(held)
                        seen.append((kind, bool(held)))

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/v1/responses",
                "raw_path": b"/v1/responses",
                "query_string": b"",
                "root_path": "",
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"authorization", b"Bearer test"),
                    (b"host", b"app"),
                ],
                "client": ("127.0.0.1", 1),
                "server": ("app", 80),
            }
            await app(scope, receive, send)
            assert sessions, "no session was held while the turn ran"
            kinds = [k for k, _ in seen]
            assert kinds[-1] == "response.completed"
            assert seen[0] == ("response.created", True)  # held while the run goes on
            assert seen[-1] == ("response.completed", False)  # free when the client hears it

    asyncio.run(main())
