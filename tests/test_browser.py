"""The portal in a real browser: htmx live search, entity navigation and local sign-in."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.browser_server import initialised_settings, live_server
from tests.conftest import BACKSTAGE_EXAMPLES

pytestmark = pytest.mark.browser

COUNT = re.compile(r"^(\d+) entit(?:y|ies)\b")


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal on loopback with Backstage's example catalog imported."""
    settings = initialised_settings(
        tmp_path_factory.mktemp("browser"),
        "browser-test-secret",
        catalog_paths=[
            str(BACKSTAGE_EXAMPLES / "all.yaml"),
            str(BACKSTAGE_EXAMPLES / "acme-corp.yaml"),
        ],
    )
    with live_server(settings) as url:
        yield url


def _count(page: Page) -> int:
    text = page.locator("#result-count").inner_text().strip()
    match = COUNT.match(text)
    assert match, f"unexpected result count text: {text!r}"
    return int(match.group(1))


def test_live_search_narrows_without_reload_then_relations_navigate(page: Page) -> None:
    page.goto("/catalog?kind=all")  # the list opens on Components; tests/catalog covers that
    expect(page.get_by_role("heading", level=1)).to_have_text("Catalog")
    total = _count(page)
    assert total > 25  # the example catalog spans several pages

    # Anything htmx does is an XHR; a full page load would be a navigation request and
    # would also wipe this marker from the window.
    page.evaluate("window.__marker = 1")
    navigations: list[str] = []

    def record(request: Request) -> None:
        if request.is_navigation_request():
            navigations.append(request.url)

    page.on("request", record)
    with page.expect_request(
        lambda request: "/catalog?" in request.url and request.headers.get("hx-request") == "true"
    ):
        page.get_by_role("searchbox", name="Search").press_sequentially("wayback", delay=30)

    count = page.locator("#result-count")
    expect(count).to_contain_text("matching “wayback”")
    narrowed = _count(page)
    # The persistent live region outside #results carries the new count to screen readers.
    expect(page.locator("#results-status")).to_have_text(count.inner_text())
    assert 0 < narrowed < total
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(min(narrowed, 25))
    for text in rows.all_inner_texts():
        assert "wayback" in text.lower()
    assert page.evaluate("window.__marker") == 1
    assert navigations == []
    expect(page).to_have_url(re.compile(r"/catalog\?(.*&)?q=wayback"))  # hx-push-url

    page.locator('#results a[href="/catalog/component/default/wayback-search"]').click()
    expect(page).to_have_url(re.compile(r"/catalog/component/default/wayback-search$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("wayback-search")
    assert page.evaluate("window.__marker") is None  # a real navigation this time

    about = page.get_by_role("region", name="About")  # shown by name, with a kind badge
    owner = about.get_by_role("link", name="team-a")
    expect(owner).to_have_count(1)
    owner.click()
    expect(page).to_have_url(re.compile(r"/catalog/group/default/team-a$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("team-a")
    owns = page.get_by_role("region", name="Owns")
    expect(owns.locator('a[href="/catalog/component/default/wayback-search"]')).to_be_visible()


def test_sign_in_as_a_catalog_user_shows_the_name_in_the_header(page: Page) -> None:
    page.goto("/catalog/group/default/team-b")
    header = page.get_by_role("banner")
    header.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/auth/sign-in\?next=/catalog/group/default/team-b$"))

    users = page.locator("#users li")
    everyone = users.count()
    assert everyone > 1
    page.get_by_role("searchbox", name="Find a user").press_sequentially("amelia", delay=30)
    expect(users).to_have_count(1)
    assert everyone > 1
    # The narrowed list came from the htmx fragment, so it must still know where to go back to.
    page.get_by_role("button", name=re.compile(r"Amelia Park")).click()

    expect(page).to_have_url(re.compile(r"/catalog/group/default/team-b$"))
    expect(header).to_contain_text("Amelia Park")
    expect(header.get_by_role("button", name="Sign out")).to_be_visible()

    header.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/catalog$"))
    expect(header.get_by_role("link", name="Sign in")).to_be_visible()
    expect(header).not_to_contain_text("Amelia Park")


def test_search_forms_work_without_javascript(browser: Browser, portal_url: str) -> None:
    context = browser.new_context(base_url=portal_url, java_script_enabled=False)
    context.route(lambda url: not url.startswith(portal_url), lambda route: route.abort())
    try:
        page = context.new_page()
        page.goto("/catalog")
        total = _count(page)
        search = page.get_by_role("searchbox", name="Search")
        search.fill("wayback")
        with page.expect_navigation():
            page.get_by_role("button", name="Apply").click()
        expect(page).to_have_url(re.compile(r"/catalog\?q=wayback&"))
        assert 0 < _count(page) < total

        page.goto("/auth/sign-in?next=/catalog/import")
        page.get_by_role("searchbox", name="Find a user").fill("amelia")
        with page.expect_navigation():
            page.get_by_role("searchbox", name="Find a user").press("Enter")
        expect(page.locator("#users li")).to_have_count(1)
        page.get_by_role("button", name=re.compile(r"Amelia Park")).click()
        expect(page).to_have_url(re.compile(r"/catalog/import$"))
        expect(page.get_by_role("banner")).to_contain_text("Amelia Park")
    finally:
        context.close()
