"""The fleet in a real browser: the template page, an update for all, a conflict resolved."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from portal.app import create_app
from tests.browser_server import initialised_settings, live_server, sign_in
from tests.conftest import runtime
from tests.fleet.support import edit, generate, release
from tests.fleet_versions import TEMPLATE_NAME

pytestmark = pytest.mark.browser
WORK_TIMEOUT_MS = 60_000  # an update and its checks take about a second each


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal with two services of the fleet template at v1 on main, v3 released."""
    folder = tmp_path_factory.mktemp("browser-fleet")
    templates = folder / "templates"
    templates.mkdir()
    release(templates, "v1")
    settings = initialised_settings(
        folder, "browser-fleet-secret", gitops=True, run_worker=True, templates_dir=templates
    )
    quiet = settings.model_copy(update={"run_worker": False})
    with TestClient(create_app(quiet)) as client:
        runtime(client).context.registry.all()  # publishes v1.0.0
        for service in ("plain", "clash"):
            generate(client, service, folder / "scratch")
        edit(client, "clash", b"memory: 128Mi", b"memory: 192Mi")
    release(templates, "v3")  # the next portal release; its warm-up publishes v3.0.0
    with live_server(settings) as url:
        yield url


def test_propose_an_update_for_all_and_resolve_the_conflict(page: Page) -> None:
    sign_in(page, "ada.lovelace", f"/templates/{TEMPLATE_NAME}")
    fleet = page.locator("#fleet")
    # The fleet section comes from its own route once the page has loaded.
    expect(fleet.locator('tr[data-service="clash"] [data-label="Behind"]')).to_have_text(
        "1 version behind", timeout=WORK_TIMEOUT_MS
    )
    expect(fleet.locator('tr[data-service="clash"] [data-label="Local edits"]')).to_contain_text(
        "1 file"
    )
    for service in ("plain", "clash"):
        expect(page.get_by_role("checkbox", name=f"Update {service}")).to_be_checked()
    expect(page.locator("#to-ref")).to_have_value("v3.0.0")
    page.get_by_role("button", name="Propose the updates").click()

    expect(page).to_have_url(re.compile(r"/updates/[0-9a-f]{16}$"))
    progress = page.locator("#progress")
    expect(progress).to_have_attribute("data-done", "true", timeout=WORK_TIMEOUT_MS)
    expect(progress.locator('tr[data-service="plain"]')).to_have_attribute("data-state", "ready")
    expect(progress.locator('tr[data-service="clash"]')).to_have_attribute(
        "data-state", "conflicted"
    )

    progress.get_by_role("link", name="Resolve the conflicts").click()
    expect(page).to_have_url(re.compile(r"/updates/changes/[0-9a-f]{16}/resolve$"))
    area = page.get_by_role("textbox", name="k8s/deployment.yaml")
    text = area.input_value()
    assert "<<<<<<< before updating" in text and "192Mi" in text
    start, end = text.index("<<<<<<<"), text.index(">>>>>>>")
    area.fill(text[:start] + "              memory: 256Mi\n" + text[text.index("\n", end) + 1 :])
    page.get_by_role("button", name="Commit the resolution").click()

    expect(page).to_have_url(re.compile(r"/reviews/[0-9a-f]{16}$"))
    status = page.locator(".page-head [data-status]")
    expect(status).to_have_text("ready for review", timeout=WORK_TIMEOUT_MS)
    page.goto(page.url)  # the checks of the new revision, as a reviewer opens it
    check = page.locator('[data-check="template conflicts"] [data-check-status]')
    expect(check).to_have_attribute("data-check-status", "passed")


def test_the_template_page_needs_no_sign_in_to_show_the_fleet(page: Page, portal_url: str) -> None:
    page.goto(f"{portal_url}/templates/{TEMPLATE_NAME}/fleet")
    expect(page.locator('tr[data-service="plain"]')).to_be_visible()
    expect(page.get_by_role("button", name="Propose the updates")).to_have_count(0)
