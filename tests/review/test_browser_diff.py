"""The change page's diff in a real browser: "Show diff" loads a collapsed file, a comment
is written on a line and resolved, and a revision is read as the changes since the last one."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser_server import initialised_settings, live_server, sign_in, sign_out
from tests.review.test_browser_approval import ready_change, wait_ready

pytestmark = pytest.mark.browser

CATALOG = "catalog-info.yaml"


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal with the repo's catalog, a GitOps remote and the worker."""
    folder = tmp_path_factory.mktemp("browser-diff")
    settings = initialised_settings(folder, "browser-diff-secret", gitops=True, run_worker=True)
    with live_server(settings) as url:
        yield url


def file_section(page: Page, name: str) -> str:
    return f'.diff-file:has(.diff-path:text-is("services/{name}"))'


def test_show_diff_loads_a_collapsed_file_in_place(page: Page) -> None:
    path = ready_change(page, "meter-reader")
    sign_in(page, "grace.hopper", path)
    lock = page.locator(file_section(page, "meter-reader/requirements.lock"))
    expect(lock).to_contain_text("generated lock file")
    expect(lock.locator("table.diff-table")).to_have_count(0)
    lock.get_by_role("link", name="Show diff").click()
    expect(lock.locator("table.diff-table tr").first).to_be_visible()
    expect(lock.locator(".collapsed-note")).to_have_count(0)
    expect(lock.locator("table.diff-table")).to_contain_text("--hash=sha256:")
    # The loaded rows take comments like the others: their numbers became buttons.
    expect(lock.get_by_role("button", name="Comment on line 1", exact=True)).to_be_visible()


def test_a_comment_on_a_line_is_shown_there_and_resolved(page: Page) -> None:
    path = ready_change(page, "meter-writer")
    sign_in(page, "grace.hopper", path)
    catalog = page.locator(file_section(page, f"meter-writer/{CATALOG}"))
    catalog.get_by_role("button", name="Comment on line 2", exact=True).click()
    box = catalog.get_by_role("textbox", name=re.compile(r"Comment on line 2 of"))
    expect(box).to_be_focused()
    box.fill("Should this be a Component?")
    catalog.get_by_role("button", name="Comment", exact=True).click()
    comment = catalog.locator("tr.thread article.comment")
    expect(comment).to_contain_text("Should this be a Component?")
    expect(catalog.locator("tr.comment-form-row")).to_have_count(0)
    # The row under line 2, and counted at the top after a reload.
    line = catalog.locator("tr", has=page.get_by_role("button", name="Comment on line 2"))
    expect(line.locator("xpath=following-sibling::tr[1]")).to_have_class("thread")
    page.reload()
    expect(page.locator("#comments-title")).to_have_text("1 open comment")
    page.locator(".comment-list a").first.click()
    comment = page.locator(f"{file_section(page, f'meter-writer/{CATALOG}')} article.comment")
    comment.get_by_role("button", name="Resolve").click()
    expect(comment.locator(".badge.ok")).to_have_text("resolved")
    page.reload()
    expect(page.locator("#comments-title")).to_contain_text("0 open comments")


def test_a_revision_is_read_as_the_changes_since_the_last_one(page: Page) -> None:
    path = ready_change(page, "meter-store")
    sign_in(page, "grace.hopper", path)
    page.get_by_role("textbox", name="Request changes").fill("Say what it stores")
    page.get_by_role("button", name="Request changes").click()
    expect(page.locator("#changes-request")).to_contain_text("Say what it stores")
    sign_out(page)
    sign_in(page, "alan.turing", path)
    answers = {"name": "meter-store", "owner": "platform-team", "description": "Stores meters"}
    revised = page.request.post(
        f"/api/changes/{path.rsplit('/', 1)[1]}/revise", data={"answers": answers}
    )
    assert revised.status == 202, revised.text()
    wait_ready(page, path)
    sign_out(page)

    sign_in(page, "grace.hopper", path)
    request = page.locator("#changes-request")
    expect(request).to_contain_text("Changes requested on revision 1")
    request.get_by_role("link", name="see the changes since revision 1").click()
    expect(page).to_have_url(re.compile(r"\?since=1#diff$"))
    expect(page.locator("#diff-title")).to_contain_text("Changes since revision 1")
    catalog = page.locator(file_section(page, f"meter-store/{CATALOG}"))
    expect(catalog.locator("tr.del")).to_contain_text("Reads sensors")
    expect(catalog.locator("tr.add")).to_contain_text("Stores meters")
    expect(page.locator(file_section(page, "meter-store/requirements.lock"))).to_have_count(0)
    page.get_by_role("link", name="the whole change").click()
    expect(page.locator("#diff-title")).to_have_text(re.compile(r"^Changes \d+ files"))
