"""The dev UI shows what the store holds, in headless Chromium: a session a script ran
straight on the store (no live stream ever reached the page) is listed, and its runs are
replayed from checkpoint traces: events with their data, and a per-superstep timeline.

Its own module: one playwright instance at a time (see `test_devui_tokens`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.hosting.support import APPS
from tests.hosting.test_devui import browser_on, shot

from stepgraph.loading import import_file
from stepgraph.stores import SqliteCheckpointStore

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - browser_on skips (or fails under CI) first
    expect = None  # type: ignore[assignment]


async def by_script(db: Path) -> None:
    """`chat` (loaded as the server loads it) run twice from Python on the server's store."""
    chat = import_file(APPS).chat
    store = SqliteCheckpointStore(db)
    try:
        session = chat.session("by-script", store=store)
        await session.run("hello")
        await session.run("json two words")
    finally:
        await store.aclose()


def test_a_scripts_session_is_listed_and_its_runs_replayed(tmp_path: Path) -> None:
    with browser_on("chat", tmp_path) as (page, _):
        # After the page opened, in a thread of its own (playwright's loop runs in this one):
        # the page never sees these runs live.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, by_script(tmp_path / "runs.db")).result()
        page.click("#refresh")
        page.click('#sessions li[data-session="by-script"]')
        history = page.locator("#history li[data-run]")
        expect(history).to_have_count(2)
        expect(history.first).to_contain_text("2 supersteps · 1 event")
        expect(history.nth(1)).to_contain_text("1 superstep · 1 event")
        assert page.locator('#events li[data-type="output"]').count() == 0  # never live here

        history.first.click()
        expect(page.locator("#replay")).to_be_visible()
        steps = page.locator('#timeline [data-testid="timeline-step"]')
        expect(steps).to_have_count(2)
        expect(steps.first.locator('.tl-bar[data-executor="chat"]')).to_have_count(1)
        expect(steps.nth(1).locator('.tl-bar[data-executor="reply"]')).to_have_count(1)
        expect(page.locator('#replayed li[data-type="output"]')).to_have_text(
            "output of reply: turn 1: hello"
        )
        shot(page, "history-run-1")

        history.nth(1).click()
        expect(page.locator('#replayed li[data-type="output"]')).to_have_text(
            'output of chat: {"text":"two words","words":2}'
        )
        expect(page.locator("#replay-status")).to_have_text("idle")
        shot(page, "history-run-2")
