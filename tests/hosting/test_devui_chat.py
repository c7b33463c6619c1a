"""The chat view of an agent workflow in headless Chromium (its own module: one playwright
instance at a time): send, watch the reply stream, reload and find the conversation.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.hosting.test_devui import browser_on, shot

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - browser_on skips (or fails under CI) first
    expect = None  # type: ignore[assignment]

BUBBLE = "#chat-log li.msg"


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def test_chat_streams_the_reply_and_reloads_the_conversation(tmp_path: Path) -> None:
    with browser_on("writer", tmp_path) as (page, _):
        expect(page.get_by_role("region", name="Chat")).to_be_visible()
        expect(page.locator("#replies-panel")).to_be_hidden()  # the bubbles show the tokens

        send(page, "you")  # no session selected: a new one starts and is selected
        expect(page.locator(f'{BUBBLE}[data-role="user"] .text')).to_have_text("you")
        live = page.locator(f'{BUBBLE}[data-role="assistant"][data-live="true"]')
        # a word every 0.3 s: the bubble grows while the run goes on
        expect(live.locator(".text")).to_have_text(re.compile(r"^streamed reply"))
        assert page.locator('#events li[data-type="run_completed"]').count() == 0
        assert live.locator(".text").inner_text() != "streamed reply to you"
        expect(live.locator(".who")).to_have_text("writer")
        shot(page, "chat-streaming")
        expect(page.locator('#events li[data-type="run_completed"]')).to_have_count(1)
        # the ended run is folded into the conversation the server read from the checkpoint
        expect(page.locator(f"{BUBBLE}[data-live]")).to_have_count(0)
        expect(page.locator(f'{BUBBLE}[data-role="assistant"] .text')).to_have_text(
            "streamed reply to you"
        )
        session = page.locator("#session-id").inner_text()
        assert session

        send(page, "again")  # the selected session: a second turn of the same conversation
        expect(page.locator(f'{BUBBLE}[data-role="user"] .text')).to_have_text(["you", "again"])
        expect(page.locator('#events li[data-type="run_completed"]')).to_have_count(2)
        expect(page.locator(f"{BUBBLE}[data-live]")).to_have_count(0)
        expect(page.locator(f"{BUBBLE} .text")).to_have_count(4)

        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator("#chat-log")).to_have_text(re.compile("no messages yet"))
        page.locator(f'#sessions li[data-session="{session}"]').click()
        expect(page.locator(f"{BUBBLE} .text")).to_have_text(
            ["you", "streamed reply to you", "again", "streamed reply to again"]
        )
        expect(page.locator(f"{BUBBLE} .who")).to_have_text(["you", "writer", "you", "writer"])
        expect(page.locator(f"{BUBBLE}[data-live]")).to_have_count(0)
        shot(page, "chat-reloaded")
