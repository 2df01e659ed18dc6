"""Create a service through the form in a real browser, watch it, review it, approve it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser_server import initialised_settings, live_server, sign_in

pytestmark = pytest.mark.browser

SERVICE = "air-quality-api"
WORK_TIMEOUT_MS = 60_000  # render and checks normally take about a second


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal with the repo's catalog, a GitOps remote and the background worker."""
    folder = tmp_path_factory.mktemp("browser-scaffold")
    settings = initialised_settings(folder, "browser-scaffold-secret", gitops=True, run_worker=True)
    with live_server(settings) as url:
        yield url


def _fill_the_form(page: Page) -> None:
    page.get_by_role("link", name="FastAPI service", exact=True).click()
    expect(page).to_have_url(re.compile(r"/create/fastapi-service$"))
    # A click's navigation returns once the page commits, before its scripts ran: answering
    # then (as a loaded CI machine did) leaves htmx nothing to listen with, and the plain
    # form (which works without JavaScript) is not what this test is about.
    page.wait_for_load_state("load")
    image = page.locator("#field-image_repository")
    expect(image).to_have_value("registry.example.com/services/")
    page.locator("#field-name").fill(SERVICE)
    page.locator("#field-name").press("Tab")  # leaving the name fires "change": htmx
    page.locator("#field-owner").select_option("platform-team")
    # The default built from the name follows it (htmx re-rendered the form) ...
    expect(image).to_have_value(f"registry.example.com/services/{SERVICE}")
    # ... and what was chosen meanwhile stays (hx-preserve), as does the focus.
    expect(page.locator("#field-owner")).to_have_value("platform-team")
    expect(page.locator("#field-owner")).to_be_focused()
    page.locator("#field-description").fill("Serves hourly air-quality readings")
    # A conditional question disappears and comes back with the answer it depends on.
    metrics = page.get_by_role("checkbox", name="Enable metrics")
    metrics.uncheck()
    expect(page.locator("#field-scrape_interval")).to_have_count(0)
    metrics.check()
    expect(page.locator("#field-scrape_interval")).to_have_value("30s")
    expect(page.locator("#field-description")).to_have_value("Serves hourly air-quality readings")


def test_create_watch_review_approve_and_find_it_in_the_catalog(page: Page) -> None:
    sign_in(page, "ada.lovelace", "/create")
    _fill_the_form(page)
    polls: list[str] = []
    page.on(
        "request",
        lambda request: (
            polls.append(request.url) if request.headers.get("hx-target") == "progress" else None
        ),
    )
    page.get_by_role("button", name="Create the change").click()
    expect(page).to_have_url(re.compile(r"/reviews/[0-9a-f]{16}$"))
    change_url = page.url
    status = page.locator(".page-head [data-status]")
    initial = status.get_attribute("data-status")
    assert initial in ("rendering", "checking"), f"the change was {initial} before it was shown"
    page.evaluate("window.portalNotReloaded = true")  # gone if the page reloads

    expect(status).to_have_text("ready for review", timeout=WORK_TIMEOUT_MS)
    assert page.evaluate("window.portalNotReloaded") is True, "the page reloaded"
    assert polls, "the progress never polled"
    expect(page.locator('[data-step="checks"]')).to_have_attribute("data-state", "done")
    expect(page.locator("#progress-status")).to_have_text("Finished: the change is ready.")

    # The review: checks per environment, the file tree and the highlighted diff.
    expect(page.get_by_role("heading", name="Checks")).to_be_visible()
    schema = page.locator('[data-check="schema (prod)"] [data-check-status]')
    expect(schema).to_have_text("passed")
    tree = page.get_by_role("navigation", name="Changed files")
    tree.get_by_role("link", name="deployment.yaml").click()
    deployment = page.locator(
        "details.diff-file",
        has=page.locator(".diff-path", has_text=f"services/{SERVICE}/deploy/base/deployment.yaml"),
    )
    expect(deployment.locator(".highlight .nt").first).to_be_visible()
    expect(page.get_by_text("You requested this change")).to_be_visible()
    expect(page.get_by_role("button", name="Approve and merge")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/catalog$"))
    path = change_url.removeprefix(page.url.removesuffix("/catalog"))
    sign_in(page, "grace.hopper", path)
    page.get_by_role("button", name="Approve and merge").click()
    expect(status).to_have_text("merged")
    expect(page.locator("#decision")).to_contain_text("approved by grace.hopper")

    page.locator("#decision").get_by_role("link", name=SERVICE).click()
    expect(page).to_have_url(re.compile(rf"/catalog/component/default/{SERVICE}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(SERVICE)
    expect(page.get_by_text("Serves hourly air-quality readings").first).to_be_visible()
