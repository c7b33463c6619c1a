"""The dev UI in headless Chromium (Debian's `chromium`, driven by Python `playwright`).

Skipped with a reason when Chromium or playwright is missing, except under
`CI=true`, where they must run. Screenshots go to `test-artifacts/`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from tests.hosting.support import APPS, ARTIFACTS, ServerProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]

MISSING = (
    "Debian's chromium is not installed (apt-get install chromium)"
    if CHROMIUM is None
    else "the playwright package is not installed (pip install playwright)"
    if sync_playwright is None
    else None
)


@contextlib.contextmanager
def browser_on(app: str | list[str], tmp: Path) -> Iterator[tuple[Any, str]]:
    """A headless page on the dev UI of `apps.<app>` (or of several) served by a uvicorn
    process.
    """
    if MISSING is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"dev UI tests must run under CI: {MISSING}")
        pytest.skip(MISSING)
    target = f"{APPS}:{app}" if isinstance(app, str) else [f"{APPS}:{a}" for a in app]
    server = ServerProcess(target, f"sqlite:///{tmp}/runs.db", tmp / "server.log")
    server.start()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
            )
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.set_default_timeout(15_000)
            page.goto(f"{server.base_url}/ui/")
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            expect(page.locator("#conn")).to_have_attribute("data-live", "true")
            yield page, server.base_url
            browser.close()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    with browser_on("chat", tmp_path_factory.mktemp("ui")) as page:
        yield page


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"devui-{name}.png"), full_page=True)


def start(page: Page, text: str, *, here: bool = False) -> None:
    page.fill("#run-input", text)
    page.click("#run-here" if here else "#run-new")


def test_graph_renders(browser_page: tuple[Page, str]) -> None:
    page, _ = browser_page
    expect(page.locator("#wf-name")).to_have_text("chat")
    expect(page.locator('#graph g[data-node="chat"]')).to_have_class("node start")
    expect(page.locator('#graph g[data-node="reply"] text')).to_have_text("reply")
    expect(page.locator('#graph path[data-edge="chat->reply"]')).to_have_count(1)
    shot(page, "graph")


def test_events_appear_live(browser_page: tuple[Page, str]) -> None:
    page, _ = browser_page
    start(page, "sleep 1.5 hello")
    # seen while the run is still going: the chat executor started, nothing completed yet
    expect(page.locator('#events li[data-type="executor_invoked"]').first).to_have_text(
        "chat invoked"
    )
    expect(page.locator('#graph g[data-node="chat"]')).to_have_class("node start running")
    assert page.locator('#events li[data-type="run_completed"]').count() == 0
    shot(page, "live-running")
    expect(page.locator('#events li[data-type="output"]')).to_have_text(
        "output from reply: turn 1: hello"
    )
    expect(page.locator('#events li[data-type="run_completed"]')).to_have_text(
        "run completed: idle"
    )
    expect(page.locator('#graph g[data-node="reply"]')).to_have_class("node executor done")
    shot(page, "live-done")


def test_pending_request_answered_through_the_form(browser_page: tuple[Page, str]) -> None:
    page, _ = browser_page
    page.click("#clear-events")
    start(page, "approve deploy")
    form = page.locator("form.request")
    expect(form).to_have_count(1)
    expect(form).to_contain_text("Verdict")
    expect(page.locator('#graph g[data-node="chat"]')).to_have_class("node start waiting")
    form.locator('input[name="approved"]').check()
    form.locator('input[name="note"]').fill(" by the UI")
    shot(page, "pending-form")
    form.locator('button[type="submit"]').click()
    expect(page.locator('#events li[data-type="output"]')).to_have_text(
        "output from chat: deploy: approved by the UI"
    )
    expect(page.locator("#pending")).to_have_text("none")
    shot(page, "pending-answered")


def test_branch_from_an_older_checkpoint(browser_page: tuple[Page, str]) -> None:
    page, base = browser_page
    page.click("#clear-events")
    start(page, "one")
    expect(page.locator('#events li[data-type="output"]')).to_have_text(
        "output from reply: turn 1: one"
    )
    expect(page.locator('#events li[data-type="run_completed"]')).to_have_count(1)
    expect(page.locator("#session-status")).to_have_text("idle")
    session = page.locator("#session-id").inner_text()
    with httpx2.Client(base_url=base) as http:
        after_one = http.get(f"/ui/api/sessions/{session}").json()["head"]
    start(page, "two", here=True)
    expect(page.locator('#events li[data-type="output"]').last).to_have_text(
        "output from reply: turn 2: two"
    )
    older = page.locator(f'#checkpoints li[data-checkpoint="{after_one}"]')
    expect(older).to_have_count(1)
    older.locator("button.resume").first.click()
    expect(page.locator(f'#checkpoints li.head[data-checkpoint="{after_one}"]')).to_have_count(1)
    start(page, "branch", here=True)
    expect(page.locator('#events li[data-type="output"]').last).to_have_text(
        "output from reply: turn 2: branch"
    )
    # the older checkpoint now has two children: the tree shows a fork under it
    expect(page.locator(f'#checkpoints li[data-checkpoint="{after_one}"] ul')).to_have_count(1)
    shot(page, "branch")
