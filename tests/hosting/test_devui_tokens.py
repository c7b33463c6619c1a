"""The dev UI shows agents' tokens live (its own module: one playwright instance at a time).

A chat workflow shows them in its chat bubbles (`test_devui_chat`); any other
workflow with agents, such as `relay`, in the live reply box.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.hosting.test_devui import browser_on, shot, start

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - browser_on skips (or fails under CI) first
    expect = None  # type: ignore[assignment]


def test_agent_tokens_appear_live_in_the_reply(tmp_path: Path) -> None:
    with browser_on("relay", tmp_path) as (page, _):
        expect(page.locator("#chat")).to_be_hidden()  # its start takes a number: no chat
        page.check("#run-json")
        start(page, "5")
        reply = page.locator('#replies p.reply[data-agent="writer"] .text')
        # a word every 0.3 s: the first words show while the run goes on
        expect(reply).to_have_text(re.compile(r"^streamed reply"))
        assert page.locator('#events li[data-type="run_completed"]').count() == 0
        assert reply.inner_text() != "streamed reply to 5 words"
        shot(page, "reply-streaming")
        expect(page.locator('#events li[data-type="run_completed"]')).to_have_count(1)
        expect(reply).to_have_text("streamed reply to 5 words")
        assert page.locator('#events li[data-type="agent_update"]').count() == 0
        shot(page, "reply-done")
