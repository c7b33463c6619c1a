"""The dev UI as a time-travel debugger, in headless Chromium: the checkpoint tree, a
branch from an older checkpoint, edit-and-fork, a breakpoint and resume.

Its own module: one playwright instance at a time (see `test_devui_tokens`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from tests.hosting.support import ARTIFACTS
from tests.hosting.test_devui import browser_on, shot, start

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - browser_on skips (or fails under CI) first
    expect = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    with browser_on("chat", tmp_path_factory.mktemp("dbg")) as page:
        yield page


def tree_of(base: str, session: str) -> dict[str, Any]:
    with httpx2.Client(base_url=base) as http:
        return http.get(f"/ui/api/sessions/{session}/debug/tree").json()


def node(page: Page, checkpoint: str) -> Any:
    return page.locator(f'#checkpoints li[data-checkpoint="{checkpoint}"]')


def last_output(page: Page, text: str) -> None:
    expect(page.locator('#events li[data-type="output"]').last).to_have_text(text)


def test_a_branch_from_an_older_checkpoint_shows_as_a_fork(ui: tuple[Page, str]) -> None:
    page, base = ui
    start(page, "one")
    last_output(page, "output from reply: turn 1: one")
    expect(page.locator("#session-status")).to_have_text("idle")
    session = page.locator("#session-id").inner_text()
    after_one = tree_of(base, session)["head"]
    start(page, "two", here=True)
    last_output(page, "output from reply: turn 2: two")
    # every checkpoint is drawn, each with its superstep and status
    expect(node(page, after_one).locator(".st").first).to_have_text("done")
    expect(page.locator('#checkpoints li[data-status="mid-run"]').first).to_contain_text("step 0")
    node(page, after_one).locator(".cp").first.click()
    expect(page.locator("#inspector")).to_be_visible()
    expect(page.locator("#cp-id")).to_have_text(after_one)
    page.click("#cp-resume")  # restores it (nothing queued there: no superstep runs)
    expect(page.locator(f'#checkpoints li.head[data-checkpoint="{after_one}"]')).to_have_count(1)
    start(page, "branch", here=True)
    last_output(page, "output from reply: turn 2: branch")
    forks = node(page, after_one).locator(":scope > ul.fork > li.branch")
    expect(forks).to_have_count(2)  # the first branch ("two") and the new one ("branch")
    shot(page, "debugger-fork")


def test_edit_and_fork_makes_a_new_node_and_keeps_the_old_one(ui: tuple[Page, str]) -> None:
    page, base = ui
    session = page.locator("#session-id").inner_text()
    tree = tree_of(base, session)
    old = tree["head"]  # after "branch": turns == 2
    node(page, old).locator(".cp").first.click()
    expect(page.locator("#cp-id")).to_have_text(old)
    expect(page.locator("#cp-state")).to_have_value('{\n  "turns": 2\n}')
    page.fill("#cp-state", '{"turns": 41, "note": "edited"}')
    page.click("#cp-fork")
    # the new checkpoint is a child of the old one, selected, head, with the new values
    expect(page.locator("#cp-id")).not_to_have_text(old)
    new = page.locator("#cp-id").inner_text()
    expect(node(page, old).locator(f'li[data-checkpoint="{new}"]')).to_have_count(0)
    expect(page.locator(f'#checkpoints li.head.selected[data-checkpoint="{new}"]')).to_have_count(1)
    expect(page.locator("#cp-state")).to_have_value('{\n  "turns": 41,\n  "note": "edited"\n}')
    expect(page.locator('#cp-diff li.changed[data-key="turns"]')).to_have_text("~ turns: 2 → 41")
    expect(page.locator('#cp-diff li.added[data-key="note"]')).to_have_text('+ note: "edited"')
    assert tree_of(base, session)["data"][0]["parent_id"] == old
    page.locator("#checkpoints").screenshot(path=str(ARTIFACTS / "devui-debugger-tree.png"))
    # the old checkpoint is unchanged
    node(page, old).locator(".cp").first.click()
    expect(page.locator("#cp-id")).to_have_text(old)
    expect(page.locator("#cp-state")).to_have_value('{\n  "turns": 2\n}')
    # and a run goes on from the edited state
    start(page, "after the edit", here=True)
    last_output(page, "output from reply: turn 42: after the edit")
    shot(page, "debugger-edit-fork")


def test_a_breakpoint_pauses_and_resume_finishes(ui: tuple[Page, str]) -> None:
    page, base = ui
    session = page.locator("#session-id").inner_text()
    root = next(n for n in tree_of(base, session)["data"] if n["parent_id"] is None)
    assert root["status"] == "mid-run"  # "one" queued for chat, nothing run yet
    page.check('#bp-before input[data-executor="reply"]')
    node(page, root["id"]).locator("button.resume").first.click()
    head = page.locator("#checkpoints li.head")
    expect(head).to_have_attribute("data-status", "paused")
    expect(head.locator(".st").first).to_have_text("paused")
    expect(page.locator("#session-status")).to_have_text("paused")
    paused = head.get_attribute("data-checkpoint")
    assert paused is not None
    expect(node(page, root["id"]).locator(f'li[data-checkpoint="{paused}"]')).to_have_count(1)
    shot(page, "debugger-paused")
    page.uncheck('#bp-before input[data-executor="reply"]')
    page.click("#resume")
    last_output(page, "output from reply: turn 1: one")
    expect(page.locator("#session-status")).to_have_text("idle")
    expect(page.locator("#checkpoints li.head")).to_have_attribute("data-status", "idle")
    expect(page.locator("#checkpoints li.head .st").first).to_have_text("done")
    shot(page, "debugger-resumed")


def test_graph_zoom_and_fit(ui: tuple[Page, str]) -> None:
    page, _ = ui
    graph = page.locator("#graph")
    expect(graph).to_have_attribute("data-zoom", "1.00")
    page.click("#zoom-in")
    expect(graph).to_have_attribute("data-zoom", "1.25")
    page.click("#zoom-fit")
    wrap = page.locator("#graph-wrap").evaluate("w => w.clientWidth")
    expect(graph).to_have_attribute("width", str(wrap - 4))


def test_cancel_stops_a_running_run_and_reset_starts_a_new_root(ui: tuple[Page, str]) -> None:
    page, _ = ui
    start(page, "sleep 30 slow", here=True)
    expect(page.locator("#session-status")).to_have_text("running")
    expect(page.locator("#cancel")).to_be_enabled()
    page.click("#cancel")
    expect(page.locator("#session-status")).to_have_text("cancelled")
    expect(page.locator("#cancel")).to_be_disabled()
    roots = page.locator("#checkpoints ul.tree > li")
    before = roots.count()
    page.click("#reset")
    expect(page.locator("#session-status")).to_have_text("idle")
    expect(page.locator("#checkpoints li.head")).to_contain_text("step")
    expect(roots).to_have_count(before + 1)  # the reset is a new root
    expect(page.locator("#checkpoints ul.tree > li.head")).to_have_count(1)
