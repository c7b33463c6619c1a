"""One dev UI for several workflows, in headless Chromium: a picker switches the graph,
new sessions run the workflow shown, and opening a session shows its own workflow.

Its own module: one playwright instance at a time (see `test_devui_tokens`).
"""

from __future__ import annotations

from pathlib import Path

from tests.hosting.test_devui import browser_on, shot, start

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - browser_on skips (or fails under CI) first
    expect = None  # type: ignore[assignment]


def test_the_picker_switches_workflows_and_sessions_open_in_theirs(tmp_path: Path) -> None:
    with browser_on(["chat", "three"], tmp_path) as (page, _):
        picker = page.locator("#model")
        expect(picker).to_be_visible()
        expect(page.locator("#wf-name")).to_have_text("chat")
        start(page, "hello")  # a session of `chat`, the first served
        expect(page.locator('#events li[data-type="output"]')).to_have_text(
            "output from reply: turn 1: hello"
        )
        chat_session = page.locator("#session-id").inner_text()

        picker.select_option("three")
        expect(page.locator("#wf-name")).to_have_text("three")
        expect(page.locator('#graph g[data-node="enrich"]')).to_have_count(1)
        expect(page.locator('#graph g[data-node="chat"]')).to_have_count(0)
        start(page, "abc")  # runs `three`, the workflow shown
        expect(page.locator('#events li[data-type="output"]')).to_have_count(1)
        assert "abc" in page.locator('#events li[data-type="output"]').inner_text().lower()
        shot(page, "models-three")

        page.click(f'#sessions li[data-session="{chat_session}"]')  # a session of `chat`
        expect(page.locator("#wf-name")).to_have_text("chat")
        expect(page.locator("#session-id")).to_have_text(chat_session)
        expect(page.locator('#graph g[data-node="chat"]')).to_have_count(1)
        expect(picker).to_have_value("chat")
