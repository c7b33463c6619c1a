"""The hosting logs (SQLite, PostgreSQL): a conversation's head only moves forward."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stepgraph.hosting._log import ConversationRecord, HostingLog, ResponseLog, ResponseRecord


@pytest.fixture(params=["sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HostingLog]:
    if request.param == "sqlite":
        sqlite = ResponseLog(str(tmp_path / "log.db"))
        yield sqlite
        sqlite.close()
        return
    from tests.stores.pg_support import RUN, drop_schemas, require_dsn

    from stepgraph.hosting._pglog import PostgresResponseLog

    dsn, schema = require_dsn(), f"{RUN}_log"
    pg = PostgresResponseLog(dsn, schema=schema)
    try:
        yield pg
    finally:
        pg.close()
        drop_schemas(dsn, schema)


def _response(rid: str, checkpoint: str) -> ResponseRecord:
    body = {"id": rid, "status": "completed", "output": []}
    return ResponseRecord(rid, "conv_1", "conv_1", checkpoint, body, [])


def test_a_stale_response_never_moves_the_head_back(log: HostingLog) -> None:
    """A replica that lost its request lock (paused past its ttl) and records its turn
    after others answered: its response is kept, but the head stays where they left it."""
    log.put_conversation(ConversationRecord("conv_1", "conv_1", 0, {}, None, None))
    assert log.put_response(_response("r1", "cp1"), origin="t", label="1", prior_head=None)
    assert log.put_response(_response("r2", "cp2"), origin="t", label="2", prior_head="r1")
    assert log.put_response(_response("r3", "cp3"), origin="t", label="3", prior_head="r2")
    # the stale replica's failed turn 2, which started from r1's checkpoint
    stale = _response("r2-stale", "cp1")
    assert not log.put_response(stale, origin="t", label="2", prior_head="r1")
    conv = log.get_conversation("conv_1")
    assert conv is not None
    assert (conv.head_response, conv.head_checkpoint) == ("r3", "cp3")
    assert [r.id for r in log.responses_of(conversation_id="conv_1")] == ["r1", "r2", "r3"]
    kept = log.get_response("r2-stale")
    assert kept is not None
    assert kept.conversation_id is None  # retrievable, not one of the conversation's
    # a first turn racing another first turn: only one becomes the head
    log.put_conversation(ConversationRecord("conv_2", "conv_2", 0, {}, None, None))
    first = ResponseRecord("f1", "conv_2", "conv_2", "x1", {}, [])
    assert log.put_response(first, origin="t", label="1", prior_head=None)
    second = ResponseRecord("f2", "conv_2", "conv_2", "x2", {}, [])
    assert not log.put_response(second, origin="t", label="1", prior_head=None)
