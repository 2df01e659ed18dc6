"""The API token page in Chromium: create a token, see its secret once, list it, revoke it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser_server import initialised_settings, live_server, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal (local sign-in) with the repo's catalog."""
    settings = initialised_settings(
        tmp_path_factory.mktemp("browser-tokens"), "browser-tokens-secret", run_worker=False
    )
    with live_server(settings) as url:
        yield url


def test_a_team_member_creates_a_token_sees_it_once_and_revokes_it(page: Page) -> None:
    sign_in(page, "grace.hopper", "/catalog")
    page.get_by_role("banner").get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(re.compile(r"/settings/tokens$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")

    form = page.get_by_role("region", name="Create a token")
    form.get_by_label("Name").fill("model-promoter")
    form.locator('input[name="services"][value="flux"]').check()
    expect(form.locator('input[name="services"][value="grafana"]')).to_have_count(0)
    form.get_by_label("Expires after (days)").fill("30")
    form.get_by_role("button", name="Create token").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Token “model-promoter” created")
    expect(page.get_by_role("alert")).to_contain_text("it will not be shown again")
    secret = page.get_by_label("Token", exact=True).input_value()
    assert re.fullmatch(r"pst_[0-9a-f]{12}_[A-Za-z0-9_-]+", secret), secret
    token_id = secret.split("_")[1]

    page.get_by_role("link", name="Back to API tokens").click()
    row = page.locator(f'tr[data-token="{token_id}"]')
    expect(row).to_contain_text("model-promoter")
    expect(row).to_contain_text("flux")
    expect(row).to_contain_text("user:default/grace.hopper")
    expect(page.locator("body")).not_to_contain_text(secret)

    row.get_by_role("button", name="Revoke model-promoter").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke token “model-promoter”?")
    page.get_by_role("button", name="Revoke token").click()
    expect(page).to_have_url(re.compile(rf"/settings/tokens\?revoked={token_id}$"))
    expect(page.locator("#revoked-notice")).to_contain_text(token_id)
    row = page.locator(f'tr[data-token="{token_id}"]')
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button")).to_have_count(0)
